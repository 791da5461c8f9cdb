"""Annotation throughput on one 640×360 clip, every stage measured in the same run.

    python benchmarks/annotate_speed.py [--frames 60]

Prints frames/s and CPU ms/frame for: decode only; face path (decode + FaceLandmarker + AUs +
tracking), which follows the face between searches (``DetectorConfig.track``), and the same with a
whole-frame search on every frame (``track=False``, the path before following); face + pose, the
bodies followed too (``pose_track``), and with the pose searched on every frame (the path before);
face + pose + drawing; and, where ``dlib-bin`` + ``face-recognition-models`` are importable, a dlib
HOG detector + 68-landmark predictor pipeline — then the ratios, and the quality check: followed
faces and bodies against a search of every frame (exit status 1 when off).  Targets (2 cores):
face path ≥ 50 fps, with pose ≥ 25 fps, face path ≥ 8× dlib.  dlib need not live in the
project's environment:
``pip install --target /tmp/dlib dlib-bin face-recognition-models`` and run with
``PYTHONPATH=/tmp/dlib``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np


def _clip(path: Path, n: int) -> Path:
    from sovtp.media.sample import panning_clip, write_video

    frames = panning_clip(seconds=n / 10, fps=10, size=(640, 360))
    return write_video(path, frames, fps=10)


def _dlib_path(clip: Path):
    """A dlib HOG detector + 68-landmark predictor pass over the clip, or the reason it cannot
    run here (dlib and its model files are optional, and outside the project's environment)."""
    import importlib.util

    try:
        import dlib
    except ImportError as e:
        return None, f"{e}; pip install dlib-bin face-recognition-models"
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None, "No module named 'face_recognition_models'"
    # its own helper needs pkg_resources (gone from new setuptools): find the file directly
    dat = (
        Path(spec.submodule_search_locations[0])
        / "models"
        / "shape_predictor_68_face_landmarks.dat"
    )
    hog = dlib.get_frontal_face_detector()
    pred = dlib.shape_predictor(str(dat))

    def run():
        from sovtp.media.video import load_frames

        for f in load_frames(clip, "all"):
            grey = np.ascontiguousarray(f.image.mean(axis=2).astype(np.uint8))
            for r in hog(grey, 1):
                pred(grey, r)

    return run, ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument(
        "--rounds", type=int, default=3, help="each row's best of this many interleaved passes"
    )
    args = ap.parse_args()

    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
    from sovtp.annotate.pipeline import annotate_frames
    from sovtp.media.video import load_frames
    from sovtp.render import VisualSpec, render_frame

    spec = VisualSpec(landmarks="subset", au_overlay=True, pose=True)
    with tempfile.TemporaryDirectory() as td, ExitStack() as stack:
        clip = _clip(Path(td) / "bench.mp4", args.frames)
        n = args.frames
        dets = {
            "face path": DetectorConfig(pose=False),
            "face path, search every frame": DetectorConfig(pose=False, track=False),
            "face + pose": DetectorConfig(pose=True),
            "face + pose, pose every frame": DetectorConfig(pose=True, pose_track=False),
        }
        dets = {k: stack.enter_context(MediaPipeAnnotator(c)) for k, c in dets.items()}
        outs: dict[str, list] = {}

        def annotate(name, det):
            def run():
                outs[name] = annotate_frames(load_frames(clip, "all"), det)

            return run

        def draw_all():
            fr = load_frames(clip, "all")
            for f, a in zip(fr, annotate_frames(fr, dets["face + pose"]), strict=True):
                render_frame(f, a, spec)

        rows = {"decode only": lambda: load_frames(clip, "all")}
        rows |= {k: annotate(k, d) for k, d in dets.items()}
        rows["face + pose + drawing"] = draw_all
        dlib_run, dlib_note = _dlib_path(clip)
        if dlib_run is not None:
            rows["dlib HOG + 68 landmarks"] = dlib_run
        # Rows take turns, round after round, and each keeps its best pass: on a shared machine
        # a slow minute then hits every row alike instead of skewing one ratio.
        # CPU time too (all threads of this process): on a loaded machine wall time charges
        # each row for the waits the others' load forced on it, CPU time only for its work
        res, cpu = dict.fromkeys(rows, 0.0), dict.fromkeys(rows, float("inf"))
        for _ in range(args.rounds):
            for k, fn in rows.items():
                c, t = time.process_time(), time.perf_counter()
                fn()
                res[k] = max(res[k], n / (time.perf_counter() - t))
                cpu[k] = min(cpu[k], (time.process_time() - c) * 1000 / n)
        looks = {
            k: (d.searches / d.calls, d.scans / d.calls, d.pose_searches / d.calls)
            for k, d in dets.items()
        }
        # the search's own floor: every frame shifted 2 px right (edge column repeated)
        shifted = []
        for f in load_frames(clip, "all"):
            img = np.concatenate([f.image[:, :1], f.image[:, :1], f.image[:, :-2]], axis=1)
            shifted.append(replace(f, image=img))
        det = dets["face + pose, pose every frame"]
        outs["pose every frame, shifted 2 px"] = annotate_frames(shifted, det)

    print(f"clip: 640x360, {n} frames, 1 face; best of {args.rounds} interleaved rounds")
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]} (2 cores shared)")
    for k, v in res.items():
        note = ""
        if k in looks:
            s, lk, ps = looks[k]
            note = f"  ({s:.2f} searches, {lk:.2f} looks, {ps:.2f} body searches per frame)"
        print(f"{k:30s} {v:8.1f} fps {cpu[k]:6.1f} ms CPU/frame{note}")
    print(f"ratio face path / target 50 fps       : {res['face path'] / 50:.2f}")
    print(f"ratio face + pose / target 25 fps     : {res['face + pose'] / 25:.2f}")
    every = res["face path, search every frame"]
    print(f"ratio face path / search every frame  : {res['face path'] / every:.2f}")
    pose_every = res["face + pose, pose every frame"]
    print(f"ratio face + pose / pose every frame  : {res['face + pose'] / pose_every:.2f}")
    if dlib_run is not None:
        dl = res["dlib HOG + 68 landmarks"]
        print(f"ratio face path / dlib (target >= 8)  : {res['face path'] / dl:.2f}")
        print(f"ratio search every frame / dlib       : {every / dl:.2f}")
        dl_cpu = cpu["dlib HOG + 68 landmarks"] / cpu["face path"]
        print(f"ratio face path / dlib in CPU time    : {dl_cpu:.2f}")
    else:
        print(f"(dlib pipeline skipped: {dlib_note})")
    ok = _quality(outs)
    raise SystemExit(0 if ok else 1)


# Following may not cost accuracy.  Faces: landmarks within FACE_TOL_PX of a search of the same
# frame (measured 0.2-0.3 px).  Bodies: MediaPipe's VIDEO-mode pose crops its landmark model's input
# around the last frame's keypoints where the IMAGE-mode search crops around its detector's box, so
# the keypoints differ as much as the model's own sensitivity to its crop: on this clip, points
# both call visible lie a median 7.0 px (4.5 % of the shoulder width) from the search's, max 11.7;
# the search itself moves 3.4 px median, 8.0 max, when the frame shifts 2 px (printed as the
# floor).  The bounds hold that with room for load-free variation, and fail a follower that drifts
# or follows the wrong body (a stale one reads the clip's motion, ~9 px a frame, and grows).
FACE_TOL_PX = 2.0
BODY_TOL = (0.06, 0.12)  # (median, max) over frames of mean keypoint gap / shoulder width


def _body_gaps(runs: list, refs: list, dx: int = 0) -> list[float]:
    """Per frame with a body in both: the mean distance between keypoints both call visible,
    over the reference's shoulder width (``dx``: the first run's frames were shifted by it)."""
    out = []
    for a, b in zip(runs, refs, strict=True):
        if not (a.persons and b.persons):
            continue
        ref, got = b.persons[0].keypoints, a.persons[0].keypoints
        vis = (ref[:, 2] >= 0.5) & (got[:, 2] >= 0.5)
        gap = np.hypot(got[vis, 0] - dx - ref[vis, 0], got[vis, 1] - ref[vis, 1])
        out.append(float(gap.mean()) / float(np.hypot(*(ref[11, :2] - ref[12, :2]))))
    return out


def _quality(outs: dict[str, list]) -> bool:
    """Followed faces and bodies against searching every frame, frame by frame; prints the gaps,
    the search's own floor and one frame of lag beside them, and whether they are in bounds."""
    ff, fs = outs["face path"], outs["face path, search every frame"]
    face = [
        float(np.abs(a.faces[0].landmarks - b.faces[0].landmarks).mean())
        for a, b in zip(ff, fs, strict=True)
        if a.faces and b.faces
    ]
    bf, bs = outs["face + pose"], outs["face + pose, pose every frame"]
    body = _body_gaps(bf, bs)
    floor = _body_gaps(outs["pose every frame, shifted 2 px"], bs, dx=2)
    lag = _body_gaps(bs[:-1], bs[1:])
    lost = sum(bool(b.persons and not a.persons) for a, b in zip(bf, bs, strict=True))
    lost += sum(bool(b.faces and not a.faces) for a, b in zip(ff, fs, strict=True))
    if lost or not face or not body:
        print(f"quality: FAIL, following lost a face or body in {lost} frames a search had it")
        return False
    face_ok = max(face) <= FACE_TOL_PX
    body_ok = np.median(body) <= BODY_TOL[0] and max(body) <= BODY_TOL[1]
    print(
        f"quality, followed face vs searched : mean landmark gap median {np.median(face):.2f}, "
        f"max {max(face):.2f} px (bound {FACE_TOL_PX}) over {len(face)} of {len(ff)} frames "
        f"{'ok' if face_ok else 'FAIL'}"
    )
    print(
        f"quality, followed body vs searched : keypoint gap / shoulder width median "
        f"{np.median(body):.3f}, max {max(body):.3f} (bounds {BODY_TOL[0]}, {BODY_TOL[1]}) "
        f"over {len(body)} of {len(bf)} frames {'ok' if body_ok else 'FAIL'}\n"
        f"  floor, search vs search 2 px over : median {np.median(floor):.3f}, "
        f"max {max(floor):.3f}; one frame late reads median {np.median(lag):.3f}"
    )
    return face_ok and body_ok


if __name__ == "__main__":
    main()
