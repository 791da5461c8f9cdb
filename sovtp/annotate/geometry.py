"""FACS action units from landmark geometry, where MediaPipe's blendshapes are blind.

Why: MediaPipe's v1 blendshape model outputs 0.0 for ``cheekSquint*`` and ``noseSneer*`` on real
posed faces (so AU6 and AU9 cannot come from blendshapes), and ``mouthUpperUp*`` rises with every
smile (so AU10 from blendshapes mostly echoes AU12).  The 478 landmarks do move for these actions,
so they are measured here as distances in the face's own frame.

How, per face:

1. **Frontalise.**  MediaPipe's facial transformation matrix maps the canonical face into camera
   space.  The landmarks (x, y, depth in pixels; image y and depth point the other way than the
   canonical face's y and z) are centred and rotated back by the matrix's rotation, so yaw, pitch
   and roll no longer change the distances.
2. **Normalise** by the inter-ocular distance (between the two eye centres, each the mean of its
   corners), so face size and distance to the camera drop out.
3. **Features**, per side: brow heights above the eye corners, lower-lid and cheek heights, nose
   wing height, upper-lip-to-nose distance, lip-corner height and spread, lip thickness, lip-to-chin
   distance (:data:`FEATURES`).
4. **Neutral reference.**  A video track is compared with its own least expressive frames (by its
   blendshape AUs, leaving out :data:`NEUTRAL_NOISY`, which read high on resting faces) when it
   has a neutral-looking frame; a still image, or a track that never looks neutral, with
   MediaPipe's canonical face (:data:`CANONICAL`, the neutral mean face the
   landmarker's geometry pipeline fits; its coordinates are copied from the canonical mesh inside
   ``face_landmarker.task``).  A canonical reference also carries every person's own morphology
   (thin lips, low brows), so it uses wider dead zones.
   ``Face.au_reference`` says which ("own neutral" | "canonical face") and
   ``geometry["reference_why"]`` why it fell back (:data:`REFERENCE_WHY`).
5. **Map to 0..1**: ``clip((change − dead zone) / span)``, spans in inter-ocular units (:data:`AUS`),
   the AU the mean of its two sides (one lip corner alone cannot make it strong).
   These are uncalibrated intensities on the blendshapes' scale, not FACS A–E.
6. **Validity**: beyond |yaw| :data:`YAW_LIMIT` the two sides disagree by more than an AU's span,
   so no geometric AU is reported there (``Face.au_unmeasured`` says "head turned N°").

Which AUs geometry writes into ``aus`` (:data:`GEOMETRY_AUS`): AU6, AU9, AU10, AU15, AU23, AU24
— ``au_methods`` says ``geometry`` for them.  AU10 is told apart from AU12: the smile's own
lift of the upper lip (in proportion to the lip-corner lift) is taken out before AU10 is scored.
The geometric AU1, AU2, AU4, AU12 and AU17 are cross-checks of their blendshape values: they go to
``Face.geometry`` (with the raw feature changes), not into ``aus``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sovtp.facs import EXPRESSIVE, au_sort_key
from sovtp.types import Face, FrameAnnotation

METHOD = "geometry"

# MediaPipe canonical face (cm; x towards the subject's left, y up, z towards the viewer), the
# landmarks used here, copied from the canonical mesh in face_landmarker.task
# (geometry_pipeline_metadata_landmarks.binarypb); tests check they still match that file.
CANONICAL: dict[int, tuple[float, float, float]] = {
    0: (0.000, -3.406, 5.980),
    2: (0.000, -2.089, 6.058),
    13: (0.000, -3.994, 5.219),
    14: (0.000, -4.542, 5.405),
    17: (0.000, -5.365, 5.535),
    33: (-4.446, 2.664, 3.173),
    37: (-0.711, -3.329, 5.877),
    39: (-1.432, -3.501, 5.496),
    46: (-5.253, 3.882, 3.363),
    48: (-1.609, -0.943, 5.814),
    53: (-4.589, 4.302, 4.048),
    55: (-1.221, 4.142, 5.106),
    61: (-2.456, -4.343, 4.284),
    63: (-4.986, 4.802, 3.752),
    64: (-1.592, -1.258, 5.457),
    65: (-2.645, 4.525, 4.922),
    66: (-2.760, 5.101, 5.016),
    70: (-5.721, 4.255, 2.831),
    98: (-1.406, -1.714, 5.241),
    101: (-3.327, 0.105, 4.114),
    107: (-1.396, 5.012, 5.316),
    117: (-5.259, 0.946, 2.974),
    118: (-4.432, 0.722, 3.523),
    119: (-3.301, 0.862, 3.873),
    133: (-1.856, 2.585, 3.758),
    144: (-3.670, 2.360, 3.635),
    145: (-3.177, 2.294, 3.776),
    152: (0.000, -9.403, 4.264),
    153: (-2.724, 2.316, 3.777),
    263: (4.446, 2.664, 3.173),
    267: (0.711, -3.329, 5.877),
    269: (1.432, -3.501, 5.496),
    276: (5.253, 3.882, 3.363),
    278: (1.609, -0.943, 5.814),
    283: (4.589, 4.302, 4.048),
    285: (1.221, 4.142, 5.106),
    291: (2.456, -4.343, 4.284),
    293: (4.986, 4.802, 3.752),
    294: (1.592, -1.258, 5.457),
    295: (2.645, 4.525, 4.922),
    296: (2.760, 5.101, 5.016),
    300: (5.721, 4.255, 2.831),
    327: (1.406, -1.714, 5.241),
    330: (3.327, 0.105, 4.114),
    336: (1.396, 5.012, 5.316),
    346: (5.259, 0.946, 2.974),
    347: (4.432, 0.722, 3.523),
    348: (3.301, 0.862, 3.873),
    362: (1.856, 2.585, 3.758),
    373: (3.670, 2.360, 3.635),
    374: (3.177, 2.294, 3.776),
    380: (2.724, 2.316, 3.777),
}

# (subject's right, subject's left) landmark groups
_EYE_IN = (133, 362)
_EYE_OUT = (33, 263)
_BROW_IN = ((107, 66, 55, 65), (336, 296, 285, 295))
_BROW_OUT = ((70, 63, 46, 53), (300, 293, 276, 283))
_LOWER_LID = ((145, 153, 144), (374, 380, 373))
_CHEEK = ((117, 118, 119, 101), (346, 347, 348, 330))
_NOSE_WING = ((48, 64, 98), (278, 294, 327))
_UPPER_LIP = ((0, 37, 39), (0, 267, 269))
_CORNER = (61, 291)
_SUBNASALE, _UPPER_IN, _LOWER_IN, _UPPER_TOP, _LOWER_BOTTOM, _CHIN = 2, 13, 14, 0, 17, 152

SIDES = ("left", "right")  # au_sides order: the subject's own left, then right


def _y(p: np.ndarray, idx: Iterable[int]) -> float:
    return float(np.mean([p[i, 1] for i in idx]))


def side_features(p: np.ndarray, s: int) -> dict[str, float]:
    """One side's features (``s``: 0 the subject's right, 1 the left) of a frontal face with y
    up.  Midface and mouth heights are in midface heights (this side's eye line to the subnasale):
    people's vertical proportions (and a residual pitch error) differ by more than the actions
    measured; brow heights and widths stay in inter-ocular distances (``p`` is scaled to one)."""
    eye_y = (p[_EYE_IN[s], 1] + p[_EYE_OUT[s], 1]) / 2.0
    v = max(float(eye_y - p[_SUBNASALE, 1]), 1e-6)
    lip_mid = (p[_UPPER_IN, 1] + p[_LOWER_IN, 1]) / 2.0
    mid_x = (p[_UPPER_TOP, 0] + p[_LOWER_BOTTOM, 0]) / 2.0
    return {
        "brow_inner": _y(p, _BROW_IN[s]) - p[_EYE_IN[s], 1],
        "brow_outer": _y(p, _BROW_OUT[s]) - p[_EYE_OUT[s], 1],
        "lower_lid": (_y(p, _LOWER_LID[s]) - eye_y) / v,
        "cheek": (_y(p, _CHEEK[s]) - eye_y) / v,
        "nose_wing": (_y(p, _NOSE_WING[s]) - eye_y) / v,
        "upper_lip": (_y(p, _UPPER_LIP[s]) - p[_SUBNASALE, 1]) / v,
        "corner_up": (p[_CORNER[s], 1] - lip_mid) / v,
        "corner_out": abs(p[_CORNER[s], 0] - mid_x),
    }


def face_features(p: np.ndarray) -> dict[str, float]:
    """Features of a frontal, normalised face: ``<name>_r`` / ``<name>_l`` per side, plus the
    bilateral ones (brow gap, lip thickness, lip-to-chin, mouth width, lips apart)."""
    out: dict[str, float] = {}
    for s, tag in ((0, "r"), (1, "l")):
        out.update({f"{k}_{tag}": float(v) for k, v in side_features(p, s).items()})
    eye_y = float(np.mean([p[i, 1] for i in (*_EYE_IN, *_EYE_OUT)]))
    v = max(eye_y - float(p[_SUBNASALE, 1]), 1e-6)
    out["brow_gap"] = float(abs(p[_BROW_IN[1][2], 0] - p[_BROW_IN[0][2], 0]))
    out["lip_thickness"] = (
        float((p[_UPPER_TOP, 1] - p[_UPPER_IN, 1]) + (p[_LOWER_IN, 1] - p[_LOWER_BOTTOM, 1])) / v
    )
    out["lip_chin"] = float(p[_LOWER_BOTTOM, 1] - p[_CHIN, 1]) / v
    out["mouth_width"] = float(abs(p[_CORNER[1], 0] - p[_CORNER[0], 0]))
    out["lips_apart"] = float(max(0.0, p[_UPPER_IN, 1] - p[_LOWER_IN, 1])) / v
    return out


def frontalise(face: Face) -> np.ndarray | None:
    """478×3 landmarks in the canonical face's frame (x to the subject's left, y up, z to the
    viewer), centred and scaled to one inter-ocular distance; None without depth or transform."""
    if face.landmarks is None or face.depth is None or face.transform is None:
        return None
    if face.landmark_scheme != "mediapipe478" or len(face.landmarks) < 468:
        return None
    pts = np.c_[face.landmarks[:, 0], -face.landmarks[:, 1], -face.depth].astype(np.float64)
    r = np.asarray(face.transform, dtype=np.float64)[:3, :3]
    scale = np.cbrt(abs(np.linalg.det(r)))
    if not np.isfinite(scale) or scale <= 0:
        return None
    r = r / scale
    # row vectors: p @ r == (rᵀ p)ᵀ, i.e. the inverse rotation
    front = (pts - pts[:468].mean(axis=0)) @ r
    return _normalise(front)


def _normalise(p: np.ndarray) -> np.ndarray:
    iod = float(np.linalg.norm(_eye_centre(p, 1) - _eye_centre(p, 0)))
    return p / max(iod, 1e-9)


def _eye_centre(p: np.ndarray, s: int) -> np.ndarray:
    return (p[_EYE_IN[s]] + p[_EYE_OUT[s]]) / 2.0


def canonical_features() -> dict[str, float]:
    """Features of MediaPipe's canonical (neutral) face: the reference for stills."""
    n = max(CANONICAL) + 1
    p = np.zeros((n, 3))
    for i, xyz in CANONICAL.items():
        p[i] = xyz
    return face_features(_normalise(p))


@dataclass(frozen=True)
class Measure:
    """One AU from one feature change (inter-ocular units): ``sign`` +1 when the AU makes the
    feature grow; ``dead`` the change ignored against an own-neutral reference, ``dead_canonical``
    against the canonical face; ``span`` the change above the dead zone that counts as 1.0."""

    feature: str
    sign: float
    dead: float
    dead_canonical: float
    span: float


# AU → the measures averaged into it (per side when the feature is sided).  Dead zones against the
# canonical face are wide on purpose: people's neutral faces differ from the mean face by about
# that much (brow height, lip thickness).
AUS: dict[str, tuple[Measure, ...]] = {
    "AU1": (Measure("brow_inner", +1, 0.01, 0.03, 0.12),),
    "AU2": (Measure("brow_outer", +1, 0.01, 0.03, 0.12),),
    "AU4": (Measure("brow_inner", -1, 0.01, 0.03, 0.10), Measure("brow_gap", -1, 0.01, 0.03, 0.1)),
    "AU6": (Measure("lower_lid", +1, 0.005, 0.01, 0.06), Measure("cheek", +1, 0.005, 0.01, 0.06)),
    "AU9": (Measure("nose_wing_x", +1, 0.005, 0.015, 0.06),),
    "AU10": (Measure("upper_lip_x", +1, 0.005, 0.01, 0.06),),
    "AU12": (
        Measure("corner_up", +1, 0.005, 0.01, 0.06),
        Measure("corner_out", +1, 0.01, 0.02, 0.08),
    ),
    "AU15": (Measure("corner_up", -1, 0.005, 0.015, 0.05),),
    "AU17": (Measure("lip_chin", -1, 0.01, 0.03, 0.08),),
    "AU23": (
        Measure("lip_thickness_x", -1, 0.01, 0.03, 0.08),
        Measure("mouth_width", -1, 0.0, 0.0, 0.1),
    ),
    "AU24": (Measure("lip_thickness_x", -1, 0.01, 0.03, 0.08),),
}
GEOMETRY_AUS = ("AU6", "AU9", "AU10", "AU15", "AU23", "AU24")
# AU17 is a cross-check only: the lip-to-chin distance shrinks with a dropped jaw and differs
# from the canonical face by a person's own chin (measured: 1.00 on an open-mouthed surprise and a
# toothy smile, 0.34–0.39 on resting chins); the blendshape mouthShrugLower measures it instead
CROSS_CHECK_AUS = ("AU1", "AU2", "AU4", "AU12", "AU17")
SMILE_LIP_LIFT = 0.5  # upper-lip lift per unit of lip-corner lift that a smile alone causes
# A smile also lifts the nose wings and stretches the lips thin (measured against the person's
# own rest in single_face.mp4: corners +0.17, nose wings +0.05, lip thickness −0.05 with the mouth
# 0.36 wider): without these shares a plain smile read AU9 0.83 and AU24 0.48
SMILE_WING_LIFT = 0.35  # nose-wing lift per unit of lip-corner lift
SMILE_LIP_THINNING = 0.15  # lip thinning per unit of mouth widening
NEUTRAL_MAX = 0.3  # a frame is neutral-looking when no expressive blendshape AU reaches this
# Blendshape AUs that read high on resting faces, so they cannot say whether a frame is neutral
# (measured on the check set's neutral faces: eyeSquint 0.33–0.54, browInnerUp 0.42–0.44,
# browOuterUp 0.16–0.35, mouthPucker 0.30–0.48 on a closed resting mouth).  Counting them, the rest frames of a clip that
# starts neutral exceeded NEUTRAL_MAX and the track fell back to the canonical face on every frame.
NEUTRAL_NOISY = ("AU1", "AU2", "AU7", "AU18")
# The neutral frames must agree with the least expressive one: a smile's onset can look as
# unexpressive to the blendshapes (AU12 < 0.15) yet moves the lip corners by ~0.08; in the median
# it made the rest frame read AU15 0.76 (single_face.mp4 at uniform:6).  Rest frames of one person
# differ by <= 0.012 in every feature (measured there); this is the largest difference allowed.
NEUTRAL_AGREE = 0.04
# Without an own rest (a still, a track that never rests), eyeSquint counts only above this
# resting level: it read 0.33–0.54 on every resting face of the check set (takeo.ppm 0.54) and
# made a neutral portrait "angry"; 0.35 is the low end.  AU1 and AU18 rest high in some people
# only (0.42/0.48 in one, 0.01/0.00 in another), so a fixed level would hide real brow raises.
CANONICAL_REST = {"AU7": 0.35}
NEUTRAL_FRACTION = 0.25  # the least expressive quarter of a track's frames is its neutral
MIN_VIDEO_FRAMES = 3
# Beyond this head turn the frontalised landmarks of the two sides disagree by more than the AUs'
# spans (measured on the check set's clips and stills: left/right disagreement of the nose-wing,
# upper-lip and lip-corner heights, median 0.02 at |yaw| < 5°, 0.05 at 5–10°, 0.11 at 15–20°,
# 0.17 at 34°; an AU's span is 0.05–0.06), so geometric AUs are not reported there
YAW_LIMIT = 15.0
REFERENCE_OWN, REFERENCE_CANONICAL = "own neutral", "canonical face"
# why a face was measured against the canonical face (Face.geometry["reference_why"])
REFERENCE_WHY = {
    0.0: "",
    1.0: "a still image has no neutral frame of its own",
    2.0: f"the track has fewer than {MIN_VIDEO_FRAMES} frames",
    3.0: "the track never looks neutral",
}
VERSION = "geometry v2"  # part of the detector cache key: a change here re-annotates


def _derived(feat: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
    """Feature changes from the reference, plus the smile-corrected upper-lip and nose-wing lifts
    (AU10, AU9) and lip thinning (AU23, AU24): ``*_x``."""
    delta = {k: feat[k] - ref[k] for k in feat if k in ref}
    for tag in ("r", "l"):
        lift = delta[f"upper_lip_{tag}"]
        corner = max(0.0, delta[f"corner_up_{tag}"])
        delta[f"upper_lip_x_{tag}"] = lift - SMILE_LIP_LIFT * corner
        delta[f"nose_wing_x_{tag}"] = delta[f"nose_wing_{tag}"] - SMILE_WING_LIFT * corner
    widening = max(0.0, delta["mouth_width"])
    delta["lip_thickness_x"] = delta["lip_thickness"] + SMILE_LIP_THINNING * widening
    return delta


def _score(m: Measure, change: float, canonical: bool) -> float:
    dead = m.dead_canonical if canonical else m.dead
    return float(np.clip((m.sign * change - dead) / m.span, 0.0, 1.0))


def score_aus(
    delta: dict[str, float], canonical: bool
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """AU intensities (0..1) and sides (subject's left, right) from feature changes."""
    aus: dict[str, float] = {}
    sides: dict[str, tuple[float, float]] = {}
    for au, measures in AUS.items():
        per_side = []
        for tag in ("l", "r"):
            vals = []
            for m in measures:
                key = f"{m.feature}_{tag}" if f"{m.feature}_{tag}" in delta else m.feature
                vals.append(_score(m, delta[key], canonical))
            per_side.append(float(np.mean(vals)))
        left, right = per_side
        # the mean of the two sides: one corner alone (a residual tilt, a half-hidden side)
        # cannot make a bilateral AU "strong"; the sides stay in au_sides
        aus[au] = (left + right) / 2.0
        if left != right:
            sides[au] = (left, right)
    return aus, sides


def _expressiveness(face: Face) -> float:
    """How far a face is from neutral by its blendshape AUs (not the geometry ones, and not the
    ones that read high on resting faces, :data:`NEUTRAL_NOISY`)."""
    vals = [
        v
        for k, v in face.aus.items()
        if k in EXPRESSIVE
        and k not in NEUTRAL_NOISY
        and face.au_methods.get(k, "blendshape") == "blendshape"
    ]
    return max(vals, default=0.0)


def reference_for(
    faces: list[tuple[Face, dict[str, float]]], still: bool
) -> tuple[dict[str, float], float, list[Face]]:
    """A track's neutral features, why they are the canonical face's (a key of
    :data:`REFERENCE_WHY`; 0 when they are its own) and the frames that made them.

    Video: the median over its least expressive frames, when the track has at least
    :data:`MIN_VIDEO_FRAMES` measured frames and its least expressive one looks neutral.
    """
    if still:
        return canonical_features(), 1.0, []
    if len(faces) < MIN_VIDEO_FRAMES:
        return canonical_features(), 2.0, []
    ranked = sorted(faces, key=lambda fp: _expressiveness(fp[0]))
    if _expressiveness(ranked[0][0]) >= NEUTRAL_MAX:
        return canonical_features(), 3.0, []
    k = max(1, int(np.ceil(NEUTRAL_FRACTION * len(ranked))))
    anchor = ranked[0][1]
    chosen = [
        f
        for f in ranked[:k]
        if _expressiveness(f[0]) < NEUTRAL_MAX
        and max(abs(f[1][key] - anchor[key]) for key in anchor) <= NEUTRAL_AGREE
    ]
    keys = chosen[0][1].keys()
    ref = {key: float(np.median([f[1][key] for f in chosen])) for key in keys}
    return ref, 0.0, [f[0] for f in chosen]


def measure_face(
    face: Face,
    ref: dict[str, float],
    canonical: bool,
    feat: dict[str, float],
    why: float = 0.0,
    neutral_frames: int = 0,
) -> None:
    """Write one face's geometry AUs in place (``aus``, ``au_sides``, ``au_methods``,
    ``geometry``, ``au_reference``); beyond :data:`YAW_LIMIT` they go to ``au_unmeasured``."""
    delta = _derived(feat, ref)
    aus, sides = score_aus(delta, canonical)
    yaw = abs(face.head_pose[0]) if face.head_pose is not None else 0.0
    for au in GEOMETRY_AUS:
        face.au_sides.pop(au, None)
        if yaw > YAW_LIMIT:
            face.aus.pop(au, None)
            face.au_methods.pop(au, None)
            face.au_unmeasured[au] = f"head turned {yaw:.0f}°"
            continue
        face.aus[au] = round(aus[au], 4)
        face.au_methods[au] = METHOD
        if au in sides:
            face.au_sides[au] = sides[au]
    face.aus = dict(sorted(face.aus.items(), key=lambda kv: au_sort_key(kv[0])))
    geo = {f"{au}": round(aus[au], 4) for au in (*GEOMETRY_AUS, *CROSS_CHECK_AUS)}
    geo.update({f"d_{k}": round(v, 4) for k, v in delta.items()})
    geo["reference_canonical"] = 1.0 if canonical else 0.0
    geo["reference_why"] = why
    geo["neutral_frames"] = float(neutral_frames)
    face.geometry = geo
    face.au_reference = REFERENCE_CANONICAL if canonical else REFERENCE_OWN


def apply_geometry(frames: list[FrameAnnotation], *, still: bool) -> None:
    """Measure geometry AUs for every tracked face, in place (``aus``, ``au_sides``,
    ``au_methods``, ``geometry``), relative to each track's neutral reference.  ``still``: one
    image, so the neutral is the canonical face, not the clip's own least expressive frames.
    Faces without depth or transform (py-feat's dlib68, old caches) are left as they are."""
    tracks: dict[int, list[tuple[Face, dict[str, float]]]] = {}
    for fr in frames:
        for face in fr.faces:
            p = frontalise(face)
            if p is not None:
                tracks.setdefault(face.track_id, []).append((face, face_features(p)))
    for faces in tracks.values():
        ref, why, rest = reference_for(faces, still)
        rest_aus = _rest_levels(rest)
        for face, feat in faces:
            measure_face(face, ref, why > 0, feat, why, len(rest))
            _above_rest(face, rest_aus)


def _rest_levels(rest: list[Face]) -> dict[str, float]:
    """The track's own resting level of each :data:`NEUTRAL_NOISY` blendshape AU (the median
    over its neutral frames); :data:`CANONICAL_REST` without an own neutral."""
    if not rest:
        return dict(CANONICAL_REST)
    out = {}
    for au in NEUTRAL_NOISY:
        vals = [f.aus[au] for f in rest if f.au_methods.get(au) == "blendshape" and au in f.aus]
        if vals:
            out[au] = float(np.median(vals))
    return out


def _above_rest(face: Face, rest: dict[str, float]) -> None:
    """Re-express the resting-biased blendshape AUs above the track's own rest, in place:
    ``(v − rest) / (1 − rest)``, so a person whose eyes read eyeSquint 0.4 at rest is not
    "squinting" whenever they look as they do at rest.  Recorded as ``geometry["rest_<AU>"]``."""
    for au, level in rest.items():
        if au not in face.aus or face.au_methods.get(au) != "blendshape":
            continue

        def lift(v: float, level: float = level) -> float:
            return round(float(np.clip((v - level) / max(1.0 - level, 1e-6), 0.0, 1.0)), 4)

        face.aus[au] = lift(face.aus[au])
        if au in face.au_sides:
            lv, rv = face.au_sides[au]
            face.au_sides[au] = (lift(lv), lift(rv))
        face.geometry[f"rest_{au}"] = round(level, 4)
