"""Marks land where the faces are; visual-prompt baselines do what their names say."""

from __future__ import annotations

import numpy as np

from sovtp.annotate.pipeline import annotate
from sovtp.render import VisualSpec, grid, render_frame
from sovtp.render.visual_baselines import blur_reverse_mask, crop, red_circle


def test_marks_are_drawn_on_faces_and_switchable(two_faces_png, detector):
    clip, frames = annotate(two_faces_png, "uniform:1", detector=detector, cache=False)
    fr, fa = frames[0], clip.frames[0]
    plain = render_frame(fr, fa, VisualSpec(boxes=False, ids=False))
    assert np.array_equal(plain, fr.image)
    boxed = render_frame(
        fr, fa, VisualSpec(boxes=True, ids=True, landmarks="subset", au_overlay=True, pose=True)
    )
    diff = np.any(boxed != fr.image, axis=2)
    for face in fa.faces:
        x0, y0, x1, y1 = (int(v) for v in face.bbox)
        assert diff[y0 - 2 : y1 + 3, x0 - 2 : x1 + 3].mean() > 0.05  # box edge + landmarks
    assert diff[420:, 400:620].mean() < 0.2  # the helmets far from any face stay mostly untouched
    all_lm = render_frame(fr, fa, VisualSpec(boxes=False, ids=False, landmarks="all"))
    some_lm = render_frame(fr, fa, VisualSpec(boxes=False, ids=False, landmarks="subset"))
    assert np.any(all_lm != fr.image, axis=2).sum() > np.any(some_lm != fr.image, axis=2).sum()


def test_visual_baselines(astronaut_png):
    from PIL import Image

    img = np.asarray(Image.open(astronaut_png).convert("RGB"))
    box = (180, 70, 270, 178)
    rc = red_circle(img, box)
    changed = np.any(rc != img, axis=2)
    assert changed.any()
    assert (rc[changed][:, 0] > 150).mean() > 0.5 and (rc[changed][:, 2] < 120).mean() > 0.5
    brm = blur_reverse_mask(img, box)
    inside = np.abs(brm[110:140, 210:240].astype(int) - img[110:140, 210:240]).mean()
    outside = np.abs(brm[350:500, 0:150].astype(int) - img[350:500, 0:150]).mean()
    assert inside < 2 < outside
    c = crop(img, box)
    assert c.shape[0] == c.shape[1] and 120 < c.shape[0] < 200
    g = grid([img, img, img], cols=2, cell=100)
    assert g.shape == (200, 200, 3)
