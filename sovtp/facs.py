"""FACS knowledge shared by every stage: AU names, activity thresholds, EMFACS prototypes.

Pure functions over AU intensities (``"AU12" -> 0..1``) and sides.  It sits beside the stages, not
inside one: the annotators word cues with it, the renderer labels faces with it, and the offline
FACS reasoner (a backend) scores emotions with it — without any of them reaching into another.

EMFACS-style prototypes: which emotion a set of AU intensities looks like (Friesen & Ekman's
EMFACS, as summarised in the SoVTP / FACS literature):

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
from dataclasses import dataclass, field

DEFAULT_THRESHOLD = 0.3
DEFAULT_TOP_K = 5

AU_NAMES: dict[str, str] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer",
    "AU5": "upper lid raiser",
    "AU6": "cheek raiser",
    "AU7": "lid tightener",
    "AU9": "nose wrinkler",
    "AU10": "upper lip raiser",
    "AU12": "lip corner puller",
    "AU14": "dimpler",
    "AU15": "lip corner depressor",
    "AU16": "lower lip depressor",
    "AU17": "chin raiser",
    "AU18": "lip pucker",
    "AU20": "lip stretcher",
    "AU22": "lip funneler",
    "AU23": "lip tightener",
    "AU24": "lip pressor",
    "AU25": "lips part",
    "AU26": "jaw drop",
    "AU28": "lip suck",
    "AU43": "eyes closed",
    "AU45": "blink",
}


def au_label(code: str) -> str:
    """'AU12' -> 'AU12 lip corner puller'."""
    return f"{code} {AU_NAMES.get(code, '')}".strip()


def au_sort_key(code: str) -> int:
    digits = "".join(ch for ch in code if ch.isdigit())
    return int(digits) if digits else 999


def active_aus(aus: Mapping[str, float], threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """AUs at or above ``threshold``, strongest first."""
    act = {k: v for k, v in aus.items() if v >= threshold}
    return dict(sorted(act.items(), key=lambda kv: (-kv[1], au_sort_key(kv[0]))))


def prominent_aus(
    aus: Mapping[str, float], top_k: int = DEFAULT_TOP_K, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """The top-k active AUs: the set a SoVTP prompt words for a face."""
    return dict(list(active_aus(aus, threshold).items())[:top_k])


def intensity_word(v: float) -> str:
    """A FACS-flavoured word for an uncalibrated 0..1 intensity."""
    if v >= 0.75:
        return "strong"
    if v >= 0.5:
        return "marked"
    if v >= 0.3:
        return "slight"
    return "trace"


def unilateral(
    sides: Mapping[str, tuple[float, float]], code: str, ratio: float = 2.0
) -> str | None:
    """'left'/'right' when one side of a bilateral AU is ``ratio``× the other and active."""
    if code not in sides:
        return None
    lv, rv = sides[code]
    if max(lv, rv) < DEFAULT_THRESHOLD:
        return None
    if lv >= ratio * max(rv, 1e-3):
        return "left"
    if rv >= ratio * max(lv, 1e-3):
        return "right"
    return None


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
# The AUs some prototype reads: a turned head leaves AU6/9/10/15/23 unmeasured — not absent.
PROTOTYPE_AUS = [a for a in AU_NAMES if any(a in p for p in PROTOTYPES.values())]
UNCHECKED_SHARE = 0.5  # a prototype with at least this share of its weight unmeasured is unchecked


@dataclass
class Reading:
    """Prototype evidence for one face."""

    scores: dict[str, float]  # concept -> 0..1
    evidence: dict[str, list[str]]  # concept -> AUs that supported it
    # concept -> its prototype AUs that were not measured, for the prototypes with at least
    # UNCHECKED_SHARE of their weight unmeasured: neither found nor ruled out
    unchecked: dict[str, list[str]] = field(default_factory=dict)

    @property
    def top(self) -> str:
        return max(self.scores.items(), key=lambda kv: kv[1])[0]


def _evidence(v: float) -> float:
    return min(1.0, max(0.0, v / FULL))


# neutral's evidence in a reading (the reasoner's terse form) and in a cue's words
NO_AU, NO_MEASURED_AU = "no expressive AU active", "no measured expressive AU active"
IN_WORDS = {
    NO_AU: "no expressive action unit active",
    NO_MEASURED_AU: "no measured expressive action unit active",
}


def read_expression(
    aus: Mapping[str, float], sides: Mapping[str, tuple[float, float]] | None = None
) -> Reading:
    """Score every prototype (basic, contempt, neutral and the blends) from AU intensities."""
    scores: dict[str, float] = {}
    evidence: dict[str, list[str]] = {}
    unchecked: dict[str, list[str]] = {}
    for emo, proto in PROTOTYPES.items():
        # only measured AUs count: an AU missing from ``aus`` was not measured, which is not
        # evidence of absence.  The mean over the measured ones is shrunk a little by how much
        # of the prototype could be measured, so a half-measured prototype cannot win on one AU.
        total = sum(proto.values())
        seen = {au: w for au, w in proto.items() if au in aus}
        got = sum(seen.values())
        mean = sum(w * _evidence(aus[au]) for au, w in seen.items()) / got if got else 0.0
        scores[emo] = mean * (0.75 + 0.25 * got / total)
        evidence[emo] = [au for au in proto if aus.get(au, 0.0) >= DEFAULT_THRESHOLD]
        if total - got >= UNCHECKED_SHARE * total:
            unchecked[emo] = sorted((au for au in proto if au not in aus), key=au_sort_key)
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
    # an unmeasured AU does not lower neutral (that turned faces with nothing active into an
    # emotion); the wording says what could not be checked
    scores["neutral"] = max(0.0, 1.0 - _evidence(peak))
    evidence["neutral"] = []
    if peak < DEFAULT_THRESHOLD:
        every = all(a in aus for a in PROTOTYPE_AUS)
        evidence["neutral"] = [NO_AU if every else NO_MEASURED_AU]
    for blend, parts in BLENDS.items():
        scores[blend] = sum(w * scores[p] for p, w in parts.items()) * 0.9
        evidence[blend] = sorted({au for p in parts for au in evidence[p] if au.startswith("AU")})
    return Reading(scores, evidence, unchecked)


def describe(reading: Reading) -> str:
    """'looks like happiness (AU6, AU12)' — the phrase the others' expressions cue uses."""
    top = reading.top
    ev = reading.evidence.get(top) or []
    if top == "neutral":
        if len(reading.unchecked) == len(PROTOTYPES) and ev:
            return "reads as no expression (its action units were not measured)"
        # evidence["neutral"] is empty when an AU is active but no prototype beat neutral
        why = [IN_WORDS.get(ev[0], ev[0]) if ev else "no prototype matched"]
        if reading.unchecked:
            why.append(unchecked_phrase(reading))
        return f"looks neutral ({'; '.join(why)})"
    return f"looks like {top} ({', '.join(ev)})" if ev else f"leans towards {top}"


def unchecked_phrase(reading: Reading) -> str:
    """'disgust not checked: AU9, AU10, AU15 not measured' — the prototypes a reading can
    neither find nor rule out, so "neutral" is never read as "no disgust"."""
    return "; ".join(
        f"{emo} not checked: {', '.join(aus)} not measured"
        for emo, aus in reading.unchecked.items()
    )
