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


def _body_gap(a, b) -> float:
    """Mean distance between the keypoints two runs both call visible, over b's shoulders."""
    ka, kb = a.persons[0].keypoints, b.persons[0].keypoints
    vis = (ka[:, 2] >= 0.5) & (kb[:, 2] >= 0.5)
    gap = np.hypot(*(ka[vis, :2] - kb[vis, :2]).T).mean()
    return float(gap / np.hypot(*(kb[11, :2] - kb[12, :2])))


@pytest.mark.slow
def test_a_moving_body_is_followed_not_searched_and_matches_a_search():
    """The body pass runs its person detector once on a 2 s pan and follows the body after;
    its keypoints stay near a search of each frame (measured: median 0.045 of the shoulder
    width, max 0.08; the search moves 0.022 when the frame shifts 2 px, and a body one frame
    late reads 0.05), and the same frames give the same keypoints from a fresh annotator."""
    frames = panning_clip(2.0, 10)
    with MediaPipeAnnotator(DetectorConfig()) as d:
        got = _run(d, frames)
        assert d.pose_searches == 1  # the clip's first frame; the other 19 follow
        again = _run(d, frames)  # timestamps restart: a new clip, followed anew
    with MediaPipeAnnotator(DetectorConfig(pose_track=False)) as every:
        ref = _run(every, frames)
        assert every.pose_searches == len(frames)
    assert all(len(a.persons) == 1 for a in got)
    gaps = [_body_gap(a, r) for a, r in zip(got, ref, strict=True) if r.persons]
    assert len(gaps) >= len(frames) - 1
    assert np.median(gaps) < 0.07 and max(gaps) < 0.14, gaps
    for a, b in zip(got, again, strict=True):
        assert a.persons[0].keypoints.tobytes() == b.persons[0].keypoints.tobytes()


@pytest.mark.slow
def test_a_body_that_comes_in_is_found_one_frame_after_its_face():
    """A second person steps in at frame 4: the face look finds the face there, and the body is
    searched for on the next frame (then both are followed)."""
    small = np.asarray(Image.fromarray(astronaut()).resize((300, 300)))

    def frame(k: int) -> np.ndarray:
        img = np.full((320, 800, 3), 40, dtype=np.uint8)
        img[20:320, 40 + 3 * k : 340 + 3 * k] = small
        if k >= 4:
            img[20:320, 460:760] = small
        return img

    with MediaPipeAnnotator(DetectorConfig(search_every=4)) as d:
        anns = _run(d, [frame(k) for k in range(10)])
        assert d.pose_searches == 2  # the first frame and the one after the new face
    assert [len(a.faces) for a in anns] == [1] * 4 + [2] * 6
    assert [len(a.persons) for a in anns] == [1] * 5 + [2] * 5


def test_following_bodies_is_in_the_key_only_when_bodies_are_annotated():
    on, off = DetectorConfig().key(), DetectorConfig(pose_track=False).key()
    assert on != off and {"pose_track", "pose_search_every", "pose_search_every_s"} <= on.keys()
    # a face-only annotation is made the same way as before: its cached entries stay valid
    assert DetectorConfig(pose=False).key() == DetectorConfig(pose=False, pose_track=False).key()
    assert "pose_track" not in DetectorConfig(pose=False).key()
    # and the hands' model stays in the key exactly when hands are on, body or no body
    assert "hand_model" not in on and "hand_model" in DetectorConfig(pose=False, hands=True).key()
