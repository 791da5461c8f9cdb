"""One event finder and one span wording (``annotate/timeline.py``) for every timed cue.

The AU time line, the posture cues, the NFBL cues and the prosody pauses all find their runs and
word their times there; these tests pin the primitives and show that the same series gives the
same events and the same words through NFBL, the posture cues and prosody.
"""

from __future__ import annotations

import numpy as np
import pytest

from sovtp.annotate.cues import clip_cues
from sovtp.annotate.timeline import (
    find_events,
    index_runs,
    presence_events,
    span_phrase,
    span_word,
)
from sovtp.deid import prosody
from sovtp.types import ClipAnnotation, Face, FrameAnnotation, Person

FPS = 10


def test_index_runs_are_inclusive_first_last_pairs():
    assert index_runs([]) == []
    assert index_runs([False, False]) == []
    assert index_runs([True]) == [(0, 0)]
    assert index_runs([True, True, False, True, False, False, True, True]) == [
        (0, 1),
        (3, 3),
        (6, 7),
    ]
    assert index_runs(np.array([0, 1, 1, 0], bool)) == [(1, 2)]


def test_find_events_onset_apex_offset_and_duration_bounded_by_the_samples():
    times = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    values = [0.1, 0.6, 0.9, 0.9, 0.2, 0.7, 0.0]
    a, b = find_events(times, values, 0.5)
    assert (a.onset_s, a.apex_s, a.offset_s, a.peak, a.frames) == (0.1, 0.2, 0.3, 0.9, 3)
    # seen 0.1..0.3, not seen at 0.0 and 0.4: it lasted between 0.2 and 0.4 s
    assert (a.min_s, a.max_s) == (pytest.approx(0.2), pytest.approx(0.4))
    assert a.duration_phrase() == "between 0.2 and 0.4 s"
    assert (b.onset_s, b.apex_s, b.offset_s, b.frames) == (0.5, 0.5, 0.5, 1)
    assert (b.min_s, b.max_s) == (0.0, pytest.approx(0.2))  # one frame: only an upper bound
    assert b.duration_phrase() == "under 0.2 s"
    assert span_phrase([a, b]) == "0.1–0.3 s, at 0.5 s"
    with pytest.raises(ValueError):
        find_events([0.0], [1.0, 1.0])


def test_span_word_is_a_moment_or_a_span():
    assert span_word(1.2, 1.2) == "at 1.2 s"
    assert span_word(1.0, 1.44) == "1.0–1.4 s"


def _body(crossed: bool) -> Person:
    """A pose linked to face 1, arms at the sides or crossed over the chest."""
    kp = np.zeros((33, 3), np.float32)
    kp[:, 2] = 1.0
    kp[0, :2], kp[2, :2], kp[5, :2] = (250, 165), (265, 140), (235, 140)  # nose, eyes
    kp[7, :2], kp[8, :2] = (290, 150), (210, 150)  # ears
    kp[11, :2], kp[12, :2] = (330, 330), (170, 330)  # shoulders
    kp[23, :2], kp[24, :2] = (310, 560), (190, 560)  # hips
    lw, rw = ((210.0, 420.0), (290.0, 420.0)) if crossed else ((340.0, 520.0), (160.0, 520.0))
    kp[15, :2], kp[16, :2] = lw, rw  # wrists
    return Person(1, kp, face_id=1)


def _clip(crossed: list[bool], hands: bool) -> ClipAnnotation:
    frames = [
        FrameAnnotation(
            k, k / FPS, (512, 600), [Face(1, (200.0, 100.0, 300.0, 220.0))], [_body(c)], []
        )
        for k, c in enumerate(crossed)
    ]
    for fr in frames:
        fr.faces[0].person_id = 1
    detectors = {"hands": "mediapipe HandLandmarker"} if hands else {}
    return ClipAnnotation("x.mp4", "0" * 64, "all", frames, detectors=detectors)


def test_nfbl_and_posture_get_the_same_events_and_words_from_one_series():
    crossed = [False, False, True, True, True, False, False, True, False, False]
    times = [k / FPS for k in range(len(crossed))]
    expected = find_events(times, crossed, 0.5)
    assert span_phrase(expected) == "0.2–0.4 s, at 0.7 s"

    (nfbl,) = [c for c in clip_cues(_clip(crossed, hands=True)) if c.name == "arms_crossed"]
    (posture,) = [c for c in clip_cues(_clip(crossed, hands=False)) if c.name == "arms_crossed"]
    assert (nfbl.kind, posture.kind) == ("nfbl", "posture")
    want = [e.to_dict() for e in expected]
    assert nfbl.value["events"] == want == posture.value["events"]
    assert nfbl.text == "arms crossed over the chest (self-protection) 0.2–0.4 s, at 0.7 s"
    assert posture.text.endswith("(0.2–0.4 s, at 0.7 s)")
    assert presence_events(
        [(t, {"x"} if c else set()) for t, c in zip(times, crossed, strict=True)]
    ) == {"x": expected}


def _tone_with_gap(gap: tuple[float, float], seconds: float = 2.5, sr: int = 16000):
    """A voiced tone that swells and fades four times a second (syllables: only speech-like
    sound is worded, see tests/deid/test_voice_gate.py), silent over ``gap``."""
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8))
    x *= np.abs(np.sin(2 * np.pi * 2.0 * t))
    x[(t >= gap[0]) & (t < gap[1])] = 0.0
    return x.astype(np.float32), sr


def test_prosody_pauses_come_from_the_finder_and_are_dated_in_its_words():
    p = prosody.measure(*_tone_with_gap((1.0, 1.6)))
    ((s, e),) = p.pauses
    assert s == pytest.approx(1.0, abs=0.03) and e == pytest.approx(1.6, abs=0.03)
    (cue,) = [c for c in prosody.cues_from(p) if c.name == "pauses"]
    assert cue.text == f"1 pause (longest {e - s:.1f} s): {span_word(s, e)}"
    assert cue.text == "1 pause (longest 0.6 s): 1.0–1.6 s"
    # a gap shorter than PAUSE_MIN_S is no pause
    assert prosody.measure(*_tone_with_gap((1.0, 1.2))).pauses == []


def test_many_pauses_word_the_longest_in_time_order():
    pauses = [(0.5, 0.75), (1.0, 1.9), (2.0, 2.2), (3.0, 3.5), (4.0, 4.4)]
    assert prosody.pauses_phrase([]) == "no pauses"
    assert prosody.pauses_phrase(pauses) == (
        "5 pauses (longest 0.9 s): 1.0–1.9 s, 3.0–3.5 s, 4.0–4.4 s and 2 shorter"
    )
