"""Following faces between searches (DetectorConfig.track): VIDEO-mode landmarkers in crops,
a detector-only look for new faces, and a whole search on a clip's first frame or a lost face.

Media are built here from the astronaut's face (public domain): scaled copies on plain canvases.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
from sovtp.media.sample import astronaut, panning_clip

_CROP = astronaut()[30:230, 125:325]  # her face, about half of this 200² crop


def _face(size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(_CROP).resize((size, size)))


def _canvas(w: int, h: int, places: list[tuple[int, int, int]]) -> np.ndarray:
    """A grey ``w``×``h`` frame with a face crop of side ``s`` at each (s, x, y)."""
    img = np.full((h, w, 3), 90, dtype=np.uint8)
    for s, x, y in places:
        img[y : y + s, x : x + s] = _face(s)
    return img


FIVE = [(180, 20, 100), (150, 290, 150), (200, 520, 60), (170, 800, 120), (190, 1060, 90)]


@pytest.fixture(scope="module")
def det():
    with MediaPipeAnnotator(DetectorConfig(pose=False)) as d:
        yield d


def _run(det, frames, t0: float = 0.0, fps: float = 10.0):
    return [det.detect(f, k, t0 + k / fps) for k, f in enumerate(frames)]


def test_five_people_photo_and_clip_keep_five_faces(det):
    img = _canvas(1280, 400, FIVE)
    (fa,) = _run(det, [img])
    assert len(fa.faces) == 5
    xs = sorted(f.center[0] for f in fa.faces)
    assert all(abs(x - (px + s / 2)) < s / 4 for x, (s, px, _) in zip(xs, FIVE, strict=True))
    before = det.searches
    clip = [_canvas(1280, 400, [(s, x + 3 * k, y) for s, x, y in FIVE]) for k in range(4)]
    anns = _run(det, clip)
    assert [len(a.faces) for a in anns] == [5, 5, 5, 5]
    assert det.searches == before + 1  # one search; the other frames follow the five faces


def test_small_face_in_wide_frame_is_found_and_followed(det):
    frames = [_canvas(960, 540, [(150, 300 + 6 * k, 200)]) for k in range(12)]
    with MediaPipeAnnotator(DetectorConfig(pose=False, tiles="off")) as whole:
        assert whole.detect(frames[0]).faces == []  # too small for a whole-frame search
    before, scans = det.searches, det.scans
    anns = _run(det, frames)
    assert all(len(a.faces) == 1 for a in anns), [len(a.faces) for a in anns]
    assert det.searches == before + 1  # found once, then followed in VIDEO mode
    assert det.scans == scans + 1  # 1 s later the detector alone checks for new faces
    xs = [a.faces[0].center[0] for a in anns]
    assert 300 < xs[0] < 450 and 55 < xs[-1] - xs[0] < 75  # it moved 66 px


def test_moving_face_is_followed_and_matches_a_whole_search(det):
    frames = panning_clip(2.0, 10)
    before = det.searches
    anns = _run(det, frames)
    assert all(len(a.faces) == 1 for a in anns)
    assert det.searches - before <= 2
    assert anns[-1].faces[0].center[0] - anns[0].faces[0].center[0] > 150
    with MediaPipeAnnotator(DetectorConfig(pose=False, track=False)) as every:
        ref = _run(every, frames[7:9], 0.7)
        assert every.searches == 2
    for a, r in zip(anns[7:9], ref, strict=True):
        gap = np.abs(a.faces[0].landmarks - r.faces[0].landmarks).mean()
        assert gap < 2.0, gap  # following costs no accuracy
        assert len(a.faces[0].blendshapes) == 52 and a.faces[0].depth.shape == (478,)
        assert a.faces[0].transform.shape == (4, 4)


def test_a_new_clip_is_searched_whether_timestamps_restart_or_start_clip_says_so(det):
    one = [_canvas(640, 360, [(150, 80 + 4 * k, 100)]) for k in range(5)]
    # the next clip holds the same face where the last one left it, and a second one
    two = [_canvas(640, 360, [(150, 96, 100), (150, 400, 100)]) for _ in range(3)]
    assert [len(a.faces) for a in _run(det, one)] == [1] * 5
    assert [len(a.faces) for a in _run(det, two)] == [2] * 3  # timestamps restart at 0
    assert [len(a.faces) for a in _run(det, one)] == [1] * 5
    det.start_clip()  # timestamps that go on need the explicit call
    assert [len(a.faces) for a in _run(det, two, t0=0.5)] == [2] * 3


def test_a_face_that_appears_is_found_by_the_next_periodic_look(det):
    cfg = DetectorConfig(pose=False, search_every=4)
    frames = [
        _canvas(640, 360, [(150, 80, 100)] + ([(150, 400, 100)] if k >= 2 else []))
        for k in range(8)
    ]
    with MediaPipeAnnotator(cfg) as d:
        n = [len(a.faces) for a in _run(d, frames)]
        assert d.scans == 1 and d.searches == 2  # the look saw a new face: a search followed
    assert n == [1, 1, 1, 1, 2, 2, 2, 2]  # found at frame 4, the first look after it came


def test_following_is_part_of_the_cache_key():
    a, b = DetectorConfig().key(), DetectorConfig(track=False).key()
    assert a != b and {"track", "search_every", "search_every_s", "crop_scale"} <= a.keys()
