"""The geometry of MediaPipe's search windows: overlapping square tiles of a wide frame (the face
detector sees a 128-px letterbox and misses small faces), crops around a followed face, landmarks
mapped back to the frame, and duplicates from overlapping windows removed."""

from __future__ import annotations

import numpy as np

from sovtp.types import Face


def _tiles(w: int, h: int, mode: str) -> list[tuple[int, int, int]] | None:
    """(x0, y0, side) of the square tiles, 50 % overlap, a wide frame is searched in; None when
    the frame is searched whole (near-square, or tiles off)."""
    if mode != "auto" or max(w, h) <= 1.3 * min(w, h):
        return None
    side, long = min(w, h), max(w, h)
    n = int(np.ceil((long - side) / (side * 0.5))) + 1
    out = []
    for k in range(n):
        off = int(round(k * (long - side) / max(n - 1, 1)))
        out.append((off, 0, side) if w >= h else (0, off, side))
    return out


def _landmarks(res, x0: int, y0: int, width: int, height: int):
    """(face index, 478×3 pixel landmarks, result) of a window at (x0, y0) of the frame."""
    for i, lms in enumerate(res.face_landmarks):
        # scaled in float64 as Python's floats would be, then rounded once to float32
        xyz = np.array([(p.x, p.y, p.z) for p in lms], dtype=np.float64)
        xyz *= (width, height, width)
        xyz[:, :2] += (x0, y0)
        yield i, xyz.astype(np.float32), res


def _crop_window(box: tuple[float, ...], scale: float, w: int, h: int) -> tuple[int, int, int, int]:
    """(x0, y0, width, height): a square of ``scale`` face sizes centred on ``box``, moved
    inside the frame (and narrowed to it when the frame is smaller)."""
    side = int(round(scale * max(box[2] - box[0], box[3] - box[1], 16.0)))
    cw, ch = min(side, w), min(side, h)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(round(min(max(cx - cw / 2, 0), w - cw)))
    y0 = int(round(min(max(cy - ch / 2, 0), h - ch)))
    return x0, y0, cw, ch


def _cut_by_tile(pts: np.ndarray, x0: int, y0: int, ww: int, hh: int, w: int, h: int) -> bool:
    """True when a tile's face touches a tile edge that is not the frame's edge (a cut face)."""
    m = 2.0
    (fx0, fy0), (fx1, fy1) = pts.min(axis=0), pts.max(axis=0)
    return bool(
        (x0 > 0 and fx0 <= x0 + m)
        or (x0 + ww < w and fx1 >= x0 + ww - m)
        or (y0 > 0 and fy0 <= y0 + m)
        or (y0 + hh < h and fy1 >= y0 + hh - m)
    )


def _dedupe(faces: list[Face], thr: float = 0.3) -> list[Face]:
    """Drop a face found twice (full frame and a tile): keep the first of any overlapping pair."""
    keep = _dedupe_boxes([f.bbox for f in faces], thr)
    return [faces[i] for i in keep]


def _dedupe_boxes(boxes: list[tuple[float, ...]], thr: float = 0.3) -> list[int]:
    """Indices of the boxes kept: the first of any pair overlapping by IoU ≥ ``thr``."""
    from sovtp.annotate.tracking import iou

    kept: list[int] = []
    for i, b in enumerate(boxes):
        if all(iou(b, boxes[k]) < thr for k in kept):
            kept.append(i)
    return kept
