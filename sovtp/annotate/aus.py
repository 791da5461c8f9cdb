"""MediaPipe's 52 ARKit-style blendshapes → FACS action units (names and thresholds: sovtp.facs).

MediaPipe does not estimate AUs; it estimates blendshape coefficients, many of which were designed
as one-to-one stand-ins for a FACS action (Apple's ARKit list was drawn from FACS).  This table
says which blendshape(s) stand for which AU.  Intensities stay on the blendshape's 0..1 scale —
they are *not* calibrated FACS A–E intensities, and the AU's ``source`` says so.

Bilateral AUs keep both sides (``au_sides``, the subject's own left/right as MediaPipe names
them) because FACS cares: unilateral AU12/AU14 is the contempt signal.  The AU intensity is the
stronger side.

MediaPipe's v1 blendshape model is blind to two actions on real posed faces (measured: it outputs
0.0 for ``cheekSquint*`` and ``noseSneer*``), so AU6 and AU9 are *not measured* here — an AU
absent from the reading was not measured, which is not the same as measured absent; landmark
geometry (:mod:`sovtp.annotate.geometry`) measures them.  ``mouthUpperUp*`` rises with every
smile, so AU10 takes the smile's share out (geometry replaces it when the landmarks allow).
When each AU is valid, and how it is finally measured (blendshape or geometry): :data:`AU_MEASURES`.

| AU | FACS name | blendshape(s) | note |
|----|-----------|---------------|------|
| AU1 | inner brow raiser | browInnerUp | bilateral only; above the own rest in video |
| AU2 | outer brow raiser | browOuterUp{Left,Right} | |
| AU4 | brow lowerer | browDown{Left,Right} | |
| AU5 | upper lid raiser | eyeWide{Left,Right} | |
| AU6 | cheek raiser | — | not from blendshapes: cheekSquint* is 0.0 on real faces (geometry) |
| AU7 | lid tightener | eyeSquint{Left,Right} | above the resting level (own rest; 0.35 on stills) |
| AU9 | nose wrinkler | — | not from blendshapes: noseSneer* is 0.0 on real faces (geometry) |
| AU10 | upper lip raiser | mouthUpperUp − 0.6·mouthSmile per side | mouthUpperUp rises with every smile |
| AU12 | lip corner puller | mouthSmile{Left,Right} | |
| AU14 | dimpler | mouthDimple{Left,Right} | |
| AU15 | lip corner depressor | mouthFrown{Left,Right} | |
| AU16 | lower lip depressor | mouthLowerDown{Left,Right} | |
| AU17 | chin raiser | mouthShrugLower | not measured with lips apart (AU25/AU26 ≥ 0.3) |
| AU18 | lip pucker | mouthPucker | |
| AU20 | lip stretcher | mouthStretch{Left,Right} | |
| AU22 | lip funneler | mouthFunnel | |
| AU23 | lip tightener | mean(mouthRollUpper, mouthRollLower) | approximation: lips narrowed/rolled |
| AU24 | lip pressor | mouthPress{Left,Right} | |
| AU25 | lips part | max(jawOpen − mouthClose, AU16, mouthUpperUp·0.8) | derived: lips apart |
| AU26 | jaw drop | jawOpen | |
| AU45 | blink / eye closure (AU43 when held) | eyeBlink{Left,Right} | |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sovtp.facs import au_sort_key

# Each AU a face may carry: how it is measured and when the measure is valid.  Outside those
# conditions the AU is *not reported* (it goes to Face.au_unmeasured with the reason), which a
# prompt words as "not measured", never as "absent".  benchmarks/au_check.py prints this table
# beside the hits and false fires measured on real faces.
_MOUTH = "mouth not covered"
_EYES = "eyes not covered (hand, dark glasses)"
_TURN = "head turn (yaw) <= 15° (geometry.YAW_LIMIT)"
AU_MEASURES: dict[str, tuple[str, str]] = {
    "AU1": ("blendshape browInnerUp (above own rest in video)", "any; rests at 0.4 in some"),
    "AU2": ("blendshape browOuterUp (above own rest in video)", "any"),
    "AU4": ("blendshape browDown", "any"),
    "AU5": ("blendshape eyeWide", _EYES),
    "AU6": ("geometry: lower lid + cheek rise vs neutral", f"{_TURN}; {_EYES}"),
    "AU7": ("blendshape eyeSquint above rest (own, or 0.35)", f"{_EYES}; rests at 0.3-0.55"),
    "AU9": ("geometry: nose-wing rise vs neutral", _TURN),
    "AU10": ("geometry: upper-lip rise less a smile's share", f"{_TURN}; {_MOUTH}"),
    "AU12": ("blendshape mouthSmile", _MOUTH),
    "AU14": ("blendshape mouthDimple", _MOUTH),
    "AU15": ("geometry: lip corners down vs neutral (mean of sides)", f"{_TURN}; {_MOUTH}"),
    "AU16": ("blendshape mouthLowerDown", _MOUTH),
    "AU17": ("blendshape mouthShrugLower", f"lips together (AU25, AU26 < 0.3); {_MOUTH}"),
    "AU18": ("blendshape mouthPucker (above own rest in video)", _MOUTH),
    "AU20": ("blendshape mouthStretch", _MOUTH),
    "AU22": ("blendshape mouthFunnel", _MOUTH),
    "AU23": ("geometry: lips thinner and narrower vs neutral", f"{_TURN}; {_MOUTH}"),
    "AU24": ("geometry: lips thinner vs neutral", f"{_TURN}; {_MOUTH}"),
    "AU25": ("blendshapes: jawOpen - mouthClose, AU16, mouthUpperUp", _MOUTH),
    "AU26": ("blendshape jawOpen", _MOUTH),
    "AU45": ("blendshape eyeBlink", _EYES),
}

# AU -> the stem of its blendshape pair for bilateral ones (``browDown`` → ``browDownLeft`` and
# ``browDownRight``).
_SIDED: dict[str, str] = {
    "AU2": "browOuterUp",
    "AU4": "browDown",
    "AU5": "eyeWide",
    "AU7": "eyeSquint",
    "AU12": "mouthSmile",
    "AU14": "mouthDimple",
    "AU15": "mouthFrown",
    "AU16": "mouthLowerDown",
    "AU20": "mouthStretch",
    "AU24": "mouthPress",
    "AU45": "eyeBlink",
}
_SINGLE: dict[str, str] = {
    "AU1": "browInnerUp",
    "AU17": "mouthShrugLower",
    "AU18": "mouthPucker",
    "AU22": "mouthFunnel",
    "AU26": "jawOpen",
}
SOURCE = "mediapipe-blendshapes (uncalibrated 0..1)"
BLIND = ("AU6", "AU9")  # never measured from blendshapes (see the module docstring)
SMILE_IN_UPPER_UP = 0.6  # mouthUpperUp per unit of mouthSmile that a plain smile causes


OPEN_MOUTH = 0.3  # AU25 or AU26 at this or above: the lips are apart
# AUs that an open mouth makes unmeasurable: AU17 pushes the lower lip up against the upper one,
# which lips apart (AU25/26/27) rule out, and mouthShrugLower is unreliable there
NOT_WITH_OPEN_MOUTH = ("AU17",)


@dataclass
class AUReading:
    aus: dict[str, float]
    sides: dict[str, tuple[float, float]]
    source: str = SOURCE
    unmeasured: dict[str, str] = field(default_factory=dict)  # AU -> why (Face.au_unmeasured)


def blendshapes_to_aus(bs: Mapping[str, float]) -> AUReading:
    """Map one face's blendshape scores to AU intensities (0..1) with sides kept."""

    def g(name: str) -> float:
        return float(min(1.0, max(0.0, bs.get(name, 0.0))))

    aus: dict[str, float] = {}
    sides: dict[str, tuple[float, float]] = {}
    for code, stem in _SIDED.items():
        lv, rv = g(f"{stem}Left"), g(f"{stem}Right")
        sides[code] = (lv, rv)
        aus[code] = max(lv, rv)
    for code, name in _SINGLE.items():
        aus[code] = g(name)
    up = (g("mouthUpperUpLeft"), g("mouthUpperUpRight"))
    smile = (g("mouthSmileLeft"), g("mouthSmileRight"))
    au10 = tuple(max(0.0, u - SMILE_IN_UPPER_UP * s) for u, s in zip(up, smile, strict=True))
    sides["AU10"] = (au10[0], au10[1])
    aus["AU10"] = max(au10)
    aus["AU23"] = (g("mouthRollUpper") + g("mouthRollLower")) / 2.0
    aus["AU25"] = max(g("jawOpen") - g("mouthClose"), aus["AU16"], 0.8 * max(up), 0.0)
    unmeasured: dict[str, str] = {}
    if max(aus["AU25"], aus["AU26"]) >= OPEN_MOUTH:
        for code in NOT_WITH_OPEN_MOUTH:
            aus.pop(code, None)
            unmeasured[code] = "mouth open"
    ordered = dict(sorted(aus.items(), key=lambda kv: au_sort_key(kv[0])))
    return AUReading(ordered, sides, unmeasured=unmeasured)
