"""EMFACS-style prototypes: which emotion a set of AU intensities looks like.

This is the one place that turns AUs into emotion words.  The "others' expressions" cue uses it
for the people around the subject, and the offline ``facs`` backend uses it for the subject.

Prototypes (Friesen & Ekman's EMFACS, as summarised in the SoVTP / FACS literature):

| emotion | AUs (weight) |
|---|---|
| happiness | AU12 (2), AU6 (1) |
| sadness | AU1, AU4, AU15 (1.5), AU17 (0.5) |
| surprise | AU1, AU2, AU5, AU26 |
| fear | AU1, AU2, AU4, AU5, AU7, AU20 (1.5), AU26 |
| anger | AU4 (1.5), AU5, AU7, AU23 |
| disgust | AU9 (1.5), AU15, AU16, AU10 (0.5) |
| contempt | unilateral AU12 or AU14 |
| neutral | nothing expressive active |

Each AU's evidence is its intensity divided by :data:`FULL` (capped at 1); a prototype's score is
the weighted mean of its AUs' evidence, so a half-present prototype scores about half.  Scores
are evidence, not probabilities: they are comparable across emotions, and they say *why*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sovtp.annotate.aus import AU_NAMES, DEFAULT_THRESHOLD, unilateral

FULL = 0.6  # an AU intensity at or above this counts as fully present

PROTOTYPES: dict[str, dict[str, float]] = {
    "happiness": {"AU12": 2.0, "AU6": 1.0},
    "sadness": {"AU1": 1.0, "AU4": 1.0, "AU15": 1.5, "AU17": 0.5},
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU26": 1.0},
    "fear": {"AU1": 1.0, "AU2": 1.0, "AU4": 1.0, "AU5": 1.0, "AU7": 1.0, "AU20": 1.5, "AU26": 1.0},
    "anger": {"AU4": 1.5, "AU5": 1.0, "AU7": 1.0, "AU23": 1.0},
    "disgust": {"AU9": 1.5, "AU15": 1.0, "AU16": 1.0, "AU10": 0.5},
}
# Compound concepts of larger label sets (MAFW), as blends of the basic prototypes.
BLENDS: dict[str, dict[str, float]] = {
    "anxiety": {"fear": 0.6, "sadness": 0.4},
    "helplessness": {"sadness": 0.6, "surprise": 0.4},
    "disappointment": {"sadness": 0.7, "contempt": 0.3},
}
# AUs that count as "expressive" for neutrality (lips part / jaw drop / blink happen in speech).
EXPRESSIVE = [a for a in AU_NAMES if a not in ("AU25", "AU26", "AU45", "AU43", "AU28")]


@dataclass
class Reading:
    """Prototype evidence for one face."""

    scores: dict[str, float]  # concept -> 0..1
    evidence: dict[str, list[str]]  # concept -> AUs that supported it

    @property
    def top(self) -> str:
        return max(self.scores.items(), key=lambda kv: kv[1])[0]


def _evidence(v: float) -> float:
    return min(1.0, max(0.0, v / FULL))


def read_expression(
    aus: Mapping[str, float], sides: Mapping[str, tuple[float, float]] | None = None
) -> Reading:
    """Score every prototype (basic, contempt, neutral and the blends) from AU intensities."""
    scores: dict[str, float] = {}
    evidence: dict[str, list[str]] = {}
    for emo, proto in PROTOTYPES.items():
        total = sum(proto.values())
        scores[emo] = sum(w * _evidence(aus.get(au, 0.0)) for au, w in proto.items()) / total
        evidence[emo] = [au for au in proto if aus.get(au, 0.0) >= DEFAULT_THRESHOLD]
    sides = sides or {}
    contempt = 0.0
    used: list[str] = []
    for au in ("AU12", "AU14"):
        side = unilateral(sides, au)
        if side:
            lv, rv = sides[au]
            contempt = max(contempt, _evidence(abs(lv - rv)))
            used.append(f"{au} ({side} side only)")
    scores["contempt"] = contempt
    evidence["contempt"] = used
    peak = max((aus.get(a, 0.0) for a in EXPRESSIVE), default=0.0)
    scores["neutral"] = max(0.0, 1.0 - _evidence(peak))
    evidence["neutral"] = [] if peak >= DEFAULT_THRESHOLD else ["no expressive AU active"]
    for blend, parts in BLENDS.items():
        scores[blend] = sum(w * scores[p] for p, w in parts.items()) * 0.9
        evidence[blend] = sorted({au for p in parts for au in evidence[p] if au.startswith("AU")})
    return Reading(scores, evidence)


def describe(reading: Reading) -> str:
    """'looks like happiness (AU6, AU12)' — the phrase the others' expressions cue uses."""
    top = reading.top
    ev = reading.evidence.get(top) or []
    if top == "neutral":
        return "looks neutral (no expressive action unit active)"
    return f"looks like {top} ({', '.join(ev)})" if ev else f"leans towards {top}"
