"""py-feat adapter (extra ``pyfeat``): calibrated FACS AUs from py-feat's detectors.

py-feat returns a ``Fex`` DataFrame: one row per face per frame, boxes as ``FaceRectX/Y/Width/
Height`` (xywh), 68 dlib-scheme landmarks as ``x_0..x_67`` / ``y_0..y_67``, AU intensities as
``AU01, AU02, ...`` (0..1), head pose as ``Pitch, Roll, Yaw`` and the frame number as ``frame``.
This module converts such a frame table into sovtp's own types (xyxy boxes, ``dlib68`` scheme,
AU codes without zero padding) — the conversion happens here and nowhere else.

The real ``feat.Detector`` downloads its weights from a model hub at first use; :func:`detect`
runs it when that is possible.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sovtp.types import Face, FrameAnnotation

SOURCE = "py-feat"


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
