"""The offline FACS reasoner: EMFACS prototypes over the subject's AUs, softened by context.

It answers in the same JSON schema as the LLM backends (label, confidence, rationale, cues, plus
a score for every label), deterministically, with no model download — which makes it the default
backend, so ``sovtp query`` works offline out of the box.

It reads only ``Query.meta["facs"]``: plain numbers and phrases that the prompt builder copied
from the annotation (the subject's mean AU intensities and sides, posture names, others'
prototype readings).  Like every backend it knows nothing of faces or images.
"""

from __future__ import annotations

import json
import math
import time

from sovtp.backends.base import BatchedBackend, Capabilities, GenerationConfig, failed
from sovtp.facs import BLENDS, au_label, au_sort_key, read_expression
from sovtp.labels import LabelSet, load_label_set
from sovtp.records import Query, Response

# posture name -> (concept, boost): small nudges, never enough to outvote a clear face
POSTURE_PRIORS: dict[str, tuple[str, float]] = {
    "head_down": ("sadness", 0.08),
    "shoulders_raised": ("fear", 0.06),
    "arms_crossed": ("anger", 0.05),
    "hand_at_face": ("surprise", 0.04),
    "self_touch_face": ("surprise", 0.04),
    "hand_on_head": ("helplessness", 0.06),
    "leaning_back": ("disgust", 0.03),
}
OTHERS_WEIGHT = 0.1  # emotional contagion: how much the others' prototype leans the subject
TEMPERATURE = 0.15  # softmax temperature turning evidence into label scores


def _unchecked_text(
    unchecked: dict[str, list[str]], reasons: dict[str, str], ls: LabelSet, chosen: str
) -> str:
    """'Not measured: AU9 nose wrinkler, AU10 upper lip raiser (head turned 34°), so disgust is
    neither found nor ruled out.' — for the run's labels (a blend such as anxiety counts through
    its parts) whose prototype was mostly unmeasured, other than the ``chosen`` label, whose own
    gap the rationale words; the reasons are the annotation's (``Face.au_unmeasured``) where
    the query carries them."""
    names, codes = [], set()
    for lab in ls.labels:
        c = ls.concept(lab)
        parts = [c, *BLENDS.get(c or "", {})]
        gaps = {a for part in parts for a in unchecked.get(part or "", [])}
        if gaps and lab != chosen:
            names.append(lab)
            codes |= gaps
    if not names:
        return ""
    by_why: dict[str, list[str]] = {}
    for a in sorted(codes, key=au_sort_key):
        by_why.setdefault(reasons.get(a, ""), []).append(au_label(a))
    said = "; ".join(", ".join(v) + (f" ({why})" if why else "") for why, v in by_why.items())
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "is" if len(names) == 1 else "are"
    return f"Not measured: {said}, so {who} {verb} neither found nor ruled out."


def _in_contract(
    output: str,
    payload: dict,
    facs: dict,
    au_txt: str,
    active: str,
    used: list[str],
    unchecked: str = "",
) -> str:
    """The reasoner's answer written in the contract the query asked for, like a model would:
    ``staged`` stages first, ``text`` a 'Final answer:' line, ``label`` one word."""
    label = payload["label"]
    if output == "label":
        return label
    if output == "text":
        return f"{payload['rationale']}\nFinal answer: {label}"
    if output == "staged":
        others = "; ".join(u for u in used if u.startswith("person")) or "nobody else is read"
        body = "; ".join(n.replace("_", " ") for n in facs.get("posture") or []) or "no posture cue"
        staged = {
            "scene": "not seen: this reasoner reads measurements, not images",
            "body": body,
            "others": others,
            "action_units": f"active: {active or 'none above 0.3'}; best prototype: {au_txt}"
            + (f"; {unchecked[:1].lower()}{unchecked[1:]}" if unchecked else ""),
            "self_correction": payload["rationale"],
        }
        return json.dumps(staged | {k: payload[k] for k in ("label", "confidence", "scores")})
    return json.dumps(payload)


class FacsBackend(BatchedBackend):
    name = "facs"
    model = "emfacs-prototypes-v1"
    capabilities = Capabilities(
        images_per_prompt=0, video=False, json_schema=True, choice=True, reads_prompt=False
    )

    def __init__(self, **_: object):
        pass

    def answer(self, q: Query) -> Response:
        t0 = time.perf_counter()
        facs = q.meta.get("facs")
        if not facs or not facs.get("aus"):
            return failed(
                self, q, "no measurable face for the FACS reasoner (no subject AUs in the query)"
            )
        ls = load_label_set(q.labels or "basic7")
        aus = {k: float(v) for k, v in facs["aus"].items()}
        sides = {k: (float(v[0]), float(v[1])) for k, v in (facs.get("sides") or {}).items()}
        reading = read_expression(aus, sides)
        concept_scores = dict(reading.scores)
        used: list[str] = []
        for name in facs.get("posture") or []:
            if name in POSTURE_PRIORS:
                c, boost = POSTURE_PRIORS[name]
                if c in concept_scores:
                    concept_scores[c] += boost
                    used.append(f"posture: {name.replace('_', ' ')}")
        for other in facs.get("others") or []:
            c = other.get("top")
            if c in concept_scores and c != "neutral":
                concept_scores[c] += OTHERS_WEIGHT * float(other.get("score", 0.0))
                used.append(f"person {other.get('id')} looks like {c}")
        label_scores: dict[str, float] = {}
        for lab in ls.labels:
            c = ls.concept(lab)
            label_scores[lab] = concept_scores.get(c, 0.0) if c else 0.0
        z = [math.exp(v / TEMPERATURE) for v in label_scores.values()]
        total = sum(z)
        probs = {lab: round(v / total, 4) for lab, v in zip(label_scores, z, strict=False)}
        label = max(probs, key=lambda k: (probs[k], -ls.labels.index(k)))
        concept = ls.concept(label) or label
        ev = reading.evidence.get(concept, [])
        au_txt = (
            ", ".join(au_label(a) if a.startswith("AU") and " " not in a else a for a in ev)
            or "no decisive AU"
        )
        active = ", ".join(
            f"{k} {v:.2f}" for k, v in sorted(aus.items(), key=lambda kv: -kv[1]) if v >= 0.3
        )
        unchecked = _unchecked_text(reading.unchecked, facs.get("unmeasured") or {}, ls, label)
        gap = reading.unchecked.get(concept)
        on = f" on the AUs measured ({', '.join(gap)} not measured)" if gap else ""
        rationale = (
            f"EMFACS prototype for {concept} matches best{on}: {au_txt}. "
            f"Active AUs: {active or 'none above 0.3'}."
            + (f" {unchecked}" if unchecked else "")
            + (f" Context considered: {'; '.join(used)}." if used else "")
        )
        payload = {
            "label": label,
            "confidence": probs[label],
            "rationale": rationale,
            "cues": [a for a in ev] + used,
            "scores": probs,
        }
        return Response(
            query_id=q.id,
            backend=self.name,
            model=self.model,
            text=_in_contract(q.output, payload, facs, au_txt, active, used, unchecked),
            latency_s=time.perf_counter() - t0,
            finish_reason="stop",
        )

    def _answer_batch(self, queries: list[Query], cfg: GenerationConfig) -> list[Response]:
        return [self.answer(q) for q in queries]
