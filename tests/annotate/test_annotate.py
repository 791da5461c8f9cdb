"""MediaPipe on real faces: landmarks, AUs, stable IDs, cues, the annotation cache."""

from __future__ import annotations

import json

import numpy as np

from sovtp.annotate.aus import blendshapes_to_aus
from sovtp.annotate.cache import AnnotationCache
from sovtp.annotate.pipeline import annotate
from sovtp.annotate.tracking import FaceTracker
from sovtp.backends.facs import FacsBackend
from sovtp.facs import active_aus, prominent_aus, read_expression, unilateral
from sovtp.records import Query
from sovtp.types import Face, FrameAnnotation


def test_astronaut_one_face_478_landmarks_smile_aus(astronaut_png, detector):
    clip, frames = annotate(astronaut_png, "uniform:1", detector=detector, cache=False)
    (fa,) = clip.frames
    assert len(fa.faces) == 1
    face = fa.faces[0]
    assert face.track_id == 1
    assert face.landmarks.shape == (478, 2)
    assert len(face.blendshapes) == 52
    x0, y0, x1, y1 = face.bbox  # her face sits around x 180-270, y 70-180 in the 512² photo
    assert 150 < x0 < 210 and 240 < x1 < 300 and 40 < y0 < 110 and 150 < y1 < 210
    active = active_aus(face.aus)
    assert "AU12" in active and active["AU12"] > 0.6, active  # lip corner puller: the smile
    assert "AU12" in prominent_aus(face.aus)
    assert face.head_pose is not None and abs(face.head_pose[0]) < 20
    expr = next(c for c in clip.cues if c.kind == "expression" and c.subject == 1)
    assert "happiness" in expr.text
    au_cue = next(c for c in clip.cues if c.kind == "au")
    assert "AU12 lip corner puller" in au_cue.text


def test_panning_video_keeps_one_id(pan_mp4, detector):
    clip, frames = annotate(pan_mp4, "all", detector=detector, cache=False)
    assert len(frames) == 30
    assert all(len(fr.faces) == 1 for fr in clip.frames)
    assert {f.track_id for fr in clip.frames for f in fr.faces} == {1}
    xs = [fr.faces[0].center[0] for fr in clip.frames]
    assert xs[-1] - xs[0] > 150  # it really moved


def test_two_faces_numbered_left_to_right(two_faces_png, detector):
    clip, _ = annotate(two_faces_png, "uniform:1", detector=detector, cache=False)
    faces = clip.frames[0].faces
    assert [f.track_id for f in faces] == [1, 2]
    assert faces[0].center[0] < 512 < faces[1].center[0]
    # the mirrored copy turns the head roll around
    assert np.sign(faces[0].head_pose[2]) == -np.sign(faces[1].head_pose[2])
    others = [c for c in clip.cues if c.kind == "expression"]
    assert {c.subject for c in others} == {1, 2}
    scene = next(c for c in clip.cues if c.name == "people")
    assert "person 1 on the left" in scene.text and "person 2 on the right" in scene.text


def test_no_face_is_a_cue_not_an_error(no_face_png, detector):
    clip, _ = annotate(no_face_png, "uniform:1", detector=detector, cache=False)
    assert clip.frames[0].faces == []
    assert any("no face visible" in c.text for c in clip.cues)


def test_cache_hit_runs_no_detection(astronaut_png, detector, tmp_path):
    cache = AnnotationCache(tmp_path)
    before = detector.calls
    first, _ = annotate(astronaut_png, "uniform:1", detector=detector, cache=cache)
    assert detector.calls == before + 1 and not first.cached
    second, frames = annotate(astronaut_png, "uniform:1", detector=detector, cache=cache)
    assert detector.calls == before + 1 and second.cached
    assert second.to_dict()["frames"] == first.to_dict()["frames"]
    assert len(frames) == 1  # pixels are still decoded for drawing
    third, _ = annotate(astronaut_png, "uniform:2", detector=detector, cache=cache)
    assert not third.cached  # another sampling is another key


def _frame(boxes):
    return FrameAnnotation(0, 0.0, (640, 360), [Face(0, b) for b in boxes])


def test_tracker_ids_survive_missed_frames_and_number_new_faces_left_to_right():
    tr = FaceTracker(max_missed=2)
    f = tr.update(_frame([(400, 50, 480, 150), (100, 60, 180, 160)]))
    assert [(x.track_id, x.bbox[0]) for x in f.faces] == [(1, 100), (2, 400)]
    tr.update(_frame([(105, 60, 185, 160)]))  # face 2 missed
    tr.update(_frame([(110, 60, 190, 160)]))  # missed again
    f = tr.update(_frame([(112, 60, 192, 160), (395, 52, 475, 152)]))
    assert {x.track_id: x.bbox[0] for x in f.faces} == {1: 112, 2: 395}
    for _ in range(3):
        tr.update(_frame([(112, 60, 192, 160)]))
    f = tr.update(_frame([(112, 60, 192, 160), (395, 52, 475, 152)]))
    assert {x.track_id for x in f.faces} == {1, 3}  # gone too long: a new ID


def test_au_table_sides_and_derived_aus():
    bs = {
        "mouthSmileLeft": 0.8,
        "mouthSmileRight": 0.1,
        "jawOpen": 0.5,
        "mouthClose": 0.1,
        "browInnerUp": 0.6,
        "eyeBlinkLeft": 0.9,
        "eyeBlinkRight": 0.85,
    }
    r = blendshapes_to_aus(bs)
    assert r.aus["AU12"] == 0.8 and r.sides["AU12"] == (0.8, 0.1)
    assert unilateral(r.sides, "AU12") == "left"
    assert r.aus["AU25"] == 0.4 and r.aus["AU26"] == 0.5 and r.aus["AU1"] == 0.6
    assert r.aus["AU45"] == 0.9
    assert read_expression(r.aus, r.sides).scores["contempt"] > 0.9


def test_prototypes_pick_the_expected_emotion():
    cases = {
        "happiness": {"AU6": 0.7, "AU12": 0.9},
        "sadness": {"AU1": 0.6, "AU4": 0.6, "AU15": 0.7},
        "surprise": {"AU1": 0.8, "AU2": 0.8, "AU5": 0.7, "AU26": 0.8},
        "anger": {"AU4": 0.9, "AU7": 0.7, "AU23": 0.6, "AU5": 0.4},
        "disgust": {"AU9": 0.8, "AU15": 0.5, "AU16": 0.5, "AU10": 0.6},
        "neutral": {"AU12": 0.05, "AU25": 0.4},
    }
    for emo, aus in cases.items():
        assert read_expression(aus).top == emo, (emo, read_expression(aus).scores)


def test_an_unmeasured_prototype_is_neither_found_nor_ruled_out():
    """A turned head leaves AU9/AU10/AU15 unmeasured: the reading must not treat them as 0 —
    disgust is 'not checked' — and a gap is no evidence either way: a face with nothing active
    stays neutral, and the reasoner never calls the label it chose unchecked."""
    from sovtp.facs import AU_NAMES, describe

    rest = {a: 0.0 for a in AU_NAMES}
    turned = {a: v for a, v in rest.items() if a not in ("AU6", "AU9", "AU10", "AU15", "AU23")}
    full, part = read_expression(rest), read_expression(turned)
    assert full.top == part.top == "neutral" and not full.unchecked
    assert part.unchecked == {"disgust": ["AU9", "AU10", "AU15"]}
    assert part.scores["neutral"] == full.scores["neutral"] == 1.0
    assert describe(full) == "looks neutral (no expressive action unit active)"
    assert "disgust not checked: AU9, AU10, AU15 not measured" in describe(part)
    empty = describe(read_expression({}))
    assert empty == "reads as no expression (its action units were not measured)"
    # weak AU12+AU6 below the threshold, other AUs unmeasured: still neutral, as when measured
    weak = {"AU12": 0.29, "AU6": 0.29, "AU2": 0.0, "AU7": 0.0}
    assert read_expression(weak).top == "neutral"
    # sadness chosen on AU1+AU4 with AU15 unmeasured: said as a gap, not "neither found"
    sad = {a: 0.0 for a in AU_NAMES if a not in ("AU6", "AU9", "AU10", "AU15", "AU17", "AU23")}
    sad |= {"AU1": 0.6, "AU4": 0.6}
    q = Query(id="q", messages=[], meta={"facs": {"aus": sad, "unmeasured": {}}}, output="json")
    answer = json.loads(FacsBackend().answer(q).text)
    assert answer["label"] == "sad"
    assert (
        "sadness matches best on the AUs measured (AU15, AU17 not measured)" in answer["rationale"]
    )
    assert "sad is neither" not in answer["rationale"]
    assert "so disgust is neither found nor ruled out" in answer["rationale"]
    # the staged contract says it in its AU stage too, not only in the final rationale
    staged = q.model_copy(update={"output": "staged"})
    stages = json.loads(FacsBackend().answer(staged).text)
    assert "disgust is neither found nor ruled out" in stages["action_units"], stages


def test_a_cache_hit_draws_the_same_pixels_as_a_fresh_annotation(tmp_path, astronaut_png, detector):
    """The images sent (and so the response-cache keys) must not depend on whether the
    annotation came from the cache."""
    from sovtp.annotate.cache import AnnotationCache
    from sovtp.annotate.pipeline import annotate
    from sovtp.prepare import PrepareOptions, Preparer
    from sovtp.prompting.spec import load_spec

    cache = AnnotationCache(tmp_path / "cache")
    shas = []
    with Preparer(PrepareOptions(sampling="uniform:2"), detector=detector) as prep:
        for _ in range(2):
            clip, frames = annotate(astronaut_png, "uniform:2", detector=detector, cache=cache)
            _, images = prep.query(clip, frames, load_spec("sovtp/full"))
            shas.append((clip.cached, [im.ref.sha256 for im in images]))
    assert [c for c, _ in shas] == [False, True] and shas[0][1] == shas[1][1]
