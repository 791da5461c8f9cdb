"""Test and benchmark clips for the faces stage, made at run time from ``skimage.data.astronaut()``
(public domain): nothing third-party is stored.

:func:`entering_clip` is the hard case for de-identification: the face *enters* the frame from
one edge (only a sliver of it visible at first, which no detector reports), moves and grows while
inside, and *leaves* at the other edge — the frames where a half face must still be covered by
a track carried across the detectors' misses.
"""

from __future__ import annotations

import numpy as np


def _head() -> np.ndarray:
    """The astronaut's head and shoulders (RGB, 260×250)."""
    from sovtp.media.sample import astronaut

    return np.ascontiguousarray(astronaut()[0:260, 100:350])


# where the face is inside :func:`_head` (fractions of its width/height; CenterFace's box, which
# takes in the forehead and chin)
FACE_IN_HEAD = (0.30, 0.20, 0.69, 0.70)


def _placement(k: int, n: int, size: tuple[int, int], grow: tuple[float, float]):
    """(x, y, width, height) of the head in frame ``k`` of ``n`` (may reach outside)."""
    w, h = size
    f = k / max(n - 1, 1)
    hh = int(h * (grow[0] + (grow[1] - grow[0]) * f))
    hw = int(round(hh * 250 / 260))
    x = int(round(-hw + f * (w + hw)))
    y = int(round((h - hh) * (0.5 + 0.3 * np.sin(2 * np.pi * f))))
    return x, y, hw, hh


def entering_clip(
    n: int = 50,
    size: tuple[int, int] = (640, 360),
    grow: tuple[float, float] = (0.45, 0.75),
    background: int = 60,
) -> list[np.ndarray]:
    """``n`` RGB frames of ``size`` (w, h): the head enters from the left edge, crosses while its
    height grows from ``grow[0]`` to ``grow[1]`` of the frame height (it also bobs up and down),
    and leaves past the right edge.  The first and last frames show no face at all."""
    import cv2

    head = _head()
    w, h = size
    out = []
    for k in range(n):
        x, y, hw, hh = _placement(k, n, size, grow)
        im = cv2.resize(head, (hw, hh), interpolation=cv2.INTER_AREA)
        c = np.full((h, w, 3), background, np.uint8)
        xs, xe = max(0, x), min(w, x + hw)
        ys, ye = max(0, y), min(h, y + hh)
        if xe > xs and ye > ys:
            c[ys:ye, xs:xe] = im[ys - y : ye - y, xs - x : xe - x]
        out.append(c)
    return out


def entering_faces(
    n: int = 50, size: tuple[int, int] = (640, 360), grow: tuple[float, float] = (0.45, 0.75)
) -> list[tuple[int, int, int, int] | None]:
    """The face's box (x0, y0, x1, y1, clipped to the frame) in each frame of
    :func:`entering_clip` with the same arguments; None where no face pixel is visible."""
    w, h = size
    out: list[tuple[int, int, int, int] | None] = []
    for k in range(n):
        x, y, hw, hh = _placement(k, n, size, grow)
        fx0, fy0, fx1, fy1 = FACE_IN_HEAD
        box = (
            max(0, int(x + fx0 * hw)),
            max(0, int(y + fy0 * hh)),
            min(w, int(x + fx1 * hw)),
            min(h, int(y + fy1 * hh)),
        )
        out.append(box if box[2] > box[0] and box[3] > box[1] else None)
    return out
