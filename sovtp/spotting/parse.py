"""A vision LLM's "when" answer → intervals of the video's frames.

The spec ``prompts/spotting/when.yaml`` shows the model ``N`` frames of a stretch of video,
numbered 1..N in time order, and asks which of them hold a facial expression.  Its answer
contract (the template words it; :func:`when_schema` is the matching JSON schema)::

    {"intervals": [{"start": 3, "end": 5, "label": "negative"}, ...]}

``start``/``end`` are image numbers (1-based, inclusive); ``label`` is optional and, when given,
must be in the label set (else the interval is kept without a label and the answer counts as
repaired).  ``{"intervals": []}`` is a valid "nothing happens".  Parsing, in a fixed order of
trust:

1. the whole answer is such an object                                     → ``ok``
2. such an object in a code fence or in prose; or pairs written ``[3, 5]``  → ``repaired``
3. prose ranges "frames 3-5", "image 7" (no JSON at all)                  → ``repaired``
4. an explicit "none"/"no expression" with nothing else                   → ``repaired``, empty
5. otherwise                                                              → ``invalid``

Numbers outside 1..N are clipped, a reversed pair is swapped, and an interval wholly outside is
dropped (``repaired``).  :func:`to_frames` then maps image numbers to the video's frame indices
(an image stands for the stretch up to the next image, so an interval ends just before the frame
after its last image), and :func:`when_prediction` makes the scored
:class:`~sovtp.records.Prediction` (``intervals`` in frames).

Why its own parser: the general contracts (:mod:`sovtp.contracts`) carry one label per answer;
spotting needs a list of spans.  The spec's output is ``text`` so no label schema constrains the
decoder; a server that supports it can be sent :func:`when_schema` instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sovtp.labels import LabelSet, load_label_set
from sovtp.records import Prediction
from sovtp.scoring.parse import json_objects

Interval = tuple[int, int, str | None]

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)
_RANGE = re.compile(
    r"\b(?:frames?|images?)\s*#?\s*(\d+)(?:\s*(?:-|–|to|through|and)\s*#?\s*(\d+))?", re.I
)
_NONE = re.compile(
    r"^\W*(?:none|no\b[^.\n]*\b(?:expression|movement|interval|frames?)|nothing)\b", re.I
)


@dataclass
class WhenAnswer:
    """Intervals in image numbers (1-based, inclusive) and how they were read."""

    intervals: list[Interval] = field(default_factory=list)
    status: str = "invalid"  # ok | repaired | invalid
    note: str = ""


def when_schema(labels: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON schema of the answer (for constrained decoding)."""
    item: dict[str, Any] = {
        "type": "object",
        "properties": {
            "start": {"type": "integer", "minimum": 1},
            "end": {"type": "integer", "minimum": 1},
        },
        "required": ["start", "end"],
        "additionalProperties": False,
    }
    if labels:
        item["properties"]["label"] = {"type": "string", "enum": list(labels)}
        item["required"].append("label")
    return {
        "type": "object",
        "properties": {"intervals": {"type": "array", "items": item}},
        "required": ["intervals"],
        "additionalProperties": False,
    }


def _items(obj: Any) -> list[Any] | None:
    """The list of intervals inside a decoded answer, or None if it is not one."""
    if isinstance(obj, dict):
        for key in ("intervals", "expressions", "spans"):
            if isinstance(obj.get(key), list):
                return obj[key]
        return None
    if isinstance(obj, list):
        return obj
    return None


def _one(it: Any, ls: LabelSet | None) -> tuple[Interval, bool] | None:
    """One interval and whether it had to be repaired (a label outside the set)."""
    label: str | None = None
    if isinstance(it, dict):
        a = it.get("start", it.get("onset", it.get("from")))
        b = it.get("end", it.get("offset", it.get("to", a)))
        raw = it.get("label") or it.get("emotion")
    elif isinstance(it, (list, tuple)) and it:
        a, b = it[0], it[1] if len(it) > 1 else it[0]
        raw = it[2] if len(it) > 2 else None
    else:
        return None
    try:
        a, b = int(a), int(b)
    except (TypeError, ValueError):
        return None
    bad = False
    if raw is not None and ls is not None:
        label = ls.normalize(str(raw))
        bad = label is None
    elif raw is not None:
        label = str(raw).strip().lower() or None
    return (a, b, label), bad


def _from_json(text: str, ls: LabelSet | None) -> tuple[list[Interval], bool] | None:
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    items = _items(obj)
    if items is None:
        return None
    out, bad = [], False
    for it in items:
        one = _one(it, ls)
        if one is None:
            bad = True
            continue
        out.append(one[0])
        bad = bad or one[1]
    return out, bad


def _clip(ivs: list[Interval], n: int | None) -> tuple[list[Interval], bool]:
    """Swap reversed pairs, clip to 1..n, drop what lies wholly outside."""
    out, changed = [], False
    for a, b, lab in ivs:
        if a > b:
            a, b, changed = b, a, True
        if n is not None:
            if b < 1 or a > n:
                changed = True
                continue
            a2, b2 = max(1, a), min(n, b)
            changed = changed or (a2, b2) != (a, b)
            a, b = a2, b2
        out.append((a, b, lab))
    return out, changed


def parse_when(
    text: str, n_images: int | None = None, labels: LabelSet | str | list[str] | None = None
) -> WhenAnswer:
    """Read a "when" answer (see the module doc for the contract and the order of trust)."""
    ls = load_label_set(labels) if labels else None
    s = (text or "").strip()
    found: tuple[list[Interval], bool] | None = None
    status = "ok"
    got = _from_json(s, ls)
    if got is not None:
        found = got
    else:
        status = "repaired"
        for cand in [m.group(1).strip() for m in _FENCE.finditer(s)] + json_objects(s):
            got = _from_json(cand, ls)
            if got is not None:
                found = got
                break
        if found is None:
            pairs = re.findall(r"\[\s*(\d+)\s*,\s*(\d+)\s*\]", s)
            if pairs:
                found = ([(int(a), int(b), None) for a, b in pairs], False)
        if found is None:
            hits = _RANGE.findall(s)
            if hits:
                found = ([(int(a), int(b or a), None) for a, b in hits], False)
        if found is None:
            if _NONE.search(s):
                return WhenAnswer([], "repaired", "said none in prose")
            return WhenAnswer([], "invalid", "no intervals found in the answer")
    ivs, bad = found
    ivs, changed = _clip(ivs, n_images)
    if bad or changed:
        status = "repaired"
    note = "label outside the label set dropped" if bad else ("clipped to 1..N" if changed else "")
    return WhenAnswer(sorted(ivs), status, note)


def to_frames(ivs: Sequence[Interval], frame_indices: Sequence[int]) -> list[Interval]:
    """Image numbers → the video's frame indices (inclusive): image ``i`` starts at its own
    frame, and an interval ending on image ``j`` ends just before image ``j+1``'s frame (the
    last image ends on its own frame)."""
    fi = list(frame_indices)
    out = []
    for a, b, lab in ivs:
        start = fi[a - 1]
        end = fi[b] - 1 if b < len(fi) else fi[-1]
        out.append((start, max(start, end), lab))
    return out


def when_prediction(
    sample_id: str,
    text: str,
    frame_indices: Sequence[int],
    labels: LabelSet | str | list[str] | None = None,
    gold: Sequence[tuple[float, float, str | None]] | None = None,
    system: str = "",
    variant: str = "",
) -> Prediction:
    """The scored row of one "when" answer: intervals in the video's frames.  The frame
    indices are those of the images the query carried, in order (``Query.images[i].frame_index``)."""
    ans = parse_when(text, len(frame_indices), labels)
    return Prediction(
        sample_id=sample_id,
        system=system,
        variant=variant,
        intervals=[
            (float(a), float(b), lab) for a, b, lab in to_frames(ans.intervals, frame_indices)
        ],
        gold_intervals=None if gold is None else [tuple(g) for g in gold],  # type: ignore[misc]
        parse_status=ans.status,  # type: ignore[arg-type]
        rationale=ans.note,
    )
