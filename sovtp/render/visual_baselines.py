"""Visual-prompt baselines the SoVTP paper compares against: red circle, blur-reverse-mask, crop.

Each takes an RGB frame and the subject's face box and returns a new RGB frame.
"""

from __future__ import annotations

import numpy as np


def _expand(bbox, factor: float, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = bbox
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) * factor / 2
    return (
        int(max(0, cx - half)),
        int(max(0, cy - half)),
        int(min(w, cx + half)),
        int(min(h, cy + half)),
    )


def red_circle(image: np.ndarray, bbox, thickness: int | None = None) -> np.ndarray:
    """A red ellipse around the subject's face (Shtedritski et al., "What does CLIP know about a red circle?")."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    x0, y0, x1, y1 = bbox
    centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
    axes = (int((x1 - x0) * 0.75), int((y1 - y0) * 0.8))
    t = thickness or max(2, int(max(image.shape[:2]) / 200))
    cv2.ellipse(out, centre, axes, 0, 0, 360, (255, 0, 0), t, lineType=cv2.LINE_AA)
    return out


def blur_reverse_mask(
    image: np.ndarray, bbox, factor: float = 1.4, strength: int | None = None
) -> np.ndarray:
    """Everything but the subject's (slightly enlarged, elliptical) face region is blurred."""
    import cv2

    h, w = image.shape[:2]
    k = strength or (max(h, w) // 25) | 1
    blurred = cv2.GaussianBlur(image, (k, k), 0)
    mask = np.zeros((h, w), dtype=np.float32)
    x0, y0, x1, y1 = _expand(bbox, factor, w, h)
    cv2.ellipse(
        mask, ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2), 0, 0, 360, 1.0, -1
    )
    mask = cv2.GaussianBlur(mask, (k, k), 0)[..., None]
    return (image * mask + blurred * (1 - mask)).astype(np.uint8)


CROP_FACTOR = 1.6


def crop_box(bbox, w: int, h: int, factor: float = CROP_FACTOR) -> tuple[int, int, int, int]:
    """The region :func:`crop` keeps of a w×h frame (marks are sized for it)."""
    return _expand(bbox, factor, w, h)


def crop(image: np.ndarray, bbox, factor: float = CROP_FACTOR) -> np.ndarray:
    """The subject's face, square, with some context around it."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = crop_box(bbox, w, h, factor)
    return np.ascontiguousarray(image[y0:y1, x0:x1])
