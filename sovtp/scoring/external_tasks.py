"""Binary score columns and spotted-interval files made elsewhere → rows the summary scores.

**Binary** (``binary_rows``): a CSV/JSONL with a sample column (``name``, ``id``, ``video`` ...),
a score for the positive class (``--score-column``, else ``score``, ``prob``, ``probability``,
``score_<positive>`` or a column named after the positive label) and optionally a predicted
label (``pred``, ``prediction`` ...; else the score thresholded at ``threshold``).  Gold comes
from the same file (``gold``, ``gt``, ``target``) or a separate list (``name,gt`` plus optional
``attack_type`` and ``split`` columns, which either file may carry).  With a gold list, every
gold sample is scored and one without a prediction has no score — ranked as wrong as possible,
never dropped.

**Intervals** (``interval_rows``): one interval per line — ``video,start,end[,label]`` (also
``onset``/``offset``, ``emotion``) — or JSONL ``{"video": ..., "intervals": [[s, e, label],
...]}``, for the spotted intervals and for the ground truth alike.  A gold line with an empty
start lists a video with no ground-truth interval.  A spotted video the gold file does not
list is refused (a misspelt name would silently count its intervals as false positives), as
is a gold label outside the label set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sovtp.labels import LabelSet
from sovtp.scoring.external import ScoringInputError, check_unique_ids, read_table_lines, sample_key

_ID = ("sample_id", "name", "id", "video", "clip", "file", "subject_video")
_GOLD = ("gold", "gt", "target", "truth")
_PRED = ("pred", "prediction", "predicted", "label_pred", "answer", "decision")
_SCORE = ("score", "prob", "probability", "p", "confidence_positive")
_START = ("start", "onset", "start_frame", "start_s", "begin")
_END = ("end", "offset", "end_frame", "end_s", "stop")
_LAB = ("label", "emotion", "class", "pred", "prediction")


def _find(row: dict[str, Any], names: Sequence[str]) -> str | None:
    keys = {str(k).lower().strip(): k for k in row if k is not None}
    for n in names:
        if n in keys:
            return keys[n]
    return None


def _need(row: dict[str, Any], names: Sequence[str], what: str, where: Path) -> str:
    c = _find(row, names)
    if c is None:
        raise ScoringInputError(f"{where}: no {what} column (one of {', '.join(names)})")
    return c


def _num(v: Any) -> float:
    if v is None or (isinstance(v, str) and not v.strip()):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _norm_label(v: Any, ls: LabelSet | None) -> str | None:
    if v is None or not str(v).strip():
        return None
    text = str(v).strip()
    if ls is None:
        return text.lower()
    return ls.normalize(text)


def binary_rows(
    predictions: str | Path,
    gold_file: str | Path | None = None,
    *,
    labels: LabelSet | None = None,
    positive: str | None = None,
    score_column: str | None = None,
    threshold: float = 0.5,
    system: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows for ``summarise(..., task="binary")`` and the label list (positive first unless a
    label set is given).  Each row: ``sample_id``, ``gold``, ``label``, ``scores`` ({positive:
    score}), ``attack_type``, ``split``, ``parse_status``."""
    pred_p = Path(predictions)
    pred_lines = list(read_table_lines(pred_p))
    preds = [r for _, r in pred_lines]
    if not preds:
        raise ScoringInputError(f"{pred_p}: no rows")
    id_c = _need(preds[0], _ID, "sample", pred_p)
    check_unique_ids(pred_lines, id_c, pred_p)  # an ID twice would overwrite silently
    gold_lines = list(read_table_lines(gold_file)) if gold_file else pred_lines
    gold_rows = [r for _, r in gold_lines]
    gold_p = Path(gold_file) if gold_file else pred_p
    if not gold_rows:
        raise ScoringInputError(f"{gold_p}: no rows")
    gid_c = _need(gold_rows[0], _ID, "sample", gold_p)
    if gold_file:
        check_unique_ids(gold_lines, gid_c, gold_p)
    g_c = _need(gold_rows[0], _GOLD if not gold_file else (*_GOLD, "label"), "gold", gold_p)
    gold = {}
    for r in gold_rows:
        lab = _norm_label(r.get(g_c), labels)
        if lab is None:
            raise ScoringInputError(f"{gold_p}: gold {r.get(g_c)!r} of {r.get(gid_c)!r} unknown")
        gold[sample_key(str(r[gid_c]))] = (str(r[gid_c]), lab, r)
    labs = list(labels.labels) if labels else sorted({g for _, g, _ in gold.values()})
    if positive is None:
        positive = labs[0]
    if positive not in labs:
        raise ScoringInputError(f"positive class {positive!r} is not among {labs}")
    if labels is None:
        labs = [positive] + [x for x in labs if x != positive]
    negative = next((x for x in labs if x != positive), None) if len(labs) == 2 else None
    sc_c = score_column or _find(preds[0], (*_SCORE, f"score_{positive}", positive))
    if sc_c is None or sc_c not in preds[0]:
        raise ScoringInputError(
            f"{pred_p}: no score column for {positive!r} (pass score_column; looked for "
            f"{', '.join((*_SCORE, f'score_{positive}', positive))})"
        )
    p_c = _find(preds[0], _PRED)
    by_key = {sample_key(str(r[id_c])): r for r in preds}
    rows = []
    for k, (sid, g, grow) in gold.items():
        r = by_key.get(k)
        s = _num(r.get(sc_c)) if r is not None else math.nan
        if r is not None and p_c:
            lab = _norm_label(r.get(p_c), labels)
        elif math.isfinite(s):
            lab = positive if s >= threshold else negative
        else:
            lab = None
        extra = {**(r or {}), **grow}
        rows.append(
            {
                "sample_id": sid,
                "system": system or pred_p.stem,
                "variant": "",
                "gold": g,
                "label": lab if lab in labs else None,
                "scores": {positive: s} if math.isfinite(s) else {},
                "attack_type": _val(extra, "attack_type", "attack", "pai", "species"),
                "split": _val(extra, "split", "subset"),
                "parse_status": "ok" if r is not None and math.isfinite(s) else "invalid",
                "error": None if r is not None else "no prediction",
            }
        )
    return rows, labs


def _val(row: dict[str, Any], *names: str) -> str | None:
    c = _find(row, names)
    v = row.get(c) if c else None
    return str(v).strip() if v is not None and str(v).strip() else None


def _read_intervals(
    path: Path, ls: LabelSet | None, gold: bool
) -> dict[str, tuple[str, list[tuple[float, float, str | None]]]]:
    """video key → (video name, intervals) from a CSV (one per line) or JSONL (one per video)."""
    out: dict[str, tuple[str, list[tuple[float, float, str | None]]]] = {}
    bad: list[str] = []
    for n, r in read_table_lines(path):
        vid_c = _need(r, _ID, "video", path)
        name = str(r[vid_c]).strip()
        key = sample_key(name)
        spans = out.setdefault(key, (name, []))[1]
        if "intervals" in r:
            items = r.get("intervals") or []
        else:
            s_c, e_c = _need(r, _START, "start", path), _need(r, _END, "end", path)
            lab_c = _find(r, _LAB)
            if not str(r.get(s_c) or "").strip():
                continue  # a video listed with no interval
            items = [[r[s_c], r[e_c], r.get(lab_c) if lab_c else None]]
        for it in items:
            s, e = _num(it[0]), _num(it[1])
            raw = it[2] if len(it) > 2 else None
            lab = _norm_label(raw, ls)
            if not (math.isfinite(s) and math.isfinite(e)) or e < s:
                raise ScoringInputError(f"{path}:{n}: interval {it!r} is not start <= end")
            if gold and raw not in (None, "") and lab is None:
                bad.append(f"{raw!r} (line {n})")
            spans.append((s, e, lab))
    if bad:
        raise ScoringInputError(f"{path}: gold labels outside the label set: {', '.join(bad)}")
    return out


def interval_rows(
    predictions: str | Path,
    gold_file: str | Path,
    *,
    labels: LabelSet | None = None,
    system: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows for ``summarise(..., task="intervals")`` (one per gold video: ``intervals``,
    ``gold_intervals``) and the label list (the label set's, else the gold vocabulary)."""
    pred_p, gold_p = Path(predictions), Path(gold_file)
    gold = _read_intervals(gold_p, labels, gold=True)
    pred = _read_intervals(pred_p, labels, gold=False)
    unknown = sorted(pred[k][0] for k in pred if k not in gold)
    if unknown:
        more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
        raise ScoringInputError(
            f"{pred_p}: videos not in the gold file {gold_p.name}: {', '.join(unknown[:8])}{more}"
        )
    labs = (
        list(labels.labels)
        if labels
        else sorted({lab for _, sp in gold.values() for *_, lab in sp if lab})
    )
    rows = []
    for k, (name, spans) in gold.items():
        got = pred.get(k)
        rows.append(
            {
                "sample_id": name,
                "system": system or pred_p.stem,
                "variant": "",
                "intervals": [list(x) for x in (got[1] if got else [])],
                "gold_intervals": [list(x) for x in spans],
                "parse_status": "ok",
                "error": None,
            }
        )
    return rows, labs


def task_rows(
    task: str,
    predictions: str | Path,
    gold_file: str | Path | None = None,
    *,
    labels: LabelSet | None = None,
    positive: str | None = None,
    score_column: str | None = None,
    system: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """``sovtp score``'s reader for a declared task other than single_label."""
    if task == "binary":
        return binary_rows(
            predictions,
            gold_file,
            labels=labels,
            positive=positive,
            score_column=score_column,
            system=system,
        )
    if task == "intervals":
        if gold_file is None:
            raise ScoringInputError("interval scoring needs --gold (the ground-truth intervals)")
        return interval_rows(predictions, gold_file, labels=labels, system=system)
    raise ScoringInputError(f"no external reader for task {task!r} here (see scoring.external)")
