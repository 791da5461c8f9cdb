"""Annotation throughput on one 640×360 clip, every stage measured in the same run.

    python benchmarks/annotate_speed.py [--frames 60]

Prints frames/s for: decode only; face path (decode + FaceLandmarker + AUs + tracking);
face + pose; face + pose + drawing; and, where ``dlib-bin`` + ``face-recognition-models`` are
installed, a dlib HOG detector + 68-landmark predictor pipeline — then the ratios.  Targets
(2 cores): face path ≥ 50 fps, with pose ≥ 25 fps, face path ≥ 5× dlib.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _clip(path: Path, n: int) -> Path:
    from sovtp.media.sample import panning_clip, write_video

    frames = panning_clip(seconds=n / 10, fps=10, size=(640, 360))
    return write_video(path, frames, fps=10)


def _rate(fn, n: int, repeat: int = 2) -> float:
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - t))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()

    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
    from sovtp.annotate.pipeline import annotate_frames
    from sovtp.media.video import load_frames
    from sovtp.render import VisualSpec, render_frame

    with tempfile.TemporaryDirectory() as td:
        clip = _clip(Path(td) / "bench.mp4", args.frames)
        n = args.frames
        res: dict[str, float] = {}
        res["decode only"] = _rate(lambda: load_frames(clip, "all"), n)
        frames = load_frames(clip, "all")
        with MediaPipeAnnotator(DetectorConfig(pose=False)) as face:
            res["face path"] = _rate(
                lambda: (load_frames(clip, "all"), annotate_frames(frames, face)), n
            )
        with MediaPipeAnnotator(DetectorConfig(pose=True)) as both:
            res["face + pose"] = _rate(
                lambda: (load_frames(clip, "all"), annotate_frames(frames, both)), n
            )
            spec = VisualSpec(landmarks="subset", au_overlay=True, pose=True)

            def draw_all():
                fr = load_frames(clip, "all")
                anns = annotate_frames(fr, both)
                for f, a in zip(fr, anns, strict=False):
                    render_frame(f, a, spec)

            res["face + pose + drawing"] = _rate(draw_all, n)
        dlib_note = ""
        try:
            import importlib.util

            import dlib

            spec = importlib.util.find_spec("face_recognition_models")
            if spec is None or not spec.submodule_search_locations:
                raise ImportError("No module named 'face_recognition_models'")
            # its own helper needs pkg_resources (gone from new setuptools): find the file directly
            dat = (
                Path(spec.submodule_search_locations[0])
                / "models"
                / "shape_predictor_68_face_landmarks.dat"
            )
            hog = dlib.get_frontal_face_detector()
            pred = dlib.shape_predictor(str(dat))

            def dlib_path():
                for f in load_frames(clip, "all"):
                    grey = np.ascontiguousarray(f.image.mean(axis=2).astype(np.uint8))
                    for r in hog(grey, 1):
                        pred(grey, r)

            res["dlib HOG + 68 landmarks"] = _rate(dlib_path, n, repeat=1)
        except ImportError as e:
            dlib_note = (
                f"(dlib pipeline skipped: {e}; pip install dlib-bin face-recognition-models)"
            )

    print(f"clip: 640x360, {n} frames, 1 face")
    for k, v in res.items():
        print(f"{k:28s} {v:8.1f} fps")
    print(f"ratio face path / target 50 fps      : {res['face path'] / 50:.2f}")
    print(f"ratio face + pose / target 25 fps    : {res['face + pose'] / 25:.2f}")
    if "dlib HOG + 68 landmarks" in res:
        print(
            f"ratio face path / dlib (target >= 5) : {res['face path'] / res['dlib HOG + 68 landmarks']:.2f}"
        )
    else:
        print(dlib_note)


if __name__ == "__main__":
    main()
