"""Cues: the observations a SoVTP prompt words, each with the human phrase that words it.

Pure functions from annotations to :class:`~sovtp.types.Cue` lists.  Directions are given *as
seen in the image* ("towards the left of the frame") because that is what a vision LLM looking
at the same frame can check; FACS sides (the subject's own left/right) are named as such.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import numpy as np

from sovtp.facs import (
    au_label,
    describe,
    intensity_word,
    prominent_aus,
    read_expression,
    unilateral,
)
from sovtp.types import ClipAnnotation, Cue, Face, FrameAnnotation, Person

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
    """Average AU intensities (and sides) of one face over the sampled frames."""
    faces = list(faces)
    if not faces:
        return {}, {}
    codes = sorted({k for f in faces for k in f.aus})
    aus = {c: float(np.mean([f.aus.get(c, 0.0) for f in faces])) for c in codes}
    sides: dict[str, tuple[float, float]] = {}
    for c in sorted({k for f in faces for k in f.au_sides}):
        vals = np.array([f.au_sides.get(c, (0.0, 0.0)) for f in faces])
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
    crossed = False
    if lw is not None and rw is not None:
        # pose "left" is the subject's left: in a frontal view it sits on the image's right
        sx = np.sign(ls[0] - rs[0])
        lw_side = np.sign(lw[0] - mid_sh[0]) * sx
        rw_side = np.sign(rw[0] - mid_sh[0]) * sx
        below = lw[1] > mid_sh[1] and rw[1] > mid_sh[1]
        near = abs(lw[0] - mid_sh[0]) < 0.9 * sw and abs(rw[0] - mid_sh[0]) < 0.9 * sw
        if below and near and lw_side < 0 and rw_side > 0:
            crossed = True
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


def where(face: Face, width: int) -> str:
    x = face.center[0] / max(width, 1)
    return "on the left" if x < 1 / 3 else "on the right" if x > 2 / 3 else "in the centre"


def _best_frame(clip: ClipAnnotation) -> FrameAnnotation | None:
    """The sampled frame with the most faces (ties: the earliest): the scene's reference frame."""
    if not clip.frames:
        return None
    return max(clip.frames, key=lambda fr: (len(fr.faces), -fr.index))


def face_cues(track_id: int, faces: list[Face], top_k: int = 5) -> list[Cue]:
    src = faces[0].au_source if faces else ""
    aus, sides = mean_aus(faces)
    out = [
        Cue(
            "au",
            "active_aus",
            au_phrase(aus, top_k),
            subject=track_id,
            # the full means (not only the active ones) feed the offline FACS reasoner
            value={
                "mean": {k: round(v, 4) for k, v in aus.items()},
                "sides": {k: [round(a, 4), round(b, 4)] for k, (a, b) in sides.items()},
            },
            source=src,
        )
    ]
    for code in ("AU12", "AU14"):
        side = unilateral(sides, code)
        if side:
            out.append(
                Cue(
                    "au",
                    f"{code}_unilateral",
                    f"{au_label(code)} on the {side} side only",
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
    gazes = [g for g in (gaze_direction(f.landmarks) for f in faces) if g is not None]
    if gazes:
        h, v = (float(x) for x in np.mean(np.array(gazes), axis=0))
        out.append(
            Cue(
                "gaze",
                "gaze",
                gaze_phrase(h, v, yaw),
                track_id,
                {"h": round(h, 2), "v": round(v, 2)},
                source="mediapipe-iris",
            )
        )
    reading = read_expression(aus, sides)
    out.append(
        Cue(
            "expression",
            "facs_prototype",
            describe(reading),
            track_id,
            {k: round(v, 3) for k, v in reading.scores.items()},
            confidence=reading.scores[reading.top],
            source="emfacs-prototypes",
        )
    )
    return out


def scene_cues(clip: ClipAnnotation) -> list[Cue]:
    ref = _best_frame(clip)
    if ref is None or not ref.faces:
        n_bodies = max((len(fr.persons) for fr in clip.frames), default=0)
        text = "no face visible" + (
            f"; {n_bodies} body visible"
            if n_bodies == 1
            else f"; {n_bodies} bodies visible"
            if n_bodies
            else ""
        )
        return [Cue("scene", "no_face", text, None, 0, source="mediapipe")]
    w = ref.size[0]
    n = len(ref.faces)
    places = "; ".join(f"person {f.track_id} {where(f, w)}" for f in ref.faces)
    # where every face is (in the reference frame, else where it first appears), for prompts
    place_of: dict[str, str] = {}
    for fr in [ref, *clip.frames]:
        for f in fr.faces:
            place_of.setdefault(str(f.track_id), where(f, fr.size[0]))
    out = [
        Cue(
            "scene",
            "people",
            f"{n} {'person' if n == 1 else 'people'} visible: {places}",
            None,
            {"count": n, "where": place_of},
            source="mediapipe",
        )
    ]
    if n > 1:
        for f in ref.faces:
            if f.head_pose is None or abs(f.head_pose[0]) < 15:
                continue
            direction = math.copysign(1, f.head_pose[0])
            others = [
                o
                for o in ref.faces
                if o is not f and np.sign(o.center[0] - f.center[0]) == direction
            ]
            if others:
                o = min(others, key=lambda o: abs(o.center[0] - f.center[0]))
                out.append(
                    Cue(
                        "scene",
                        "faces_towards",
                        f"person {f.track_id} is turned towards person {o.track_id}",
                        f.track_id,
                        o.track_id,
                        source="head-pose",
                    )
                )
    return out


def person_cues(clip: ClipAnnotation) -> list[Cue]:
    """Posture cues of each person with a face, kept when seen in at least half its frames."""
    frames_of: Counter[int] = Counter()
    seen: Counter[tuple[int, str]] = Counter()
    phrase_of: dict[str, str] = {}
    for fr in clip.frames:
        for p in fr.persons:
            if p.face_id is None:
                continue
            frames_of[p.face_id] += 1
            for name, phrase in posture(p):
                seen[(p.face_id, name)] += 1
                phrase_of[name] = phrase
    out: list[Cue] = []
    for (pid, name), k in sorted(seen.items()):
        share = k / frames_of[pid]
        if share >= 0.5:
            out.append(
                Cue(
                    "posture",
                    name,
                    phrase_of[name],
                    pid,
                    round(share, 2),
                    confidence=share,
                    source="mediapipe-pose",
                )
            )
    return out


def clip_cues(clip: ClipAnnotation, top_k: int = 5) -> list[Cue]:
    """Every cue of a clip: scene, then per face (AUs, head, gaze, expression), then posture."""
    cues = scene_cues(clip)
    for tid in clip.track_ids:
        cues.extend(face_cues(tid, clip.faces_of(tid), top_k))
    cues.extend(person_cues(clip))
    return cues
