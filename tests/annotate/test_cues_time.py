"""Time in video: short events survive (peak, onset/apex/offset, duration), apex:N finds them,
posture events carry their times, and cues say which AUs were not measured."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image, ImageFilter

from sovtp.annotate.apex import choose
from sovtp.annotate.cache import AnnotationCache
from sovtp.annotate.cues import clip_cues, face_cues
from sovtp.annotate.pipeline import annotate
from sovtp.backends.facs import FacsBackend
from sovtp.media.sample import astronaut, write_video
from sovtp.prompting.build import facs_payload
from sovtp.records import Query
from sovtp.types import ClipAnnotation, Face, FrameAnnotation, Person

FPS = 10
BURST = range(12, 16)  # the smile holds in frames 12..15: 1.2 s to 1.5 s


@pytest.fixture(scope="module")
def burst_mp4(tmp_path_factory):
    """30 frames, 256², 10 fps: the astronaut with her mouth blurred away (no smile), except a
    0.4 s burst of her real smile — a short event in a mostly neutral clip."""
    crop = astronaut()[0:256, 100:356].copy()
    pil = Image.fromarray(crop)
    box = (95, 135, 175, 185)  # her mouth in this crop
    still = pil.copy()
    still.paste(pil.crop(box).filter(ImageFilter.GaussianBlur(10)), box)
    rest = np.asarray(still)
    frames = [crop if k in BURST else rest for k in range(30)]
    return write_video(tmp_path_factory.mktemp("time") / "burst.mp4", frames, fps=FPS)


@pytest.fixture(scope="module")
def faces_only():
    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

    with MediaPipeAnnotator(DetectorConfig(pose=False)) as det:
        yield det


def _cue(clip: ClipAnnotation, name: str, subject: int | None = 1):
    return next(c for c in clip.cues if c.name == name and c.subject == subject)


def test_short_smile_survives_by_peak_and_is_dated(burst_mp4, faces_only):
    clip, frames = annotate(burst_mp4, "all", detector=faces_only, cache=False)
    assert len(frames) == 30 and all(len(fa.faces) == 1 for fa in clip.frames)
    au = _cue(clip, "active_aus")
    # the mean over the clip loses the smile; its peak keeps it, and the text words it
    assert au.value["mean"]["AU12"] < 0.3 < 0.6 < au.value["peak"]["AU12"]
    assert "AU12 lip corner puller (strong, peak" in au.text
    assert 1.15 <= au.value["peak_s"]["AU12"] <= 1.55
    line = next(a for a in _cue(clip, "au_timeline").value["aus"] if a["au"] == "AU12")
    assert line["onset_s"] == pytest.approx(1.2, abs=0.11)
    assert line["offset_s"] == pytest.approx(1.5, abs=0.11)
    assert 1.2 <= line["apex_s"] <= 1.5
    # it was on screen 0.4 s (frames 12..15 at 10 fps): the samples bound it, never stretch it
    assert line["min_s"] <= 0.4 <= line["max_s"] and line["max_s"] - line["min_s"] <= 0.21
    assert len(line["events"]) == 1 and line["frames"] == 4 and line["of_frames"] == 30
    assert (
        "AU12 lip corner puller: active in 4 of 30 frames that measured it, between" in line["text"]
    )
    assert "seen 1.2–1.5 s" in line["text"]
    # the active-AUs cue and the time line word the same total
    total = line["text"].split(": ")[1]
    assert total in au.text
    # the expression is read at its apex (co-occurring AUs), and the mean reading is reported
    expr = _cue(clip, "facs_prototype")
    assert expr.text.startswith("looks like happiness") and "on average" in expr.text
    assert max(expr.value, key=expr.value.get) == "happiness"


def test_apex_sampling_picks_the_event_records_it_and_caches(burst_mp4, faces_only, tmp_path):
    cache = AnnotationCache(tmp_path)
    before = faces_only.calls
    clip, frames = annotate(burst_mp4, "apex:3", detector=faces_only, cache=cache)
    assert faces_only.calls - before == 30 + 4  # the pass looked at every frame, then 4 annotated
    idx = [fa.index for fa in clip.frames]
    assert [f.index for f in frames] == idx
    # the picks are spread: one frame of the 0.4 s burst (its strongest), the others at least
    # min(span / 2N, 1 s) = 0.48 s from it and from each other (they were all three in the burst)
    plan_apex = [int(i) for i in clip.detectors["apex"].split("apex ")[-1].split(";")[0].split(",")]
    assert len(plan_apex) == 3 and len([i for i in plan_apex if i in BURST]) == 1
    gaps = np.diff(sorted(plan_apex)) / FPS
    assert gaps.min() >= 0.48 - 1e-9, plan_apex
    # the onset: a frame at rest just before the smile.  11 is the last one; the followed scan
    # (VIDEO-mode landmarks) scores the identical rest frames 0.14 … 1.05, so the walk back
    # from the apex stops at 9..11 — never inside the burst, never after it
    onset = int(clip.detectors["apex"].split("onset ")[-1])
    assert onset not in plan_apex and 9 <= onset <= 11
    assert sorted({*plan_apex, onset}) == idx
    assert clip.sampling == "apex:3"
    assert clip.detectors["frames"] == "indices:" + ",".join(map(str, idx))
    assert f"onset {onset}" in clip.detectors["apex"]
    assert "AU12" in _cue(clip, "active_aus").value["peak"]
    # a cache hit runs neither the pass nor the detector, and decodes the same frames
    again, frames2 = annotate(burst_mp4, "apex:3", detector=faces_only, cache=cache)
    assert again.cached and faces_only.calls - before == 34
    assert [f.index for f in frames2] == idx


def test_apex_window_looks_only_inside_it(burst_mp4, faces_only):
    clip, _ = annotate(burst_mp4, "apex:2@0-9", detector=faces_only, cache=False)
    assert clip.sampling == "apex:2@0-9" and all(fa.index <= 9 for fa in clip.frames)
    assert "scanned 10 frames" in clip.detectors["apex"]


def test_apex_on_an_image_is_its_one_frame(astronaut_png, faces_only):
    clip, frames = annotate(astronaut_png, "apex:4", detector=faces_only, cache=False)
    assert [f.index for f in frames] == [0] and clip.detectors["frames"] == "indices:0"
    with pytest.raises(ValueError, match="own frames"):
        annotate(astronaut_png, "apex:4", detector=faces_only, cache=False, frames=frames)


def test_choose_keeps_the_strongest_and_walks_back_to_the_onset():
    idx = list(range(0, 20, 2))
    scores = [0.1, 0.12, 0.1, 0.35, 0.8, 0.9, 0.7, 0.1, 0.1, 0.6]
    times = [i / 10 for i in idx]  # 0.2 s apart: a 1.8 s span, window min(1.8 / 4, 1) = 0.45 s
    top, onset = choose(idx, scores, 2, times=times)
    # 10 (0.9) wins; 8 (0.8) is 0.2 s from it and suppressed: the next peak, 18 (0.6), is kept
    assert top == [10, 18] and onset == 4  # frame 6 (0.35) is already rising: the rest is 4
    assert choose(idx, scores, 2, onset=False, times=times) == ([10, 18], None)
    # four picks: window 1.8 / 8 = 0.225 s, so 8 and 12 (0.2 s from 10) give way to 6 and 2
    assert choose(idx, scores, 4, onset=False, times=times)[0] == [2, 6, 10, 18]
    # frames bunched together leave too few outside the window: the strongest suppressed fill in
    bunched = choose([0, 1, 2, 3], [0.9, 0.8, 0.1, 0.5], 3, False, [0.0, 0.01, 0.02, 10.0])
    assert bunched == ([0, 1, 3], None)
    assert choose([0, 1, 2], [0.9, 0.5, 0.2], 1) == ([0], None)  # it starts at its apex
    assert choose([0, 1, 2], [0.2, 0.2, 0.2], 5) == ([0, 1, 2], None)  # nothing moves


def test_the_onset_belongs_to_the_face_that_peaked_and_is_at_rest():
    """Two faces: face 2 peaks at position 6; face 1 is expressive throughout and absent at 3.
    The onset is face 2's last rest frame before its apex (4), not a frame where the *frame*
    score is low because the expressive face 1 was missing (3), nor face 1's frames."""
    idx = list(range(8))
    f1 = {0: 0.7, 1: 0.7, 2: 0.7, 4: 0.7, 5: 0.7, 6: 0.7, 7: 0.7}
    f2 = {0: 0.1, 1: 0.1, 2: 0.1, 3: 0.1, 4: 0.1, 5: 0.6, 6: 1.2, 7: 0.2}
    per = [{t: d[k] for t, d in ((1, f1), (2, f2)) if k in d} for k in idx]
    scores = [max(d.values()) for d in per]
    top, onset = choose(idx, scores, 1, times=[float(k) for k in idx], face_scores=per)
    assert top == [6] and onset == 4
    # the peaking face lost on the way back (a cut): no onset rather than another face's frame
    per[5].pop(2)
    assert choose(idx, scores, 1, times=[float(k) for k in idx], face_scores=per)[1] is None


def _body(hand_at_face: bool) -> Person:
    kp = np.zeros((33, 3), np.float32)
    kp[:, 2] = 1.0
    kp[0, :2] = (250, 200)  # nose
    kp[2, :2], kp[5, :2] = (235, 190), (265, 190)  # eyes
    kp[7, :2], kp[8, :2] = (280, 200), (220, 200)  # ears
    kp[11, :2], kp[12, :2] = (300, 300), (200, 300)  # shoulders (subject's left on image right)
    kp[23, :2], kp[24, :2] = (290, 500), (210, 500)  # hips
    lw = (255, 215) if hand_at_face else (310, 450)
    kp[15, :2], kp[19, :2] = lw, lw
    kp[16, :2], kp[20, :2] = (190, 450), (190, 450)
    return Person(1, kp, face_id=1)


def test_brief_posture_event_counts_with_its_times():
    frames = [FrameAnnotation(k, k / FPS, (512, 512), [], [_body(3 <= k <= 5)]) for k in range(10)]
    clip = ClipAnnotation("x.mp4", "0" * 64, "all", frames)
    cues = [c for c in clip_cues(clip) if c.kind == "posture"]
    hand = next(c for c in cues if c.name == "hand_at_face")  # 3 of 10 frames: it still counts
    assert hand.text == "a hand at the face (0.3–0.5 s)"
    assert hand.value["share"] == 0.3 and hand.confidence == pytest.approx(0.3)
    (ev,) = hand.value["events"]
    assert (ev["onset_s"], ev["offset_s"], ev["frames"]) == (0.3, 0.5, 3)


def _face(aus: dict[str, float], methods: str = "blendshape") -> Face:
    return Face(
        1,
        (100, 100, 200, 220),
        aus=aus,
        au_sides={"AU12": (aus.get("AU12", 0.0),) * 2},
        au_methods=dict.fromkeys(aus, methods),
    )


def _series(code: str, on: list[bool], spacing: float, value: float = 0.8):
    """Faces over sampled frames ``spacing`` s apart with ``code`` at ``value`` where ``on``."""
    faces = [_face({code: value if o else 0.0, "AU1": 0.0}) for o in on]
    return faces, [k * spacing for k in range(len(on))]


def test_a_blink_in_sparse_samples_is_never_given_a_duration():
    """The issue's 'AU45 blink (strong) ... for 7.4 s': eyes caught closed in 3 of 8 samples
    1.07 s apart are three moments, not seconds of closure."""
    faces, times = _series("AU45", [0, 0, 1, 1, 0, 0, 1, 0], 1.07, 0.9)
    cues = face_cues(1, faces, times=times)
    au = next(c for c in cues if c.name == "active_aus")
    assert (
        "AU45 blink (strong, peak 0.90 at 2.1 s; eyes closed in 3 of 8 frames that measured it "
        in au.text
    )
    assert "(at 2.1, 3.2, 6.4 s)" in au.text
    line = next(c for c in cues if c.name == "au_timeline").text
    for text in (au.text, line):
        assert not re.search(r"for [0-9]", text) and "between" not in text
        assert "lasting" not in text and " in all" not in text


def test_durations_are_bounded_by_the_samples_and_cue_and_time_line_agree():
    """Seen in samples 3..5 of 10, one second apart, and in sample 8: at least 2 s (3 → 5), at
    most 4 s (2 → 6) for the first; under 2 s for the one-frame second.  The old wording added a
    spacing per event ('for 4.0 s') and summed more than the time line showed."""
    faces, times = _series("AU12", [0, 0, 0, 1, 1, 1, 0, 0, 1, 0], 1.0)
    cues = face_cues(1, faces, times=times)
    au = next(c for c in cues if c.name == "active_aus")
    line = next(c for c in cues if c.name == "au_timeline")
    assert "active in 4 of 10 frames that measured it, between 2.0 and 6.0 s in all" in au.text
    assert line.text.startswith(
        "AU12 lip corner puller: active in 4 of 10 frames that measured it, between 2.0 and 6.0 s in all: "
        "seen 3.0–5.0 s, apex 3.0 s (strong, 0.80), lasting between 2.0 and 4.0 s; "
        "then seen at 8.0 s (strong, 0.80), lasting under 2.0 s"
    )
    (tl,) = line.value["aus"]
    assert (tl["min_s"], tl["max_s"]) == (2.0, 6.0)
    # more events than the time line words: the total still counts them all, in both texts
    # (each single frame is bounded by its neighbours: 2 s at most each)
    faces, times = _series("AU12", [0, 1, 0, 1, 0, 1, 0, 1, 0], 1.0)
    cues = face_cues(1, faces, times=times)
    au = next(c for c in cues if c.name == "active_aus").text
    line = next(c for c in cues if c.name == "au_timeline").text
    total = "active in 4 of 9 frames that measured it, under 8.0 s in all"
    assert total in au and total in line and "(and 1 weaker time)" in line


def test_a_face_out_of_shot_or_an_unmeasured_frame_bounds_no_duration():
    """The smile is on in the face's last two samples and then the clip cuts away (the face is
    in 3 of 8 samples): nothing says when it ended, so it lasted *at least* 1 s — not 'under
    1.6 s' from the face's own edge.  A frame that could not measure the AU (a hand over the
    mouth) is no evidence of its absence either: the bound reaches past it."""
    faces, _ = _series("AU12", [0, 1, 1], 1.0)
    cues = face_cues(1, faces, times=[0.0, 1.0, 2.0], clip_times=[float(k) for k in range(8)])
    au = next(c for c in cues if c.name == "active_aus")
    assert "active in 2 of 3 frames that measured it, at least 1.0 s in all" in au.text
    (tl,) = next(c for c in cues if c.name == "au_timeline").value["aus"]
    assert tl["max_s"] is None and tl["min_s"] == 1.0
    # on at 3 s, not measured at 4 s (hand), off at 5 s: at most 5 - 2 = 3 s, not 2 s
    faces, times = _series("AU12", [0, 0, 0, 1, 0, 0], 1.0)
    faces[4].aus.pop("AU12")
    cues = face_cues(1, faces, times=times)
    (tl,) = next(c for c in cues if c.name == "au_timeline").value["aus"]
    assert (tl["min_s"], tl["max_s"]) == (0.0, 3.0)
    # seen in the clip's very first sample: it may have begun before, so no upper bound
    faces, times = _series("AU12", [1, 1, 0, 0], 1.0)
    text = next(c for c in face_cues(1, faces, times=times) if c.name == "active_aus").text
    assert "at least 1.0 s in all" in text


def test_cues_word_only_measured_aus_and_name_the_missing():
    base = {"AU1": 0.0, "AU2": 0.0, "AU4": 0.0, "AU5": 0.0, "AU7": 0.1, "AU10": 0.0}
    base |= {"AU15": 0.0, "AU16": 0.0, "AU17": 0.0, "AU20": 0.0, "AU23": 0.0, "AU26": 0.0}
    still = face_cues(1, [_face(base | {"AU12": 0.8})], times=[0.0])
    au = next(c for c in still if c.name == "active_aus")
    assert au.text == (
        "AU12 lip corner puller (strong, 0.80); not measured: AU6 cheek raiser, AU9 nose wrinkler"
        " (no measure for it ran on this face)"
    )
    assert au.value["not_measured"] == ["AU6", "AU9"]
    assert au.value["methods"]["AU12"] == "blendshape"
    assert not any(c.name == "au_timeline" for c in still)  # one frame has no time line
    measured = face_cues(1, [_face(base | {"AU6": 0.5, "AU9": 0.0, "AU12": 0.8})], times=[0.0])
    text = next(c for c in measured if c.name == "active_aus").text
    assert "not measured" not in text and "AU6 cheek raiser (marked, 0.50)" in text
    nothing = face_cues(1, [Face(1, (0, 0, 10, 10))], times=[0.0])
    assert next(c for c in nothing if c.name == "active_aus").text == "no action unit measured"


def test_readers_of_cue_values_still_work(burst_mp4, faces_only):
    clip, _ = annotate(burst_mp4, "apex:3", detector=faces_only, cache=False)
    payload = facs_payload(clip, 1)
    assert payload is not None and "AU12" in payload["aus"] and "AU12" in payload["sides"]
    q = Query(id="q", messages=[], labels=["happy", "neutral"], meta={"facs": payload})
    assert FacsBackend().answer(q).error is None


def test_a_face_seen_in_3_of_8_samples_is_not_one_person_visible():
    """The issue's cut to an animated title: the face is in 3 of 8 samples.  The scene says so
    with its times, counts the empty samples, and with shots says who is in which."""
    from sovtp.annotate.scene import scene_cues

    frames = [
        FrameAnnotation(
            k, round(k * 1.07, 2), (640, 360), [Face(1, (300, 100, 380, 200))] if k < 3 else []
        )
        for k in range(8)
    ]
    clip = ClipAnnotation("x.mp4", "0" * 64, "uniform:8", frames)
    (people,) = scene_cues(clip)
    assert people.text == (
        "1 person seen: person 1 in the centre (in 3 of 8 sampled frames, 0.0–2.1 s); "
        "no face in 5 of 8 sampled frames"
    )
    assert "visible" not in people.text
    clip.shots = [(0, 2), (3, 7)]
    people, shots = scene_cues(clip)
    assert shots.text == (
        "2 shots (cuts between them): shot 1 (0.0–2.1 s, 3 of 8 sampled frames): person 1; "
        "shot 2 (3.2–7.5 s, 5 of 8 sampled frames): no face"
    )
    # seen in every sample: the plain wording stays
    for fr in frames:
        fr.faces = [Face(1, (300, 100, 380, 200))]
    assert scene_cues(clip)[0].text == "1 person visible: person 1 in the centre"


def test_unmeasured_aus_are_listed_with_why_and_hidden_eyes_give_no_gaze():
    """What a measure withdrew (Face.au_unmeasured, Face.occlusion) is worded with its reason and
    share; the geometric AUs name their reference; eyes behind dark glasses give no gaze."""
    lm = np.zeros((478, 2), np.float32)
    lm[:, 0], lm[:, 1] = np.linspace(100, 200, 478), np.linspace(100, 220, 478)
    faces = []
    for k in range(4):
        f = _face({"AU1": 0.0, "AU9": 0.6, "AU12": 0.7, "AU25": 0.2})
        f.landmarks, f.au_methods["AU9"], f.au_reference = lm, "geometry", "own neutral"
        f.au_unmeasured = {"AU17": "mouth open"}
        if k >= 2:  # a hand over the mouth in the last two frames
            f.aus.pop("AU12")
            f.au_unmeasured["AU12"] = "mouth covered by a hand"
            f.occlusion = {"mouth": "hand", "eyes": "dark glasses"}
        faces.append(f)
    cues = {c.name: c for c in face_cues(1, faces, times=[0.0, 1.0, 2.0, 3.0])}
    au = cues["active_aus"]
    gaps = au.value["unmeasured"]
    assert gaps["AU17"] == {"frames": 4, "of": 4, "why": {"mouth open": 4}}
    assert gaps["AU12"] == {"frames": 2, "of": 4, "why": {"mouth covered by a hand": 2}}
    text = au.value["unmeasured_text"]
    assert "AU17 chin raiser (mouth open)" in text
    assert (
        "AU12 lip corner puller in 2 of 4 frames showing the face (mouth covered by a hand)" in text
    )
    assert au.value["reference_text"] == (
        "geometric AUs (AU9) measured against this person's own neutral frames"
    )
    assert au.text.endswith(au.value["reference_text"]) and "; not measured: " in au.text
    assert cues["occlusion"].text == (
        "mouth covered by a hand (in 2 of 4 frames showing the face, 2.0–3.0 s); "
        "eyes hidden by dark glasses (in 2 of 4 frames showing the face, 2.0–3.0 s)"
    )
    assert "eyes hidden in 2 of 4 frames showing the face: not read there" in cues["gaze"].text
    for f in faces:
        f.occlusion = {"eyes": "dark glasses"}
    gaze = next(c for c in face_cues(1, faces, times=[0.0, 1.0, 2.0, 3.0]) if c.name == "gaze")
    assert gaze.text == "not measured (eyes hidden by dark glasses)"


def test_every_au_drawn_on_the_face_is_worded():
    """The labels draw each frame's top 3 at the text's threshold; the text words the top 5 by
    peak — and any drawn AU beyond those, so no code in the image is missing from the text."""
    from sovtp.facs import prominent_aus

    strong = {"AU1": 0.9, "AU2": 0.9, "AU4": 0.9, "AU5": 0.9, "AU6": 0.9, "AU7": 0.9}
    faces = [_face(strong | {"AU12": 0.0}), _face(dict.fromkeys(strong, 0.0) | {"AU12": 0.4})]
    au = next(c for c in face_cues(1, faces, top_k=5, times=[0.0, 1.0]) if c.name == "active_aus")
    drawn = {c for f in faces for c in prominent_aus(f.aus, 3)}
    assert "AU12" in drawn
    for code in drawn:
        assert f"{code} " in au.value["active_text"], code
