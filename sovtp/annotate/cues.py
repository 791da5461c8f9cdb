"""Cues: the observations a SoVTP prompt words, each with the human phrase that words it.

Pure functions from annotations to :class:`~sovtp.types.Cue` lists.  Directions are given *as
seen in the image* ("towards the left of the frame") because that is what a vision LLM looking
at the same frame can check; FACS sides (the subject's own left/right) are named as such.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from sovtp.annotate.gaps import (
    DRAWN_TOP_K,
    frames_of,
    occlusion_cue,
    reference_phrase,
    unmeasured,
    unmeasured_phrase,
)
from sovtp.annotate.nfbl import SUPERSEDED_POSTURE, arms_crossed, hands_ran, nfbl_cues
from sovtp.annotate.scene import presence, scene_cues, where  # noqa: F401 (re-exported)
from sovtp.annotate.timeline import (
    au_traces,
    not_measured,
    presence_events,
    span_phrase,
    strongest,
    timeline_value,
)
from sovtp.facs import (
    Reading,
    au_label,
    au_sort_key,
    describe,
    intensity_word,
    prominent_aus,
    read_expression,
    unilateral,
)
from sovtp.types import ClipAnnotation, Cue, Face, Person

# MediaPipe FaceMesh indices (image-left eye is the subject's right eye).
_EYE_R = {"outer": 33, "inner": 133, "top": 159, "bottom": 145, "iris": 468}
_EYE_L = {"outer": 263, "inner": 362, "top": 386, "bottom": 374, "iris": 473}
# MediaPipe Pose indices.
NOSE, L_EAR, R_EAR, L_SH, R_SH, L_EL, R_EL, L_WR, R_WR, L_IDX, R_IDX, L_HIP, R_HIP = (
    0,
    7,
    8,
    11,
    12,
    13,
    14,
    15,
    16,
    19,
    20,
    23,
    24,
)
VIS = 0.5


def mean_aus(faces: Iterable[Face]) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Average AU intensities (and sides) of one face over the sampled frames that measured them
    (a frame that did not measure an AU does not pull its mean towards 0)."""
    faces = list(faces)
    if not faces:
        return {}, {}
    codes = sorted({k for f in faces for k in f.aus}, key=au_sort_key)
    aus = {c: float(np.mean([f.aus[c] for f in faces if c in f.aus])) for c in codes}
    sides: dict[str, tuple[float, float]] = {}
    for c in sorted({k for f in faces for k in f.au_sides}, key=au_sort_key):
        vals = np.array([f.au_sides[c] for f in faces if c in f.au_sides])
        sides[c] = (float(vals[:, 0].mean()), float(vals[:, 1].mean()))
    return aus, sides


def au_phrase(aus: dict[str, float], top_k: int = 5) -> str:
    prom = prominent_aus(aus, top_k)
    if not prom:
        return "no action unit clearly active (a relaxed face)"
    return ", ".join(f"{au_label(c)} ({intensity_word(v)}, {v:.2f})" for c, v in prom.items())


def head_phrase(yaw: float, pitch: float, roll: float) -> str:
    parts = []
    if abs(yaw) < 12:
        parts.append("facing the camera")
    else:
        side = "right" if yaw > 0 else "left"
        parts.append(
            f"turned {'slightly ' if abs(yaw) < 25 else ''}towards the {side} of the frame"
        )
    if pitch > 12:
        parts.append("tilted down")
    elif pitch < -12:
        parts.append("tilted up")
    if abs(roll) > 12:
        parts.append(f"leaning {'clockwise' if roll > 0 else 'anticlockwise'} in the image")
    return "head " + ", ".join(parts)


def gaze_direction(landmarks: np.ndarray) -> tuple[float, float] | None:
    """Iris position within the eye opening: (horizontal, vertical), each −1..1, 0 = centred.

    Horizontal > 0 means towards the image's right; vertical > 0 means down.
    """
    if landmarks is None or len(landmarks) < 478:
        return None
    hs, vs = [], []
    for eye in (_EYE_R, _EYE_L):
        a, b = landmarks[eye["outer"]], landmarks[eye["inner"]]
        left, right = (a, b) if a[0] < b[0] else (b, a)
        width = right[0] - left[0]
        top, bottom = landmarks[eye["top"]], landmarks[eye["bottom"]]
        height = bottom[1] - top[1]
        iris = landmarks[eye["iris"]]
        if width <= 1:
            continue
        hs.append(2 * (iris[0] - left[0]) / width - 1)
        if height > 1:
            vs.append(2 * (iris[1] - top[1]) / height - 1)
    if not hs:
        return None
    return float(np.mean(hs)), float(np.mean(vs)) if vs else 0.0


def gaze_phrase(h: float, v: float, yaw: float) -> str:
    look = h * 30 + yaw  # eyes within the head + the head's own turn, in rough degrees
    if abs(look) < 12 and abs(v) < 0.45:
        return "eyes on the camera"
    parts = []
    if abs(look) >= 12:
        parts.append(f"towards the {'right' if look > 0 else 'left'} of the frame")
    if v >= 0.45:
        parts.append("downwards")
    elif v <= -0.45:
        parts.append("upwards")
    return "looking " + " and ".join(parts)


def _pt(kp: np.ndarray, i: int) -> np.ndarray | None:
    return kp[i, :2] if kp[i, 2] >= VIS else None


def posture(person: Person) -> list[tuple[str, str]]:
    """(name, phrase) pairs read from 33 pose keypoints; only what the visible points support."""
    kp = person.keypoints
    ls, rs = _pt(kp, L_SH), _pt(kp, R_SH)
    if ls is None or rs is None:
        return []
    sw = float(np.linalg.norm(ls - rs))
    if sw < 5:
        return []
    out: list[tuple[str, str]] = []
    mid_sh = (ls + rs) / 2
    nose = _pt(kp, NOSE)
    ears = [p for p in (_pt(kp, L_EAR), _pt(kp, R_EAR)) if p is not None]
    hands = [
        p for p in (_pt(kp, L_WR), _pt(kp, R_WR), _pt(kp, L_IDX), _pt(kp, R_IDX)) if p is not None
    ]
    lw, rw = _pt(kp, L_WR), _pt(kp, R_WR)
    lh, rh = _pt(kp, L_HIP), _pt(kp, R_HIP)

    if nose is not None and hands:
        eye_y = min(kp[2, 1], kp[5, 1])
        for h in hands:
            if np.linalg.norm(h - nose) < 0.55 * sw or any(
                np.linalg.norm(h - e) < 0.4 * sw for e in ears
            ):
                if h[1] < eye_y:
                    out.append(("hand_on_head", "a hand on the head"))
                else:
                    out.append(("hand_at_face", "a hand at the face"))
                break
    crossed = arms_crossed(kp)  # self-protection, shared with the NFBL cues
    if crossed:
        out.append(("arms_crossed", "arms crossed over the chest"))
    if nose is not None and (mid_sh[1] - nose[1]) < 0.3 * sw:
        out.append(("head_down", "head lowered towards the chest"))
    if ears:
        ear_gap = float(np.mean([mid_sh[1] - e[1] for e in ears]))
        if ear_gap < 0.28 * sw:
            out.append(("shoulders_raised", "shoulders raised towards the ears"))
    if person.world is not None and lh is not None and rh is not None:
        w = person.world
        dz = float((w[L_SH, 2] + w[R_SH, 2]) / 2 - (w[L_HIP, 2] + w[R_HIP, 2]) / 2)
        if dz < -0.12:
            out.append(("leaning_forward", "leaning forward"))
        elif dz > 0.12:
            out.append(("leaning_back", "leaning back"))
    if crossed:
        out.append(("closed_stance", "a closed stance"))
    elif lw is not None and rw is not None:
        spread = max(abs(lw[0] - mid_sh[0]), abs(rw[0] - mid_sh[0]))
        if spread > 1.0 * sw:
            out.append(("open_stance", "an open stance, arms away from the body"))
        elif spread < 0.5 * sw and lw[1] > mid_sh[1] and rw[1] > mid_sh[1]:
            out.append(("closed_stance", "a closed stance, arms held close to the body"))
    return out


def _apex_reading(series: list[tuple[float, Face]]) -> tuple[Reading, float]:
    """The prototype reading of the frame where the face looks most like some emotion (the
    earliest on a tie), and that frame's time: co-occurring AUs, not peaks from other frames."""
    best: tuple[float, Reading, float] | None = None
    for t, f in series:
        r = read_expression(f.aus, f.au_sides)
        strength = max((v for k, v in r.scores.items() if k != "neutral"), default=0.0)
        if best is None or strength > best[0]:
            best = (strength, r, t)
    assert best is not None
    return best[1], best[2]


def face_cues(
    track_id: int,
    faces: list[Face],
    top_k: int = 5,
    times: list[float] | None = None,
    clip_times: list[float] | None = None,
) -> list[Cue]:
    """A face's cues over the clip.  AUs are summarised by their peak and the time they were
    active, so a short event survives; ``times`` (one per face, seconds) dates them, and
    ``clip_times`` (every sampled time of the clip) tells when the face was out of shot, which
    bounds no duration."""
    src = faces[0].au_source if faces else ""
    times = list(times) if times is not None else [float(i) for i in range(len(faces))]
    series = sorted(zip(times, faces, strict=True), key=lambda tf: tf[0])
    aus, sides = mean_aus(faces)
    traces = au_traces(series, clip_times=clip_times)
    top = strongest(traces, top_k)
    # every AU drawn on the face's labels is worded too (same threshold, the labels' top-k)
    drawn = {c for _, f in series for c in prominent_aus(f.aus, DRAWN_TOP_K)}
    top += sorted(
        (traces[c] for c in drawn if c in traces and traces[c] not in top),
        key=lambda t: (-t.peak, au_sort_key(t.code)),
    )
    missing = not_measured(traces)
    gaps = unmeasured(series)
    if not traces:
        active = "no action unit measured"
    elif top:
        active = ", ".join(t.phrase() for t in top)
    else:
        active = "no action unit clearly active (a relaxed face)"
    gaps_text = unmeasured_phrase(gaps) if traces else ""
    reference = reference_phrase(series, traces)
    phrase = active
    if gaps_text:
        phrase += "; not measured: " + gaps_text
    if reference:
        phrase += "; " + reference
    apex_reading, apex_t = _apex_reading(series) if series else (read_expression({}), 0.0)
    apex_face = next((f for t, f in series if t == apex_t), None)
    out = [
        Cue(
            "au",
            "active_aus",
            phrase,
            subject=track_id,
            # full numbers (not only the active AUs) for the offline FACS reasoner: "mean"/"sides"
            # average the frames; "peak" keeps short events; "apex" is the frame that looks
            # most like an emotion, whose AUs co-occurred
            value={
                "mean": {k: round(v, 4) for k, v in aus.items()},
                "sides": {k: [round(a, 4), round(b, 4)] for k, (a, b) in sides.items()},
                "peak": {k: round(t.peak, 4) for k, t in traces.items()},
                "peak_s": {k: round(t.peak_s, 3) for k, t in traces.items()},
                "apex": {
                    "t": round(apex_t, 3),
                    "aus": {k: round(float(v), 4) for k, v in (apex_face.aus or {}).items()}
                    if apex_face
                    else {},
                    "sides": {
                        k: [round(float(a), 4), round(float(b), 4)]
                        for k, (a, b) in apex_face.au_sides.items()
                    }
                    if apex_face
                    else {},
                },
                "methods": {k: t.method for k, t in traces.items()},
                "not_measured": missing,
                # the parts of the text, for templates that word them on lines of their own
                "active_text": active,
                "unmeasured": gaps,
                "unmeasured_text": gaps_text,
                "reference_text": reference,
            },
            source=src,
        )
    ]
    if len(series) > 1 and top:
        out.append(
            Cue(
                "au",
                "au_timeline",
                "; ".join(t.timeline_phrase() for t in top),
                track_id,
                timeline_value(series, traces, top_k),
                source=src,
            )
        )
    for code in ("AU12", "AU14"):
        tr = traces.get(code)
        side = unilateral({code: tr.peak_sides}, code) if tr and tr.peak_sides else None
        if side:
            when = f" (at {tr.peak_s:.1f} s)" if len(series) > 1 and not tr.throughout else ""
            out.append(
                Cue(
                    "au",
                    f"{code}_unilateral",
                    f"{au_label(code)} on the {side} side only{when}",
                    track_id,
                    side,
                    source=src,
                )
            )
    poses = [f.head_pose for f in faces if f.head_pose is not None]
    yaw = 0.0
    if poses:
        yaw, pitch, roll = (float(v) for v in np.mean(np.array(poses), axis=0))
        out.append(
            Cue(
                "head",
                "head_pose",
                head_phrase(yaw, pitch, roll),
                track_id,
                {"yaw": round(yaw, 1), "pitch": round(pitch, 1), "roll": round(roll, 1)},
                source="mediapipe",
            )
        )
    # no gaze from eyes behind dark glasses or a hand: the iris there is the landmarker's prior
    hidden = [f.occlusion["eyes"] for f in faces if "eyes" in f.occlusion]
    open_eyes = [f for f in faces if "eyes" not in f.occlusion]
    gazes = [g for g in (gaze_direction(f.landmarks) for f in open_eyes) if g is not None]
    if gazes:
        h, v = (float(x) for x in np.mean(np.array(gazes), axis=0))
        text = gaze_phrase(h, v, yaw)
        if hidden:
            text += f" (eyes hidden {frames_of(len(hidden), len(faces))}: not read there)"
        out.append(
            Cue(
                "gaze",
                "gaze",
                text,
                track_id,
                {"h": round(h, 2), "v": round(v, 2), "hidden_frames": len(hidden)},
                source="mediapipe-iris",
            )
        )
    elif hidden:
        from sovtp.annotate.occlusion import unmeasured_phrase as hidden_phrase

        cause = Counter(hidden).most_common(1)[0][0]
        out.append(
            Cue(
                "gaze",
                "gaze",
                f"not measured ({hidden_phrase('eyes', cause)})",
                track_id,
                {"hidden_frames": len(hidden)},
                source="occlusion",
            )
        )
    occ = occlusion_cue(track_id, series)
    if occ is not None:
        out.append(occ)
    text = describe(apex_reading)
    mean_reading = read_expression(aus, sides)
    if len(series) > 1 and mean_reading.top != apex_reading.top:
        # a short expression the average would lose: say when it peaked, and what the mean says
        text += f" at its apex ({apex_t:.1f} s); on average it {describe(mean_reading)}"
    out.append(
        Cue(
            "expression",
            "facs_prototype",
            text,
            track_id,
            {k: round(v, 3) for k, v in apex_reading.scores.items()},
            confidence=apex_reading.scores[apex_reading.top],
            source="emfacs-prototypes",
        )
    )
    return out


def person_cues(clip: ClipAnnotation, skip: Iterable[str] = ()) -> list[Cue]:
    """Posture cues of each person with a face, as events with their times.

    A posture seen in any sampled frame counts (a hand at the face for a moment is the kind of
    event that matters); the text dates it unless it held throughout, and ``confidence`` is the
    share of the person's frames that showed it.  Postures named in ``skip`` are left out.
    """
    skip = set(skip)
    seen: dict[int, list[tuple[float, set[str]]]] = {}
    phrase_of: dict[str, str] = {}
    for fr in clip.frames:
        for p in fr.persons:
            if p.face_id is None:
                continue
            names = set()
            for name, phrase in posture(p):
                if name in skip:
                    continue
                names.add(name)
                phrase_of[name] = phrase
            seen.setdefault(p.face_id, []).append((fr.timestamp_s, names))
    out: list[Cue] = []
    for pid in sorted(seen):
        frames = seen[pid]
        for name, events in presence_events(frames).items():
            k = sum(e.frames for e in events)
            share = k / len(frames)
            text = phrase_of[name]
            if k < len(frames):
                text += f" ({span_phrase(events)})"
            out.append(
                Cue(
                    "posture",
                    name,
                    text,
                    pid,
                    {"share": round(share, 2), "events": [e.to_dict() for e in events]},
                    confidence=share,
                    source="mediapipe-pose",
                )
            )
    return out


def clip_cues(clip: ClipAnnotation, top_k: int = 5) -> list[Cue]:
    """Every cue of a clip: scene, then per face (AUs, AU time line, head, gaze, expression),
    then posture events, then — when the hands pass ran — the NFBL cues (self-touch with its
    region, arms crossed, fidgeting), which then replace the pose-only hand and arms postures
    they word more exactly."""
    cues = scene_cues(clip)
    clip_times = [fr.timestamp_s for fr in clip.frames]
    for tid in clip.track_ids:
        pairs = [(fr.timestamp_s, f) for fr in clip.frames for f in fr.faces if f.track_id == tid]
        cues.extend(face_cues(tid, [f for _, f in pairs], top_k, [t for t, _ in pairs], clip_times))
    with_hands = hands_ran(clip.detectors)
    cues.extend(person_cues(clip, skip=SUPERSEDED_POSTURE if with_hands else ()))
    if with_hands:
        cues.extend(nfbl_cues(clip.frames))
    return cues
