"""Non-facial body language (NFBL) from hands and pose: self-touch, self-protection, fidgeting.

DEEMO annotates NFBL — self-manipulation (a hand to the face, neck or hair), self-protection
(arms crossed) and restless hands — because the body leaks what a controlled face hides.  These
are pure functions over per-frame landmarks with their timestamps, so the rules are testable on
synthetic sequences and rerun on cached annotations without a detector.

*Self-touch*: a hand's finger points (tips and the two joints below them) that fall in a region
of the subject's head — the face (its landmark box), the neck (below the chin, above the
shoulder line) or the hair/head (above the forehead and beside the temples).  A 2-D image cannot
see contact, only overlap, so a hand far nearer the camera than the face (its palm longer than
the face is tall) is taken as passing in front, not touching.

*Fidgeting*: hand motion energy — how far the hand's landmarks move per second relative to the
face (so a moving camera or a turning head is not counted), in face heights (or, without a face,
palm lengths) per second; each step's displacement first loses a small dead band for landmark
jitter, so a still hand reads 0.  The intervals where it stays above a threshold are the
fidgeting; with sparse sampling it measures restless hands, not finger twiddles.

*Self-protection*: arms crossed over the chest, read from the pose (``arms_crossed``; the posture
cues use it too).

Sides: ``Hand.side`` is the subject's own hand only when a pose wrist confirmed it; otherwise the
words say "a hand".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sovtp.annotate.timeline import (
    Event,
    event_of,
    find_events,
    index_runs,
    presence_events,
    span_phrase,
)
from sovtp.types import Face, FrameAnnotation, Hand, Person

# MediaPipe hand landmarks: 0 wrist; 9 the middle finger's knuckle (MCP); finger points below
WRIST, MIDDLE_MCP = 0, 9
FINGER_POINTS = (2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20)  # joints and tips
# MediaPipe Pose indices
NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SH, R_SH = 0, 2, 5, 7, 8, 11, 12
L_WR, R_WR, L_IDX, R_IDX = 15, 16, 19, 20
VIS = 0.5
REGIONS = ("face", "neck", "hair")
REGION_WORDS = {"face": "the face", "neck": "the neck", "hair": "the hair/head"}

MIN_TOUCH_POINTS = 2  # finger points inside a region for a touch
FRONT_RATIO = 1.2  # palm length / face height above which a hand is passing in front
FIDGET_THRESHOLD = 0.35  # face heights per second
JITTER = 0.02  # face heights per step: the dead band for landmark noise
MATCH_RADIUS = 1.5  # face heights: how far a hand may move between frames and be the same hand


# --- geometry ---------------------------------------------------------------------------------


def _pt(kp: np.ndarray | None, i: int) -> np.ndarray | None:
    if kp is None or kp[i, 2] < VIS:
        return None
    return kp[i, :2].astype(np.float64)


def head_box(face: Face | None, person: Person | None) -> tuple[float, float, float, float] | None:
    """The face's box (xyxy px): its landmarks' box, else one estimated from the pose head points
    (a hand over the face often hides it from the face landmarker)."""
    if face is not None:
        return tuple(float(v) for v in face.bbox)  # type: ignore[return-value]
    kp = person.keypoints if person is not None else None
    nose = _pt(kp, NOSE)
    ears = [p for p in (_pt(kp, L_EAR), _pt(kp, R_EAR)) if p is not None]
    eyes = [p for p in (_pt(kp, L_EYE), _pt(kp, R_EYE)) if p is not None]
    if nose is None or not (ears or eyes):
        return None
    if len(ears) == 2:
        w = float(abs(ears[0][0] - ears[1][0]))  # the face mesh spans about ear to ear
    elif len(eyes) == 2:
        w = float(abs(eyes[0][0] - eyes[1][0])) * 2.2
    else:
        w = float(abs((ears or eyes)[0][0] - nose[0])) * 1.8
    if w < 4:
        return None
    h = 1.3 * w  # forehead to chin; the eyes sit 0.4 of it below the top
    eye_y = float(np.mean([e[1] for e in eyes])) if eyes else float(nose[1]) - 0.15 * h
    y0 = eye_y - 0.4 * h
    return (float(nose[0]) - w / 2, y0, float(nose[0]) + w / 2, y0 + h)


def shoulder_line(person: Person | None) -> float | None:
    """The image y of the shoulders' midpoint, when both are visible."""
    kp = person.keypoints if person is not None else None
    ls, rs = _pt(kp, L_SH), _pt(kp, R_SH)
    return None if ls is None or rs is None else float((ls[1] + rs[1]) / 2)


def palm_length(hand: Hand) -> float:
    lm = np.asarray(hand.landmarks, dtype=np.float64)
    return float(np.linalg.norm(lm[MIDDLE_MCP] - lm[WRIST]))


def region_of(
    x: float, y: float, box: tuple[float, float, float, float], shoulders_y: float | None = None
) -> str | None:
    """Which head region (face, neck, hair) the image point (x, y) lies in, or None."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    if x0 - 0.1 * w <= x <= x1 + 0.1 * w and y0 + 0.12 * h <= y <= y1 + 0.05 * h:
        return "face"
    # above the forehead, or beside the temples (hair, ears, the side of the head)
    if x0 - 0.35 * w <= x <= x1 + 0.35 * w and y0 - 0.6 * h <= y < y0 + 0.12 * h:
        return "hair"
    if (x0 - 0.35 * w <= x < x0 - 0.1 * w or x1 + 0.1 * w < x <= x1 + 0.35 * w) and (
        y0 <= y <= y0 + 0.55 * h
    ):
        return "hair"
    # the neck runs down to the shoulder line (when the pose sees it)
    bottom = y1 + 0.8 * h
    if shoulders_y is not None and shoulders_y > y1:
        bottom = shoulders_y + 0.1 * h
    if abs(x - cx) <= 0.6 * w and y1 + 0.05 * h < y <= bottom:
        return "neck"
    return None


def touch_region(hand: Hand, face: Face | None, person: Person | None = None) -> str | None:
    """The head region the hand touches in this frame (face, neck, hair), or None.

    The region most of the hand's finger points fall in, if at least ``MIN_TOUCH_POINTS`` do;
    a hand whose palm is longer than ``FRONT_RATIO`` face heights is nearer the camera than the
    face — passing in front, not touching.
    """
    box = head_box(face, person)
    if box is None:
        return None
    fh = box[3] - box[1]
    if fh <= 1 or palm_length(hand) > FRONT_RATIO * fh:
        return None
    sy = shoulder_line(person)
    lm = np.asarray(hand.landmarks, dtype=np.float64)
    counts = dict.fromkeys(REGIONS, 0)
    for i in FINGER_POINTS:
        r = region_of(float(lm[i, 0]), float(lm[i, 1]), box, sy)
        if r is not None:
            counts[r] += 1
    best = max(REGIONS, key=lambda r: counts[r])  # ties: face, then neck, then hair
    return best if counts[best] >= MIN_TOUCH_POINTS else None


def arms_crossed(kp: np.ndarray) -> bool:
    """Self-protection: both wrists below the shoulder line, near the body's midline, each on the
    other arm's side (33 pose keypoints, x, y px and visibility)."""
    ls, rs, lw, rw = _pt(kp, L_SH), _pt(kp, R_SH), _pt(kp, L_WR), _pt(kp, R_WR)
    if ls is None or rs is None or lw is None or rw is None:
        return False
    sw = float(np.linalg.norm(ls - rs))
    if sw < 5:
        return False
    mid = (ls + rs) / 2
    # pose "left" is the subject's left: in a frontal view it sits on the image's right
    sx = np.sign(ls[0] - rs[0])
    lw_side = np.sign(lw[0] - mid[0]) * sx
    rw_side = np.sign(rw[0] - mid[0]) * sx
    below = lw[1] > mid[1] and rw[1] > mid[1]
    near = abs(lw[0] - mid[0]) < 0.9 * sw and abs(rw[0] - mid[0]) < 0.9 * sw
    return bool(below and near and lw_side < 0 and rw_side > 0)


# --- linking hands to people --------------------------------------------------------------------


def link_hands(frame: FrameAnnotation) -> None:
    """Give each hand of a frame its owner (``face_id``) and, where a pose wrist confirms it, its
    side: a pose wrist (or index knuckle) of a linked person within half a shoulder width of
    the hand's wrist wins; otherwise the nearest face within 3 face heights of the hand."""
    for hand in frame.hands:
        hand.face_id, hand.side = None, ""
        wrist = np.asarray(hand.landmarks[WRIST], dtype=np.float64)
        best: tuple[float, int, str] | None = None
        for p in frame.persons:
            if p.face_id is None:
                continue
            ls, rs = _pt(p.keypoints, L_SH), _pt(p.keypoints, R_SH)
            sw = float(np.linalg.norm(ls - rs)) if ls is not None and rs is not None else 0.0
            reach = 0.5 * sw if sw >= 5 else 2.0 * palm_length(hand)
            for side, idx in (("left", (L_WR, L_IDX)), ("right", (R_WR, R_IDX))):
                for i in idx:
                    q = _pt(p.keypoints, i)
                    if q is None:
                        continue
                    d = float(np.linalg.norm(q - wrist))
                    if d <= reach and (best is None or d < best[0]):
                        best = (d, p.face_id, side)
        if best is not None:
            hand.face_id, hand.side = best[1], best[2]
            continue
        cx, cy = hand.center
        near: tuple[float, int] | None = None
        for f in frame.faces:
            fh = max(f.bbox[3] - f.bbox[1], 1.0)
            d = float(np.hypot(cx - f.center[0], cy - f.center[1])) / fh
            if d <= 3.0 and (near is None or d < near[0]):
                near = (d, f.track_id)
        if near is not None:
            hand.face_id = near[1]
    # a side claimed twice for one person (two hands by one wrist): the nearer keeps it
    for fid in {h.face_id for h in frame.hands if h.face_id is not None}:
        for side in ("left", "right"):
            mine = [h for h in frame.hands if h.face_id == fid and h.side == side]
            for extra in mine[1:]:
                extra.side = ""


# --- time ---------------------------------------------------------------------------------------


@dataclass
class SubjectFrame:
    """What NFBL reads of one subject in one sampled frame."""

    t: float
    face: Face | None
    person: Person | None
    hands: list[Hand]


def subject_series(frames: Sequence[FrameAnnotation]) -> dict[int, list[SubjectFrame]]:
    """Face track id → its frames (time order) with its face, linked body and linked hands.

    A subject's frame counts once its face or a body linked to it is seen."""
    out: dict[int, list[SubjectFrame]] = {}
    for fr in sorted(frames, key=lambda f: f.timestamp_s):
        ids = {f.track_id for f in fr.faces} | {
            p.face_id for p in fr.persons if p.face_id is not None
        }
        for sid in sorted(ids):
            out.setdefault(sid, []).append(
                SubjectFrame(
                    fr.timestamp_s,
                    fr.face(sid),
                    next((p for p in fr.persons if p.face_id == sid), None),
                    [h for h in fr.hands if h.face_id == sid],
                )
            )
    return out


def touch_events(series: Sequence[SubjectFrame]) -> dict[tuple[str, str], list[Event]]:
    """(hand side or "", region) → its self-touch events over one subject's frames."""
    seen: list[tuple[float, set[tuple[str, str]]]] = []
    for sf in series:
        here: set[tuple[str, str]] = set()
        for h in sf.hands:
            r = touch_region(h, sf.face, sf.person)
            if r is not None:
                here.add((h.side, r))
        seen.append((sf.t, here))
    return presence_events(seen)


def protection_events(series: Sequence[SubjectFrame]) -> list[Event]:
    """Events with arms crossed (self-protection) over one subject's frames."""
    times = [sf.t for sf in series]
    crossed = [sf.person is not None and arms_crossed(sf.person.keypoints) for sf in series]
    return find_events(times, crossed, 0.5)


def _scale(sf: SubjectFrame, hand: Hand) -> float:
    box = head_box(sf.face, sf.person)
    if box is not None and box[3] - box[1] > 1:
        return float(box[3] - box[1])
    return max(palm_length(hand) / 0.55, 1.0)  # a palm is about half a face height


def _anchor(sf: SubjectFrame) -> np.ndarray | None:
    box = head_box(sf.face, sf.person)
    if box is None:
        return None
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _match(a: list[Hand], b: list[Hand], scale: float) -> list[tuple[Hand, Hand]]:
    """Pairs (previous, current) that are the same hand: same confirmed side, else the nearest
    wrist within ``MATCH_RADIUS`` face heights (greedy, nearest first)."""
    pairs: list[tuple[Hand, Hand]] = []
    cands = []
    for i, ha in enumerate(a):
        for j, hb in enumerate(b):
            if ha.side and hb.side:
                if ha.side == hb.side:
                    cands.append((-1.0, i, j))
                continue
            d = float(np.linalg.norm(ha.landmarks[WRIST] - hb.landmarks[WRIST])) / scale
            if d <= MATCH_RADIUS:
                cands.append((d, i, j))
    used_a: set[int] = set()
    used_b: set[int] = set()
    for _, i, j in sorted(cands):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((a[i], b[j]))
    return pairs


def motion_energy(series: Sequence[SubjectFrame], jitter: float = JITTER) -> list[float]:
    """Hand motion energy of one subject at each frame (0 for the first): the largest, over its
    hands seen in this frame and the previous one, of the mean landmark displacement relative
    to the face, in face heights, less ``jitter``, per second."""
    out = [0.0] * len(series)
    for k in range(1, len(series)):
        prev, cur = series[k - 1], series[k]
        dt = cur.t - prev.t
        if dt <= 0 or not prev.hands or not cur.hands:
            continue
        a0, a1 = _anchor(prev), _anchor(cur)
        shift = a1 - a0 if a0 is not None and a1 is not None else np.zeros(2)
        best = 0.0
        for ha, hb in _match(prev.hands, cur.hands, _scale(cur, cur.hands[0])):
            s = _scale(cur, hb)
            d = np.asarray(hb.landmarks, np.float64) - np.asarray(ha.landmarks, np.float64) - shift
            step = float(np.linalg.norm(d, axis=1).mean()) / s
            best = max(best, max(0.0, step - jitter) / dt)
        out[k] = best
    return out


def fidget_intervals(
    series: Sequence[SubjectFrame],
    threshold: float = FIDGET_THRESHOLD,
    jitter: float = JITTER,
) -> tuple[list[Event], list[float]]:
    """The events of high hand motion (energy ≥ ``threshold`` face heights/s) and the energy.

    A step's energy belongs to the span between its two frames, so a run of high steps k..m is
    the event from frame k-1 to frame m (its apex: the frame that ends the fastest step)."""
    energy = motion_energy(series, jitter)
    times = [sf.t for sf in series]
    return [
        event_of(times, energy, max(a - 1, 0), b)
        for a, b in index_runs([e >= threshold for e in energy])
    ], energy


# --- words --------------------------------------------------------------------------------------

SOURCE = "mediapipe-hands+pose"
# posture cues the NFBL cues say better once the hands pass ran (the cue layer drops them then)
SUPERSEDED_POSTURE = ("hand_at_face", "hand_on_head", "arms_crossed")


def hands_ran(detectors: dict[str, str]) -> bool:
    """Whether a clip's annotation ran the hands pass (recorded in ``detectors["hands"]``)."""
    return detectors.get("hands", "off") != "off"


def _cue_value(events: list[Event], n: int, **extra) -> dict:
    k = sum(e.frames for e in events)
    return {"share": round(min(k, n) / max(n, 1), 2), "events": [e.to_dict() for e in events]} | (
        extra
    )


def nfbl_cues(frames: Sequence[FrameAnnotation]):
    """NFBL cues (kind ``nfbl``) of every subject: self-touch per hand and region, arms crossed
    (self-protection), fidgeting — each worded with its times, e.g. "right hand touches the neck
    1.2–2.0 s"; ``value`` keeps the events and the share of the subject's frames."""
    from sovtp.types import Cue

    out: list[Cue] = []
    for sid, series in subject_series(frames).items():
        n = len(series)
        for (side, region), events in touch_events(series).items():
            if not events:
                continue
            who = f"{side} hand" if side else "a hand"
            v = _cue_value(events, n, region=region, side=side or None)
            out.append(
                Cue(
                    "nfbl",
                    f"self_touch_{region}",
                    f"{who} touches {REGION_WORDS[region]} {span_phrase(events)}",
                    sid,
                    v,
                    confidence=v["share"],
                    source=SOURCE,
                )
            )
        crossed = protection_events(series)
        if crossed:
            v = _cue_value(crossed, n)
            out.append(
                Cue(
                    "nfbl",
                    "arms_crossed",
                    f"arms crossed over the chest (self-protection) {span_phrase(crossed)}",
                    sid,
                    v,
                    confidence=v["share"],
                    source=SOURCE,
                )
            )
        fidget, energy = fidget_intervals(series)
        if fidget:
            v = _cue_value(fidget, n, peak=round(max(energy), 3), threshold=FIDGET_THRESHOLD)
            v["energy"] = [
                [round(sf.t, 3), round(e, 3)] for sf, e in zip(series, energy, strict=True)
            ]
            out.append(
                Cue(
                    "nfbl",
                    "fidgeting",
                    f"fidgeting (hand motion high) {span_phrase(fidget)}",
                    sid,
                    v,
                    confidence=v["share"],
                    source=SOURCE,
                )
            )
    return out
