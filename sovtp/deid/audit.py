"""Privacy audit, faces part: can a face still be found, and can it still be recognised?

(a) **Detectable faces** in every outgoing image, by detectors other than — and beside — the ones
that chose what to blur: MediaPipe's FaceLandmarker (the annotator's model: it searches the
frame, and tiles of a wide one), MediaPipe's face detector and CenterFace.  Target: 0.

(b) **Re-identification**: dlib's face recognition ResNet (128-D, CC0; "same person" below a
Euclidean distance of 0.6 — dlib's own threshold, 99.38 % on LFW) compares each raw face with the
same place in the de-identified image.  The attacker is given the best case: the de-identified
face is aligned with the *raw* face's five landmarks (a blurred face has none to find).  A face
counts as re-identified when its distance is below the threshold.  dlib comes from ``dlib-bin``
(Boost licence) and its two model files from the resolver (``face_recognition_models`` sdist);
without dlib, part (b) reports itself skipped with the reason rather than inventing a score.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

DLIB_SAME_PERSON = 0.6
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}


class _Landmarker:
    """MediaPipe FaceLandmarker as a detector: faces found per image (tiles on wide ones)."""

    def __init__(self) -> None:
        from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

        self.det = MediaPipeAnnotator(DetectorConfig(pose=False, track=False, max_faces=10))
        self.det.__enter__()

    def __call__(self, image: np.ndarray) -> list[tuple[float, ...]]:
        self.det.start_clip()
        return [f.bbox for f in self.det.detect(np.ascontiguousarray(image[..., :3])).faces]

    def close(self) -> None:
        self.det.close()


def count_faces(images: list[np.ndarray]) -> dict[str, Any]:
    """Faces each detector finds in each image: ``{"per_image": [...], "total": n,
    "by_detector": {...}}``; an image's entry lists ``{detector, box}`` hits."""
    from sovtp.deid.faces import FaceFinder

    per_image: list[list[dict[str, Any]]] = []
    by: dict[str, int] = {"mediapipe_landmarker": 0, "mediapipe": 0, "centerface": 0}
    lm = _Landmarker()
    try:
        with FaceFinder() as finder:
            for img in images:
                hits = [
                    {"detector": d.source, "box": [round(v, 1) for v in d.box]}
                    for d in finder.find(img)
                ]
                hits += [
                    {"detector": "mediapipe_landmarker", "box": [round(float(v), 1) for v in b]}
                    for b in lm(img)
                ]
                for h in hits:
                    by[h["detector"]] += 1
                per_image.append(hits)
    finally:
        lm.close()
    return {"per_image": per_image, "total": sum(by.values()), "by_detector": by}


class DlibEmbedder:
    """dlib's 5-point aligner + face recognition ResNet, model files from the resolver."""

    name = "dlib_face_recognition_resnet_model_v1"

    def __init__(self) -> None:
        import dlib

        from sovtp.annotate import models

        self._dlib = dlib
        self.sp = dlib.shape_predictor(str(models.resolve("dlib_shape_predictor_5")))
        self.rec = dlib.face_recognition_model_v1(str(models.resolve("dlib_face_recognition")))

    def shape(self, image: np.ndarray, box: tuple[float, ...]):
        x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
        return self.sp(np.ascontiguousarray(image[..., :3]), self._dlib.rectangle(x0, y0, x1, y1))

    def embed(self, image: np.ndarray, shape) -> np.ndarray:
        chip = self._dlib.get_face_chip(np.ascontiguousarray(image[..., :3]), shape, size=150)
        return np.asarray(self.rec.compute_face_descriptor(chip), dtype=np.float64)


def reidentification(
    raw: list[np.ndarray], deid: list[np.ndarray], threshold: float = DLIB_SAME_PERSON
) -> dict[str, Any]:
    """Distances raw face → the same place after de-identification (see the module docstring)."""
    try:
        emb = DlibEmbedder()
    except ImportError as e:
        return {"available": False, "reason": f"dlib is not installed ({e}); pip install dlib-bin"}
    from sovtp.deid.faces import FaceFinder, merge

    dists: list[float] = []
    with FaceFinder() as finder:
        for r, d in zip(raw, deid, strict=True):
            for det in merge(finder.find(r)):
                shape = emb.shape(r, det.box)
                dists.append(float(np.linalg.norm(emb.embed(r, shape) - emb.embed(d, shape))))
    n = len(dists)
    reid = sum(x < threshold for x in dists)
    return {
        "available": True,
        "embedder": emb.name,
        "threshold": threshold,
        "faces": n,
        "reidentified": reid,
        "below_threshold_share": None if n == 0 else round(1 - reid / n, 4),
        "min_distance": None if n == 0 else round(min(dists), 4),
        "mean_distance": None if n == 0 else round(float(np.mean(dists)), 4),
    }


def audit_images(
    raw: list[np.ndarray] | None, deid: list[np.ndarray], threshold: float = DLIB_SAME_PERSON
) -> dict[str, Any]:
    """The faces audit of outgoing images ``deid`` (and, with ``raw`` aligned to them, the
    re-identification check).  ``passed`` is True when no detector finds a face and no face is
    re-identified."""
    faces = count_faces(deid)
    out: dict[str, Any] = {
        "images": len(deid),
        "faces_detectable": faces["total"],
        "faces_by_detector": faces["by_detector"],
        "images_with_faces": [i for i, h in enumerate(faces["per_image"]) if h],
        "hits": {i: h for i, h in enumerate(faces["per_image"]) if h},
    }
    if raw is not None:
        out["reid"] = reidentification(raw, deid, threshold)
    reid = out.get("reid") or {}
    out["passed"] = faces["total"] == 0 and not reid.get("reidentified")
    return out


def media_images(path: Path, max_frames: int = 0) -> list[np.ndarray]:
    """Every image of a file (all frames of a video; ``max_frames`` > 0 spreads a cap)."""
    from sovtp.media.video import load_frames

    if path.suffix.lower() in IMAGE_EXTS:
        from sovtp.media.image import load_image

        return [load_image(path)]
    sampling = f"uniform:{max_frames}" if max_frames else "all"
    return [f.image for f in load_frames(path, sampling)]


def collect(target: str | Path, max_frames: int = 0) -> tuple[list[str], list[np.ndarray]]:
    """(names, images) to audit: a file, a folder of images/videos, or a run folder (its
    ``gallery/`` holds the images that were sent)."""
    p = Path(target)
    if p.is_dir() and (p / "gallery").is_dir():
        p = p / "gallery"
    files = (
        [p]
        if p.is_file()
        else sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS)
    )
    names: list[str] = []
    images: list[np.ndarray] = []
    for f in files:
        imgs = media_images(f, max_frames)
        names += [f"{f.name}#{k}" if len(imgs) > 1 else f.name for k in range(len(imgs))]
        images += imgs
    return names, images


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        "# Privacy audit — faces",
        "",
        f"- images checked: {summary['images']}",
        f"- faces still detectable: **{summary['faces_detectable']}** (target 0) — "
        + ", ".join(f"{k}: {v}" for k, v in summary["faces_by_detector"].items()),
    ]
    reid = summary.get("reid")
    if reid is None:
        lines.append("- re-identification: not run (no raw media given)")
    elif not reid.get("available"):
        lines.append(f"- re-identification: skipped — {reid['reason']}")
    else:
        lines.append(
            f"- re-identification ({reid['embedder']}, same person < {reid['threshold']}): "
            f"{reid['reidentified']} of {reid['faces']} faces re-identified; "
            f"min distance {reid['min_distance']}, mean {reid['mean_distance']}"
        )
    lines.append(f"- verdict: **{'pass' if summary['passed'] else 'FAIL'}**")
    return "\n".join(lines) + "\n"


def write_audit(summary: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """``audit_faces.json`` and ``audit_faces.md`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    j, m = out / "audit_faces.json", out / "audit_faces.md"
    j.write_text(json.dumps(summary, indent=2, default=str))
    m.write_text(markdown(summary))
    return j, m
