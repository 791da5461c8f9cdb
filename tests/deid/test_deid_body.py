"""De-identification that keeps the body (issue 19, item 6), on real photographs built here.

Media: skimage's astronaut (public domain; a head-and-shoulders portrait), skimage's cameraman
(public domain; a man bent over a camera, coat, arms and hands in view), and a group photo of five
astronauts side by side built from the portrait.  What a user relies on: the face is gone (no
detector finds one), the shoulders, arms and hands around it are left as they were, and the
request guard does not refuse a frame because a detector read a coat or a fist as a face."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from sovtp.types import Frame

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow

SHOULDERS_ARMS = (11, 12, 13, 14, 15, 16)  # MediaPipe pose: shoulders, elbows, wrists


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img


def group_photo() -> np.ndarray:
    """Five astronauts (the portrait, every other one mirrored) side by side, 1280×360."""
    a = data.astronaut()
    c = np.full((360, 1280, 3), 90, np.uint8)
    for k, x in enumerate((0, 250, 510, 770, 1030)):
        p = np.asarray(Image.fromarray(a[:, ::-1] if k % 2 else a).resize((250, 250)))
        c[110:, x : x + 250] = p
    return c


@pytest.fixture(scope="module")
def tools():
    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
    from sovtp.deid.audit import _Landmarker
    from sovtp.deid.faces import FaceFinder

    with MediaPipeAnnotator(DetectorConfig(max_persons=6)) as det, FaceFinder() as finder:
        lm = _Landmarker()
        yield det, finder, lm
        lm.close()


def _annotate(det, img):
    det.start_clip()
    return det.detect(img)


def _deid(img, ann, mode, finder):
    from sovtp.deid.faces import deidentify_frames

    return deidentify_frames([Frame(0, 0.0, img)], [ann], mode, finder=finder)[0].image


@pytest.mark.parametrize("mode", ["blur", "pixelate", "fill"])
def test_portrait_loses_its_face_and_keeps_shoulders_and_collar(tools, mode):
    """The astronaut's face is hidden from all three detectors, while her shoulders, the suit's
    neck ring below her chin and everything a hand's width beside her face are untouched.
    The old margin reached 62 % of a face below the chin (12.2 % of the frame changed, the neck
    ring inside it); the measured one changes 8.1–8.3 % (3 modes, this machine)."""
    det, finder, lm = tools
    img = data.astronaut()
    ann = _annotate(det, img)
    (face,) = ann.faces
    (person,) = ann.persons
    out = _deid(img, ann, mode, finder)
    assert finder.find(out) == [] and lm(out) == []
    changed = np.abs(out.astype(int) - img).max(-1) > 8
    assert changed.mean() < 0.10
    kp = person.keypoints
    for k in (11, 12):  # shoulders (both visible in the portrait)
        x, y = int(kp[k, 0]), int(kp[k, 1])
        assert not changed[y - 10 : y + 10, x - 10 : x + 10].any(), f"shoulder {k} was touched"
    x0, y0, x1, y1 = (int(v) for v in face.bbox)
    h = y1 - y0
    # the neck ring, half a face below the chin, across the face's width
    assert changed[y1 + h // 2 : y1 + h, x0:x1].mean() < 0.05
    # a face's width to either side of the face, at eye height: background and hair
    assert not changed[y0 + h // 3, : max(0, x0 - (x1 - x0) // 2)].any()


@pytest.mark.parametrize("mode", ["blur", "pixelate", "fill"])
def test_group_photo_has_no_face_left_and_most_of_it_untouched(tools, mode):
    """Five faces hidden from every detector and at most 11 % of the picture changed: pixelate
    changed 18.4 % of it (its re-check chased the pixelated suits), now blur 6.8 %, pixelate
    8.1 %, fill 9.8 % (one run, this machine)."""
    det, finder, lm = tools
    img = group_photo()
    ann = _annotate(det, img)
    assert len(ann.faces) == 5
    out = _deid(img, ann, mode, finder)
    assert finder.find(out) == [] and lm(out) == []
    changed = np.abs(out.astype(int) - img).max(-1) > 8
    assert changed.mean() < 0.11
    # the suits' lower half (the badge row and below) is untouched in every mode
    assert changed[290:, :].mean() < 0.01


def test_a_hit_on_the_cameramans_body_is_told_from_his_face(tools):
    """The check the guard and the re-check use: a box on the cameraman's coat, arm or hands
    lies on his measured body and holds no face mesh (a false alarm, passed); a box on his face
    is meshed and on his head (never passed), with or without the annotation's help."""
    from sovtp.deid.body import body_false_alarm, on_body

    det, finder, _ = tools
    img = _rgb(data.camera())
    ann = _annotate(det, img)
    (person,) = ann.persons
    kp = person.keypoints
    face = finder.find(img)[0].box
    assert not body_false_alarm(img, face, ann, finder)
    assert finder.has_mesh(img, face) and not on_body(face, ann)
    # his right shoulder and elbow (the coat; both visible at >= 0.99) and his chest below them
    mid = (kp[11, :2] + kp[12, :2]) / 2 + (0, np.hypot(*(kp[11, :2] - kp[12, :2])))
    for x, y in (kp[12, :2], kp[14, :2], mid):
        box = (x - 30, y - 30, x + 30, y + 30)
        k = (int(x), int(y))
        assert body_false_alarm(img, box, ann, finder), k
        assert not body_false_alarm(img, box, None, finder)  # no annotation: no body known


def test_guard_passes_a_body_hit_and_still_refuses_a_face(tools):
    """``assert_no_faces`` with the frame's annotation: the raw portrait is refused (its face),
    the de-identified group photo and cameraman pass, and whatever a detector read on a body
    part is recorded as a note instead of a refusal."""
    from sovtp.deid.stage import assert_no_faces

    det, finder, _ = tools
    portrait = data.astronaut()
    assert assert_no_faces([portrait], finder=finder, annotations=[_annotate(det, portrait)])
    for img in (group_photo(), _rgb(data.camera())):
        ann = _annotate(det, img)
        for mode in ("blur", "pixelate"):
            out = _deid(img, ann, mode, finder)
            notes: list[str] = []
            assert assert_no_faces([out], finder=finder, annotations=[ann], notes=notes) == []
            assert all("no face mesh" in n for n in notes)


@pytest.mark.parametrize("mode", ["blur", "pixelate"])
def test_prompt_deid_writes_the_group_photo(tools, tmp_path, mode):
    """``sovtp prompt --deid`` on the five-astronaut photo writes its image (the guard refused
    it: MediaPipe read the ID tags drawn on two blurred faces' hair as faces at 0.45-0.53), and
    in the image it wrote the FaceLandmarker finds no face."""
    from PIL import Image

    from sovtp.cli.app import main

    _, _, lm = tools
    src = tmp_path / "group.png"
    Image.fromarray(group_photo()).save(src)
    out = tmp_path / "p"
    assert main(["prompt", str(src), "--deid", "--deid-mode", mode, "-o", str(out)]) == 0
    sent = np.asarray(Image.open(out / "image_0.jpg").convert("RGB"))
    assert lm(sent) == []
    text = (out / "prompt.txt").read_text()
    assert "Every face in the image is hidden" in text
