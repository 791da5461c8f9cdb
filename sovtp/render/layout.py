"""Where the text marks go, and how big marks are, so that a model can read them.

Two measured failures drove this module: in a five-person photo one face's ID tag sat under
another face's AU label (supervision places every label at a fixed anchor of its box, blind to
the others), and text drawn at a size fixed in *source* pixels came out ~8 px tall once the
prompt builder had shrunk the frame to the side it sends.  So:

* sizes are chosen in the pixels of the image *as sent* (``out_size``, the prompt builder's
  longest side) and converted back to source pixels (:func:`mark_style`);
* labels are placed greedily — ID tags first, then AU labels — each at the nearest free spot
  around its face: never over another face's box or an already placed label, and over its own
  face only when nothing else is free (:func:`layout_labels`).  An AU label that could only be
  placed over an ID tag is dropped: an ID is what the prompt text refers to.

The layout is a plain list of :class:`PlacedLabel` rectangles, which the drawer draws as is and
tests measure directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# The prompt builder's default longest side (``ImageOptions.max_side``): marks are sized for it
# unless told the real one.
DEFAULT_OUT_SIZE = 768
MIN_TEXT_PX = 13  # cap height of label text in the image as sent, at the least
TEXT_FRACTION = 0.024  # ... and as a fraction of that image's long side (18 px at 768)
FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends), frame pixels


@dataclass(frozen=True)
class MarkStyle:
    """Sizes of the marks in source-frame pixels (see :func:`mark_style`)."""

    text_scale: float
    text_thickness: int
    padding: int
    box_thickness: int
    radius: int  # pose vertices and subset landmarks
    px_per_shown: float  # source pixels per pixel of the image as sent


@lru_cache(maxsize=1)
def _cap_height() -> int:
    """Ink height of a digit at scale 1, measured by drawing one (cv2 5's getTextSize reports
    the line height, ~20 % more, which would make text smaller than asked)."""
    import cv2

    c = np.zeros((120, 80), np.uint8)
    cv2.putText(c, "0", (10, 80), FONT, 1.0, 255, 1, cv2.LINE_AA)
    rows = np.flatnonzero(c.any(axis=1))
    return int(rows[-1] - rows[0] + 1)


def mark_style(long_side: int, out_size: int | None = DEFAULT_OUT_SIZE) -> MarkStyle:
    """Sizes for marks on an image whose long side is ``long_side`` and which is sent with its
    long side shrunk to ``out_size`` (never enlarged; None: sent as is)."""
    shown = min(long_side, out_size) if out_size else long_side
    k = long_side / max(1, shown)
    text_px = max(MIN_TEXT_PX, TEXT_FRACTION * shown)
    return MarkStyle(
        text_scale=text_px * k / _cap_height(),
        text_thickness=max(1, round(k * text_px / 9)),
        padding=max(2, round(0.3 * text_px * k)),
        box_thickness=max(1, round(k * max(2.0, shown / 320))),
        radius=max(2, round(k * max(2.0, shown / 256))),
        px_per_shown=k,
    )


@dataclass(frozen=True)
class PlacedLabel:
    kind: str  # "id" | "au"
    track_id: int
    text: str
    rect: Rect
    face_box: Rect
    text_origin: tuple[int, int]  # cv2.putText's bottom-left origin

    def touches_face(self, slack: int = 2) -> bool:
        return _gap(self.rect, self.face_box) <= slack


def text_size(text: str, style: MarkStyle) -> tuple[int, int]:
    """Width and cap height of ``text`` in pixels at the style's scale (labels are AU codes and
    numbers: no descenders)."""
    import cv2

    (w, _), _ = cv2.getTextSize(text, FONT, style.text_scale, style.text_thickness)
    return int(w), round(_cap_height() * style.text_scale) + style.text_thickness // 2


def _gap(a: Rect, b: Rect) -> float:
    dx = max(0, a[0] - b[2], b[0] - a[2])
    dy = max(0, a[1] - b[3], b[1] - a[3])
    return float(np.hypot(dx, dy))


def overlap(a: Rect, b: Rect) -> int:
    """Area shared by two rectangles (0 when they only touch)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


def _areas(xy: np.ndarray, w: int, h: int, obstacles: list[Rect]) -> np.ndarray:
    """Overlap area of each candidate rect (top-left ``xy``, size w×h) with all obstacles."""
    if not obstacles:
        return np.zeros(len(xy))
    ob = np.asarray(obstacles, dtype=float)  # M×4
    x0, y0 = xy[:, :1], xy[:, 1:]
    iw = np.minimum(x0 + w, ob[:, 2]) - np.maximum(x0, ob[:, 0])
    ih = np.minimum(y0 + h, ob[:, 3]) - np.maximum(y0, ob[:, 1])
    return (np.clip(iw, 0, None) * np.clip(ih, 0, None)).sum(axis=1)


def _place(
    size: tuple[int, int],
    w: int,
    h: int,
    box: Rect,
    preferred: list[tuple[int, int]],
    hard: list[Rect],
    soft: list[Rect],
    forbidden: list[Rect] = (),  # type: ignore[assignment]
) -> Rect | None:
    """The w×h rectangle for a label of ``box``: inside the frame, clear of ``hard`` obstacles
    (else the least covered), then of ``soft`` ones, then nearest the box, preferring
    ``preferred`` spots in their order; None when every spot covers a ``forbidden`` one."""
    W, H = size
    step = max(2, h // 2)
    gx = np.arange(0, max(1, W - w + 1), step)
    gy = np.arange(0, max(1, H - h + 1), step)
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    pref = np.array(preferred, dtype=float).reshape(-1, 2)
    pref[:, 0] = np.clip(pref[:, 0], 0, max(0, W - w))
    pref[:, 1] = np.clip(pref[:, 1], 0, max(0, H - h))
    xy = np.concatenate([pref, grid]).astype(float)
    rank = np.concatenate([np.arange(len(pref)), np.full(len(grid), len(pref))])
    ok = _areas(xy, w, h, list(forbidden)) == 0
    if not ok.any():
        return None
    hard_a = _areas(xy, w, h, hard)
    soft_a = _areas(xy, w, h, soft)
    bx0, by0, bx1, by1 = box
    dx = np.maximum.reduce([np.zeros(len(xy)), xy[:, 0] - bx1, bx0 - (xy[:, 0] + w)])
    dy = np.maximum.reduce([np.zeros(len(xy)), xy[:, 1] - by1, by0 - (xy[:, 1] + h)])
    exact = np.hypot(dx, dy)
    dist = np.round(exact / step)  # ties within a step go to the preferred spots
    keys = (~ok, hard_a > 0, hard_a, soft_a > 0, dist, rank, exact, soft_a)
    i = int(np.lexsort(keys[::-1])[0])
    x, y = int(xy[i, 0]), int(xy[i, 1])
    return (x, y, x + w, y + h)


def _int_box(b: Sequence[float], pad: int, size: tuple[int, int]) -> Rect:
    W, H = size
    return (
        max(0, int(np.floor(b[0])) - pad),
        max(0, int(np.floor(b[1])) - pad),
        min(W, int(np.ceil(b[2])) + pad),
        min(H, int(np.ceil(b[3])) + pad),
    )


def layout_labels(
    boxes: dict[int, Sequence[float]],
    size: tuple[int, int],
    style: MarkStyle,
    id_texts: dict[int, str] | None = None,
    au_texts: dict[int, str] | None = None,
) -> list[PlacedLabel]:
    """Rectangles for the ID tags (``id_texts``, by track ID) and AU labels (``au_texts``) of
    faces with ``boxes`` (xyxy) in a frame of ``size`` (width, height).

    Every label avoids every *other* face's box and every label placed before it; ID tags are
    placed first (largest faces first), so an AU label never hides one.
    """
    pad = style.box_thickness  # a drawn box line spreads this far outside the box
    faces = {tid: _int_box(b, pad, size) for tid, b in boxes.items()}
    order = sorted(faces, key=lambda t: -(faces[t][2] - faces[t][0]) * (faces[t][3] - faces[t][1]))
    placed: list[PlacedLabel] = []
    gap = max(1, pad)

    def one(kind: str, tid: int, text: str, forbid: list[Rect]) -> None:
        tw, th = text_size(text, style)
        p = style.padding
        w, h = tw + 2 * p, th + 2 * p
        x0, y0, x1, y1 = faces[tid]
        if kind == "id":  # above the box's corner, as people read a tag; then beside, below
            pref = [
                (x0, y0 - h - gap),
                (x1 - w, y0 - h - gap),
                (x0 - w - gap, y0),
                (x1 + gap, y0),
                (x0, y1 + gap),
                (x1 - w, y1 + gap),
            ]
        else:  # under the chin; then above, beside
            pref = [
                (x0, y1 + gap),
                (x1 - w, y1 + gap),
                (x0, y0 - h - gap),
                (x1 - w, y0 - h - gap),
                (x0 - w - gap, y1 - h),
                (x1 + gap, y1 - h),
            ]
        others = [r for t, r in faces.items() if t != tid]
        rect = _place(
            size, w, h, faces[tid], pref, others + [q.rect for q in placed], [faces[tid]], forbid
        )
        if rect is None:
            return
        placed.append(
            PlacedLabel(kind, tid, text, rect, faces[tid], (rect[0] + p, rect[1] + p + th))
        )

    for tid in order:
        if id_texts and tid in id_texts:
            one("id", tid, id_texts[tid], [])
    id_rects = [q.rect for q in placed]
    for tid in order:
        if au_texts and tid in au_texts:
            one("au", tid, au_texts[tid], id_rects)
    return placed
