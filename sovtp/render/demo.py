"""A several-face frame made from ``skimage.data.astronaut()`` (public domain): five copies of
the head at different scales, some overlapping, on a 1024×576 canvas.

It is the crowded case the label layout is tested on and what ``tools/make_readme_frame.py``
draws for the README; MediaPipe finds all five faces in it.
"""

from __future__ import annotations

import numpy as np

HEAD = (slice(0, 300), slice(90, 370))  # the astronaut's head and shoulders
# (scale, x, y) of each copy; the MediaPipe face box of a copy is about its
# (0.32, 0.24)–(0.64, 0.59) fraction, the astronaut's face inside the crop
PLACES = [(1.0, 10, 250), (0.9, 230, 150), (0.8, 440, 260), (0.75, 620, 110), (0.75, 800, 290)]
SIZE = (1024, 576)  # width, height


def several_faces() -> np.ndarray:
    """The 1024×576 RGB canvas with five astronaut heads."""
    from PIL import Image

    from sovtp.media.sample import astronaut

    head = astronaut()[HEAD]
    w, h = SIZE
    canvas = np.full((h, w, 3), 90, np.uint8)
    for s, x, y in PLACES:
        im = Image.fromarray(head).resize(
            (int(head.shape[1] * s), int(head.shape[0] * s)), Image.Resampling.LANCZOS
        )
        a = np.asarray(im)
        canvas[y : y + a.shape[0], x : x + a.shape[1]] = a[: h - y, : w - x]
    return canvas
