"""Scene cues: who is visible, where, when, and in which shot.

Why a module of its own: the scene line is the first thing a prompt says, and it used to say "1
person visible" of a face seen in 3 of 8 sampled frames (the rest a title card after a cut).  A
face is called *visible* here only when every sampled frame shows it; otherwise the line says in
how many and when, counts the frames with no face, and — when shots were detected
(``ClipAnnotation.shots``) — who is in which shot.  Directions are as seen in the image.
"""

from __future__ import annotations

import math

import numpy as np

from sovtp.annotate.timeline import span_word
from sovtp.types import ClipAnnotation, Cue, Face, FrameAnnotation


def where(face: Face, width: int) -> str:
    x = face.center[0] / max(width, 1)
    return "on the left" if x < 1 / 3 else "on the right" if x > 2 / 3 else "in the centre"


def _best_frame(clip: ClipAnnotation) -> FrameAnnotation | None:
    """The sampled frame with the most faces (ties: the earliest): the scene's reference frame."""
    if not clip.frames:
        return None
    return max(clip.frames, key=lambda fr: (len(fr.faces), -fr.index))


def _span(times: list[float]) -> str:
    return span_word(min(times), max(times))


def presence(clip: ClipAnnotation) -> dict[int, list[int]]:
    """Face track → the positions (in ``clip.frames``) of the sampled frames it was seen in."""
    out: dict[int, list[int]] = {}
    for pos, fr in enumerate(clip.frames):
        for f in fr.faces:
            out.setdefault(f.track_id, []).append(pos)
    return out


def shots_phrase(clip: ClipAnnotation, seen: dict[int, list[int]]) -> str:
    """'2 shots: shot 1 (0.0–3.2 s, 5 of 8 sampled frames): person 1; shot 2 (4.3–7.5 s, 3 of
    8 sampled frames): no face' — who is visible in which shot, and for how much of the clip."""
    n = len(clip.frames)
    parts = []
    for k, (a, b) in enumerate(clip.shots, 1):
        times = [clip.frames[i].timestamp_s for i in range(a, b + 1)]
        who = []
        for tid in sorted(seen):
            inside = [i for i in seen[tid] if a <= i <= b]
            if inside:
                m = b - a + 1
                who.append(
                    f"person {tid}" + ("" if len(inside) == m else f" in {len(inside)} of {m}")
                )
        parts.append(
            f"shot {k} ({_span(times)}, {b - a + 1} of {n} sampled frames): "
            + (", ".join(who) if who else "no face")
        )
    return f"{len(clip.shots)} shots (cuts between them): " + "; ".join(parts)


def scene_cues(clip: ClipAnnotation) -> list[Cue]:
    """Who is visible, where, and — when not in every sampled frame, or across shots — when.

    "1 person visible" is said only of a face seen in every sampled frame; a face seen in 3 of 8
    (a cut to a title card, a person walking out) is worded with its share and times, and
    with detected shots (``clip.shots``, more than one) the scene says who is in which shot."""
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
    seen = presence(clip)
    n_frames = len(clip.frames)
    # where every face is (in the reference frame, else where it first appears), for prompts
    place_of: dict[str, str] = {}
    for fr in [ref, *clip.frames]:
        for f in fr.faces:
            place_of.setdefault(str(f.track_id), where(f, fr.size[0]))
    n = len(seen)
    always = all(len(v) == n_frames for v in seen.values())
    if always:
        places = "; ".join(f"person {f.track_id} {where(f, w)}" for f in ref.faces)
        text = f"{n} {'person' if n == 1 else 'people'} visible: {places}"
    else:
        parts = []
        for tid in sorted(seen):
            pos = seen[tid]
            when = (
                "in every sampled frame"
                if len(pos) == n_frames
                else f"in {len(pos)} of {n_frames} sampled frames, "
                + _span([clip.frames[i].timestamp_s for i in pos])
            )
            parts.append(f"person {tid} {place_of[str(tid)]} ({when})")
        empty = n_frames - len({i for v in seen.values() for i in v})
        text = f"{n} {'person' if n == 1 else 'people'} seen: " + "; ".join(parts)
        if empty:
            text += f"; no face in {empty} of {n_frames} sampled frames"
    out = [
        Cue(
            "scene",
            "people",
            text,
            None,
            {
                "count": n,
                "where": place_of,
                "frames": {str(t): len(v) for t, v in seen.items()},
                "of_frames": n_frames,
            },
            source="mediapipe",
        )
    ]
    if len(clip.shots) > 1:
        out.append(
            Cue(
                "scene",
                "shots",
                shots_phrase(clip, seen),
                None,
                [list(s) for s in clip.shots],
                source="shots",
            )
        )
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
