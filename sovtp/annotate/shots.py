"""Shot cuts between sampled frames: a colour-histogram test.

Why: "1 person visible" across a cut to a title card is false; the scene cue needs to know which
samples belong to one shot to say who is visible in which shot.  Only the *sampled* frames are
compared (annotation never decodes the rest), so a cut is placed between two samples, and two
samples seconds apart in one steady shot must not read as a cut.

How: each frame becomes a joint RGB histogram (:data:`BINS`³ cells over a downscaled copy,
normalised to sum 1); two consecutive samples are in different shots when the histograms'
intersection falls below :data:`SAME_SHOT` (1.0 is identical colour content).  Colour
distributions change little within a shot (a face moving, speaking, smiling) and completely
across a cut to other content or to black.  Measured (benchmarks/au_check.py prints it): within
shots on the check-set clips (a crying-then-laughing close-up over 19 s, a face starting neutral,
sampled at 8 or 24 frames) the intersection stays ≥ 0.82; across the check set's cut (a face
to black, then an animated title) it is ≤ 0.09, whether sampled at 8, 24 or every frame.  PySceneDetect is on PyPI, but it compares every
decoded frame and pulls OpenCV's own wheel, which clashes with mediapipe's cv2 (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

VERSION = "shots v1"
BINS = 8  # per channel
SIDE = 64  # frames are reduced to about this many pixels on the long side first
SAME_SHOT = 0.35  # histogram intersection at or above this: the same shot


def histogram(image: np.ndarray) -> np.ndarray:
    """A normalised joint RGB histogram (BINS³ cells) of a downscaled frame."""
    img = np.asarray(image)[..., :3]
    step = max(1, int(max(img.shape[:2]) // SIDE))
    small = img[::step, ::step].astype(np.int64) * BINS // 256
    idx = (small[..., 0] * BINS + small[..., 1]) * BINS + small[..., 2]
    h = np.bincount(idx.ravel(), minlength=BINS**3).astype(np.float64)
    return h / max(h.sum(), 1.0)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection of two frames' histograms: 1.0 identical, 0.0 disjoint."""
    return float(np.minimum(a, b).sum())


def similarities(images: Sequence[np.ndarray]) -> list[float]:
    """Intersection between each pair of consecutive frames (len(images) − 1 values)."""
    hists = [histogram(im) for im in images]
    return [similarity(a, b) for a, b in zip(hists, hists[1:], strict=False)]


def detect_shots(
    images: Sequence[np.ndarray], threshold: float = SAME_SHOT
) -> list[tuple[int, int]]:
    """Shots as [first, last] positions (inclusive) into ``images``; one shot when no cut,
    none for no images."""
    if not len(images):
        return []
    shots: list[tuple[int, int]] = []
    start = 0
    for k, sim in enumerate(similarities(images)):
        if sim < threshold:
            shots.append((start, k))
            start = k + 1
    shots.append((start, len(images) - 1))
    return shots
