"""Model answer → Prediction, by the output contract the query asked for; nothing is guessed.

With a contract (:mod:`sovtp.contracts`) the parser reads only what that contract asked for:

- ``staged`` / ``json``: a JSON object with a ``label`` (strict → ``ok``; inside a code fence or
  prose → ``repaired``).  A staged answer's stages become the rationale, stage by stage.
- ``text``: the **last** line ``Final answer: <label>`` only — never a label mentioned in passing;
  no such line → ``invalid``.
- ``label``: the whole answer is one label (or a ranked list of labels).

Without a contract (predictions made elsewhere, legacy rows) it tries, in a fixed order of trust:

1. strict JSON (the whole answer is an object with a ``label``)          → ``ok``
2. JSON inside a code fence or embedded in prose                          → ``repaired``
3. a "final answer: X" / "answer: X" / "label: X" line                     → ``repaired``
4. label words, synonyms and inflections in the text (happy/happiness/joy)→ ``repaired``,
   but only when exactly one label is named — or when the answer is a ranked list
   ("Happy, Surprise, Neutral"), whose first item is top-1 and whose order is the ranking
5. otherwise                                                              → ``invalid`` (label None)

A label outside the label set is invalid even when the JSON is perfect.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sovtp.contracts import FINAL_ANSWER, STAGE_KEYS, staged_text
from sovtp.labels import LabelSet, load_label_set
from sovtp.records import Prediction, Response

_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S | re.I)
_FINAL = re.compile(
    r"(?:final\s+answer|final\s+label|answer|label|emotion|prediction)\s*(?:is)?\s*[:=\-]\s*\**\s*([A-Za-z][A-Za-z \-]*)",
    re.I,
)


def json_objects(text: str) -> list[str]:
    """Balanced {...} substrings (outermost first), for JSON embedded in prose."""
    out, depth, start = [], 0, None
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0 and start is not None:
                out.append(text[start : i + 1])
    return out


def _from_obj(obj: Any, ls: LabelSet) -> tuple[str | None, dict[str, Any]] | None:
    if not isinstance(obj, dict):
        return None
    raw = None
    for key in ("label", "emotion", "answer", "final_answer", "prediction"):
        if key in obj:
            raw = obj[key]
            break
    if raw is None:
        return None
    if isinstance(raw, list):
        raw = raw[0] if raw else ""
    return ls.normalize(str(raw)), obj


def _mentions(text: str, ls: LabelSet) -> list[str]:
    """Labels named in free text, in order of first mention (word-bounded, longest term first)."""
    norm = " " + re.sub(r"[^a-z]+", " ", text.lower()) + " "
    found: list[tuple[int, str]] = []
    taken = [False] * len(norm)
    for term, label in ls.terms():
        for m in re.finditer(rf"(?<= ){re.escape(term)}(?= )", norm):
            if any(taken[m.start() : m.end()]):
                continue
            for k in range(m.start(), m.end()):
                taken[k] = True
            found.append((m.start(), label))
    out: list[str] = []
    for _, lab in sorted(found):
        if lab not in out:
            out.append(lab)
    return out


def _ranked(text: str, ls: LabelSet) -> list[str] | None:
    """'Happy, Surprise, Neutral' (or one per line / numbered) → labels, if every item is one."""
    items = [
        re.sub(r"^\s*(\d+[.)]|[-*])\s*", "", x).strip(" .*\"'")
        for x in re.split(r"[,;\n>]+", text.strip())
    ]
    items = [x for x in items if x]
    if not items or len(items) > len(ls.labels):
        return None
    labs = [ls.normalize(x) for x in items]
    if any(lab is None for lab in labs):
        return None
    out: list[str] = []
    for lab in labs:
        if lab not in out:
            out.append(lab)  # type: ignore[arg-type]
    return out


_FINAL_LINE = re.compile(rf"^\W*{re.escape(FINAL_ANSWER[:-1])}\W*:\s*(.+?)\s*$", re.I | re.M)


def _final_line(text: str, ls: LabelSet, pred: Prediction, fill) -> Prediction:
    """The ``text`` contract: the last ``Final answer: <label>`` line decides; the reasoning
    before it is the rationale.  A line whose words are not one label is invalid."""
    lines = list(_FINAL_LINE.finditer(text))
    if lines:
        m = lines[-1]
        raw = m.group(1).strip(" .*_`\"'")
        label = ls.normalize(raw)
        if label is None:
            named = _mentions(raw, ls)
            label = named[0] if len(named) == 1 else None
        if label is not None:
            return fill(label, {"rationale": text[: m.start()].strip()}, "ok")
    pred.rationale = text
    return pred


def _stages_missing(output: str | None, obj: dict[str, Any]) -> bool:
    return output == "staged" and not all(obj.get(k) not in (None, "") for k in STAGE_KEYS)


def parse_answer(
    text: str,
    labels: LabelSet | list[str] | str,
    sample_id: str = "",
    *,
    output: str | None = None,
    **fields: Any,
) -> Prediction:
    """Parse one answer against a label set, under the query's output contract (``output``;
    None: the fallback chain of the module docstring, for answers made elsewhere)."""
    ls = load_label_set(labels)
    text = (text or "").strip()
    pred = Prediction(sample_id=sample_id, **fields)
    if not text:
        return pred

    def fill(label: str | None, obj: dict[str, Any], status: str) -> Prediction:
        pred.label = label
        pred.parse_status = status if label else "invalid"  # type: ignore[assignment]
        pred.ranking = [label] if label else []
        conf = obj.get("confidence")
        try:
            pred.confidence = None if conf is None else float(conf)
        except (TypeError, ValueError):
            pred.confidence = None
        pred.stages = {k: str(obj[k]) for k in STAGE_KEYS if obj.get(k) not in (None, "")}
        pred.rationale = staged_text(obj) or str(
            obj.get("rationale") or obj.get("reason") or obj.get("reasoning") or ""
        )
        cues = obj.get("cues") or obj.get("cues_used") or []
        pred.cues_used = [str(c) for c in cues] if isinstance(cues, list) else [str(cues)]
        scores = obj.get("scores")
        if isinstance(scores, dict):
            pred.scores = {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}
            ranked = sorted(pred.scores, key=lambda k: -pred.scores[k])
            if label:
                pred.ranking = [label] + [k for k in ranked if k != label]
        return pred

    if output == "text":
        return _final_line(text, ls, pred, fill)
    if output == "label":
        ranked = _ranked(text, ls)
        if ranked:
            exact = len(ranked) == 1 and ls.normalize(text) is not None
            pred = fill(ranked[0], {}, "ok" if exact else "repaired")
            pred.ranking = ranked
            return pred
        pred.rationale = text
        return pred
    try:
        got = _from_obj(json.loads(text), ls)
        if got is not None:
            # a staged answer without its stages answered, but did not reason as asked
            return fill(got[0], got[1], "repaired" if _stages_missing(output, got[1]) else "ok")
    except json.JSONDecodeError:
        pass
    for blob in [m.group(1) for m in _FENCE.finditer(text)] + json_objects(text):
        try:
            got = _from_obj(json.loads(blob), ls)
        except json.JSONDecodeError:
            continue
        if got is not None:
            return fill(got[0], got[1], "repaired")
    if output in ("staged", "json"):  # the contract asked for JSON; prose is not an answer
        pred.rationale = text
        return pred
    finals = list(_FINAL.finditer(text))
    for m in reversed(finals):  # the last "final answer" wins over earlier drafts
        named = _mentions(m.group(1), ls)
        if named:
            return fill(named[0], {"rationale": text}, "repaired")
    ranked = _ranked(text, ls)
    if ranked:
        pred = fill(
            ranked[0],
            {},
            "repaired" if len(ranked) > 1 or ls.normalize(text) != text.strip() else "ok",
        )
        pred.ranking = ranked
        return pred
    named = _mentions(text, ls)
    if len(named) == 1:
        return fill(named[0], {"rationale": text}, "repaired")
    pred.rationale = text
    return pred


def predict(
    response: Response,
    labels: LabelSet | list[str] | str,
    sample_id: str,
    system: str,
    variant: str,
    gold: str | None = None,
    output: str | None = None,
) -> Prediction:
    """A backend's Response → the Prediction a run records: a failed request is an invalid
    prediction carrying its error; otherwise the parsed answer, with the server's separate
    reasoning as the rationale when the answer gave none."""
    if response.error:
        return Prediction(
            sample_id=sample_id, system=system, variant=variant, gold=gold, error=response.error
        )
    p = parse_answer(
        response.text, labels, sample_id=sample_id, output=output, system=system, variant=variant
    )
    p.gold = gold
    if response.reasoning and not p.rationale:
        p.rationale = response.reasoning
    return p
