"""Predictions made elsewhere → rows ``sovtp score`` can read.

Accepts CSV or JSONL.  Columns are found by name: the sample (``name``, ``sample_id``, ``id``,
``video``), the gold label (``gt``, ``gold``, ``label``) and the prediction (``pred``,
``prediction``, ``gpt4v``, ``answer``, ``output`` — or any other single remaining column).  A
prediction may be a ranked list ("Happy,Surprise,Neutral"): its first item is top-1 and the
rest is kept as the ranking.  Gold may come from a separate file (a benchmark's label list):
then every gold sample is scored, and a sample with no prediction counts as invalid — a refusal
is a wrong answer, not a smaller test set.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sovtp.jsonl import iter_jsonl
from sovtp.labels import LabelSet

ID_COLS = ("sample_id", "name", "id", "video", "clip", "file")
GOLD_COLS = ("gold", "gt", "label", "emotion", "target")
PRED_COLS = ("pred", "prediction", "predicted", "answer", "output", "gpt4v", "top1", "label_pred")


def read_table(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a CSV or JSONL file, streamed."""
    p = Path(path)
    if p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        yield from iter_jsonl(p)  # a torn last line of a crashed run is skipped
    else:
        with p.open(newline="") as f:
            yield from csv.DictReader(f)


def _col(
    row: dict[str, Any], names: tuple[str, ...], exclude: set[str] = frozenset()
) -> str | None:
    keys = {k.lower().strip(): k for k in row if k is not None}
    for n in names:
        if n in keys and keys[n] not in exclude:
            return keys[n]
    return None


def split_ranked(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [x.strip() for x in str(value).split(",") if x.strip()]


def sample_key(name: str) -> str:
    """How released files name one sample differently ('1/ab12.JPG' in the label list, 'ab12.jpg'
    or 'ab12' in the predictions): the file stem of the last path component, lower-cased."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if dot and ext.lower() in _MEDIA_EXTS:
        base = stem
    return base.lower()


_MEDIA_EXTS = {"jpg", "jpeg", "png", "bmp", "mp4", "avi", "mov", "mkv", "webm", "wav", "npy"}


def gold_vocabulary(rows: list[dict[str, Any]], gold_col: str) -> list[str]:
    return sorted(
        {str(r[gold_col]).strip().lower() for r in rows if str(r.get(gold_col) or "").strip()}
    )


def external_rows(
    predictions: str | Path,
    labels: LabelSet | None = None,
    gold_file: str | Path | None = None,
    system: str = "",
    variant: str = "",
    unanswered: str = "invalid",
) -> tuple[list[dict[str, Any]], LabelSet]:
    """Prediction rows (sample_id, gold, label, ranking, parse_status) and the label set used.

    Without ``labels`` the set is the gold vocabulary (lower-cased), so spellings that differ
    only in case agree, and synonyms/inflections ("happiness" for "happy") map through the
    emotion concepts of :mod:`sovtp.labels`.  ``unanswered="drop"`` leaves out gold samples that
    have no prediction row at all (to compare with a table that scored only answered samples);
    an answer outside the label set is invalid either way.
    """
    pred_rows = list(read_table(predictions))
    if not pred_rows:
        raise ValueError(f"{predictions}: no rows")
    id_c = _col(pred_rows[0], ID_COLS)
    if id_c is None:
        raise ValueError(f"{predictions}: no sample column (one of {ID_COLS})")
    gold_rows = list(read_table(gold_file)) if gold_file else pred_rows
    gid_c = _col(gold_rows[0], ID_COLS)
    g_c = _col(gold_rows[0], GOLD_COLS)
    if g_c is None or gid_c is None:
        raise ValueError(f"{gold_file or predictions}: no gold column (one of {GOLD_COLS})")
    p_c = _col(pred_rows[0], PRED_COLS, exclude={g_c} if not gold_file else set())
    if p_c is None:
        rest = [k for k in pred_rows[0] if k not in (id_c, g_c)]
        if len(rest) != 1:
            raise ValueError(f"{predictions}: cannot tell the prediction column among {rest}")
        p_c = rest[0]
    ls = labels or LabelSet("gold", gold_vocabulary(gold_rows, g_c))
    by_id = {str(r[id_c]).strip(): r for r in pred_rows}
    by_key = {sample_key(k): r for k, r in by_id.items()}
    out = []
    for gr in gold_rows:
        sid = str(gr[gid_c]).strip()
        gold_raw = str(gr.get(g_c) or "").strip()
        if not gold_raw:
            continue
        gold = ls.normalize(gold_raw)
        if gold is None:
            raise ValueError(
                f"gold label {gold_raw!r} of {sid} is not in the label set {ls.labels}"
            )
        pr = by_id.get(sid) or by_key.get(sample_key(sid))
        if pr is None and unanswered == "drop":
            continue
        ranked_raw = split_ranked(pr.get(p_c)) if pr else []
        ranking = [lab for lab in (ls.normalize(x) for x in ranked_raw) if lab]
        top = ls.normalize(ranked_raw[0]) if ranked_raw else None
        out.append(
            {
                "sample_id": sid,
                "system": system,
                "variant": variant,
                "gold": gold,
                "label": top,
                "ranking": ranking,
                "parse_status": "ok" if top else "invalid",
                "error": None if pr else "no prediction",
            }
        )
    return out, ls
