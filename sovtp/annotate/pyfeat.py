"""py-feat adapter (extra ``pyfeat``): calibrated FACS AUs from py-feat's detectors.

py-feat returns a ``Fex`` DataFrame: one row per face per frame, boxes as ``FaceRectX/Y/Width/
Height`` (xywh), 68 dlib-scheme landmarks as ``x_0..x_67`` / ``y_0..y_67``, AU intensities as
``AU01, AU02, ...`` (0..1), head pose as ``Pitch, Roll, Yaw`` and the frame number as ``frame``.
This module converts such a frame table into sovtp's own types (xyxy boxes, ``dlib68`` scheme,
AU codes without zero padding) — the conversion happens here and nowhere else.

The real ``feat.Detector`` downloads its weights from a model hub at first use; :func:`detect`
runs it when that is possible.  ``--au-source pyfeat`` must not trigger a download in the middle
of a benchmark, so :func:`require_weights` checks the weights folder first and says which folder
it looked in; :func:`swap_aus` then puts py-feat's calibrated AUs onto MediaPipe's faces (matched
by box overlap), each marked with the method ``pyfeat``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from sovtp.errors import SovtpError
from sovtp.types import Face, FrameAnnotation

SOURCE = "py-feat"
METHOD = "pyfeat"
WEIGHTS_ENV = "SOVTP_PYFEAT_DIR"
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".onnx", ".pkl", ".joblib", ".h5")


def default_weights_dir() -> Path:
    """Where py-feat keeps its weights: ``$SOVTP_PYFEAT_DIR``, else py-feat's own resources
    folder (``feat/resources`` of the installed package), else a user-cache folder."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    try:
        from feat.utils.io import get_resource_path  # type: ignore[import-not-found]

        return Path(get_resource_path())
    except Exception:  # noqa: BLE001 - py-feat absent or laid out differently
        from sovtp.assets import cache_dir

        return cache_dir().parent / "pyfeat"


def require_weights(folder: str | Path | None = None) -> Path:
    """The folder holding py-feat's weights, or a :class:`SovtpError` naming the folder searched.

    Only checks the disk (no download): a folder that exists and holds at least one weight file.
    """
    path = Path(folder).expanduser() if folder is not None else default_weights_dir()
    if not path.is_dir():
        raise SovtpError(
            f"--au-source pyfeat needs py-feat's model weights in {path}, which does not exist; "
            f"download them there on a machine with hub access (or set {WEIGHTS_ENV})"
        )
    if not any(p.suffix in WEIGHT_SUFFIXES for p in path.rglob("*") if p.is_file()):
        raise SovtpError(
            f"--au-source pyfeat: no py-feat model weights ({', '.join(WEIGHT_SUFFIXES)}) in "
            f"{path}; download them there on a machine with hub access (or set {WEIGHTS_ENV})"
        )
    return path


def swap_aus(
    frames: list[FrameAnnotation], pyfeat_frames: list[FrameAnnotation], min_iou: float = 0.3
) -> int:
    """Replace the AUs of MediaPipe's faces with py-feat's, in place; returns the faces swapped.

    Frames pair up by position; within a frame each face takes the py-feat face whose box
    overlaps it best (at least ``min_iou``).  py-feat's AUs replace the measured ones and are
    marked ``pyfeat``; AUs py-feat does not estimate keep their own value and method.  A face
    that py-feat missed keeps everything it had.  An AU of a region the face's occlusion hides
    (a hand over the mouth, dark glasses) stays unmeasured: py-feat sees the same hand.
    """
    from sovtp.annotate.occlusion import REGION_AUS
    from sovtp.annotate.tracking import iou

    swapped = 0
    for fr, pf in zip(frames, pyfeat_frames, strict=False):
        for face in fr.faces:
            best = max(pf.faces, key=lambda o: iou(face.bbox, o.bbox), default=None)
            if best is None or iou(face.bbox, best.bbox) < min_iou:
                continue
            hidden = {au for region in face.occlusion for au in REGION_AUS.get(region, ())}
            for code, v in best.aus.items():
                if code in hidden:
                    continue
                face.au_unmeasured.pop(code, None)  # py-feat measured it (an open mouth, a turn)
                face.aus[code] = float(v)
                face.au_methods[code] = METHOD
                face.au_sides.pop(code, None)  # py-feat gives one value per AU, no sides
            face.au_source = f"{face.au_source} + {SOURCE}" if face.au_source else SOURCE
            swapped += 1
    return swapped


def _au_code(col: str) -> str:
    return "AU" + str(int(col[2:]))


def fex_to_frames(
    fex: Any, sizes: dict[int, tuple[int, int]] | None = None
) -> list[FrameAnnotation]:
    """A py-feat Fex (or any DataFrame with its columns) → FrameAnnotations, one per frame.

    Track IDs are left at 0: run :class:`~sovtp.annotate.tracking.FaceTracker` over the result.
    """
    import pandas as pd

    df = pd.DataFrame(fex)
    if "frame" not in df.columns:
        df = df.assign(frame=0)
    au_cols = [
        c for c in df.columns if isinstance(c, str) and c.startswith("AU") and c[2:].isdigit()
    ]
    has_lm = all(f"x_{i}" in df.columns and f"y_{i}" in df.columns for i in range(68))
    out: list[FrameAnnotation] = []
    for frame_no, rows in df.groupby("frame", sort=True):
        faces = []
        for _, r in rows.iterrows():
            if pd.isna(r.get("FaceRectX")):
                continue  # py-feat writes a NaN row for a frame without faces
            x, y, w, h = (
                float(r[c]) for c in ("FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight")
            )
            lm = None
            if has_lm:
                lm = np.array([(r[f"x_{i}"], r[f"y_{i}"]) for i in range(68)], dtype=np.float32)
            aus = {
                _au_code(c): float(np.clip(r[c], 0.0, 1.0)) for c in au_cols if not pd.isna(r[c])
            }
            pose = None
            if all(c in df.columns for c in ("Yaw", "Pitch", "Roll")):
                pose = (float(r["Yaw"]), float(r["Pitch"]), float(r["Roll"]))
            faces.append(
                Face(
                    track_id=0,
                    bbox=(x, y, x + w, y + h),
                    score=float(r.get("FaceScore", 1.0)),
                    landmarks=lm,
                    landmark_scheme="dlib68",
                    aus=aus,
                    au_source=SOURCE,
                    head_pose=pose,
                )
            )
        size = (sizes or {}).get(int(frame_no), (0, 0))
        out.append(FrameAnnotation(index=int(frame_no), timestamp_s=0.0, size=size, faces=faces))
    return out


def detect(images: list[np.ndarray], **detector_kwargs: Any) -> list[FrameAnnotation]:
    """Run py-feat's Detector on RGB frames (downloads its weights on first use)."""
    try:
        from feat import Detector
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise ImportError("py-feat is not installed: pip install 'sovtp[pyfeat]'") from e
    import pandas as pd
    import torch

    det = Detector(**detector_kwargs)
    frames = []
    for k, img in enumerate(images):
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
        fex = det.detect(t, data_type="tensor")
        frames.append(pd.DataFrame(fex).assign(frame=k))
    sizes = {k: (img.shape[1], img.shape[0]) for k, img in enumerate(images)}
    return fex_to_frames(pd.concat(frames, ignore_index=True), sizes)
