"""Marks land where the faces are; visual-prompt baselines do what their names say."""

from __future__ import annotations

import re

import numpy as np
import pytest
import supervision as sv

from sovtp.annotate.pipeline import annotate
from sovtp.render import VisualSpec, draw_marks, grid, render_frame
from sovtp.render.layout import layout_labels, mark_style, overlap
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


# --- marks a model can read: labels clear of faces and of each other, sized for the sent image


@pytest.fixture(scope="module")
def crowd(detector):
    """Five astronaut heads at different scales, two of them overlapping, detected for real."""
    from sovtp.annotate.pipeline import annotate_frames
    from sovtp.render.demo import several_faces
    from sovtp.types import Frame

    fr = Frame(0, 0.0, several_faces())
    return fr, annotate_frames([fr], detector)[0]


FULL = VisualSpec(boxes=True, ids=True, landmarks="subset", au_overlay=True, pose=True)


def _assert_tags_clear(layout, boxes):
    tags = [q for q in layout if q.kind == "id"]
    assert {q.track_id for q in tags} == set(boxes)  # every face has its tag
    for q in tags:
        for other in layout:
            if other is not q:
                assert overlap(q.rect, other.rect) == 0, (q, other)
        for tid, b in boxes.items():
            if tid != q.track_id:
                assert overlap(q.rect, tuple(int(v) for v in b)) == 0, (q, tid, b)
        assert q.touches_face(slack=q.rect[3] - q.rect[1])  # right beside its own face


def test_id_tags_are_never_hidden_on_a_five_face_frame(crowd):
    fr, fa = crowd
    assert len(fa.faces) == 5
    layout: list = []
    img = render_frame(fr, fa, FULL, layout_out=layout)
    _assert_tags_clear(layout, {f.track_id: f.bbox for f in fa.faces})
    for q in layout:  # drawn as laid out, nothing painted over a tag afterwards
        x0, y0, x1, y1 = q.rect
        colour = np.array(sv.ColorPalette.DEFAULT.by_idx(q.track_id).as_rgb())
        assert (np.abs(img[y0:y1, x0:x1].astype(int) - colour).sum(axis=2) == 0).mean() > 0.4
    aus = [q.text for q in layout if q.kind == "au"]
    assert len(aus) == 5 and all(re.fullmatch(r"AU\d+( AU\d+){0,2}|no AU", t) for t in aus)


def test_tags_stay_clear_in_a_packed_crowd():
    """Twelve faces packed in two rows closer than a tag is tall: a tag above a lower face
    would cover an upper one, so placement has to look for free room."""
    boxes = {
        i + 1: (20 + 70 * (i % 6), 40 + 80 * (i // 6), 80 + 70 * (i % 6), 110 + 80 * (i // 6))
        for i in range(12)
    }
    style = mark_style(448, 768)
    layout = layout_labels(
        boxes,
        (448, 280),
        style,
        id_texts={t: str(t) for t in boxes},
        au_texts={t: "AU12 AU6 AU25" for t in boxes},
    )
    _assert_tags_clear(layout, boxes)


def test_text_is_sized_for_the_image_as_sent(astronaut_png):
    from PIL import Image

    from sovtp.render.layout import MIN_TEXT_PX
    from sovtp.types import Face, FrameAnnotation

    for side, out_size in ((2048, 768), (512, 768), (1536, 384)):
        img = np.asarray(Image.open(astronaut_png).convert("RGB").resize((side, side)))
        k = side / 512
        face = Face(1, (180 * k, 70 * k, 270 * k, 178 * k), aus={"AU12": 0.9, "AU6": 0.5})
        fa = FrameAnnotation(0, 0.0, (side, side), [face])
        layout: list = []
        out = draw_marks(img, fa, FULL, out_size=out_size, layout_out=layout)
        sent = min(side, out_size) / side  # the prompt builder shrinks, never enlarges
        for q in layout:
            x0, y0, x1, y1 = q.rect
            ink = np.any(out[y0:y1, x0:x1] != out[y0 + 1, x0 + 1], axis=2)  # text on the fill
            rows = np.flatnonzero(ink.any(axis=1))
            # a "1" is a row shorter than the "0" the size is set by
            assert (rows[-1] - rows[0] + 1) * sent >= MIN_TEXT_PX - 1, (side, out_size, q)


def test_pose_is_drawn_from_the_shoulders_down(astronaut_png, detector):
    from PIL import Image

    from sovtp.annotate.pipeline import annotate_frames
    from sovtp.types import Frame

    fr = Frame(0, 0.0, np.asarray(Image.open(astronaut_png).convert("RGB")))
    fa = annotate_frames([fr], detector)[0]
    assert fa.persons and fa.faces
    drawn = np.any(
        render_frame(fr, fa, VisualSpec(boxes=False, ids=False, pose=True)) != fr.image, axis=2
    )
    x0, y0, x1, y1 = (int(v) for v in fa.faces[0].bbox)
    assert drawn.sum() > 500  # shoulders, arms
    assert drawn[y0:y1, x0:x1].mean() < 0.005  # no line across eyes or mouth
