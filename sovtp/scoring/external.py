"""Predictions made elsewhere → rows ``sovtp score`` can read.

Accepts CSV or JSONL.  Columns are found by name: the sample (``name``, ``sample_id``, ``id``,
``video``), the gold label (``gt``, ``gold``, ``label``) and the prediction (``pred``,
``prediction``, ``gpt4v``, ``answer``, ``output`` — or any other single remaining column).  A
prediction may be a ranked list ("Happy,Surprise,Neutral"): its first item is top-1 and the
rest is kept as the ranking.  Gold may come from a separate file (a benchmark's label list):
then every gold sample is scored, and a sample with no prediction counts as invalid — a refusal
is a wrong answer, not a smaller test set.

What would silently change a score is refused instead, in one message that lists every case with
its line: a sample ID given twice (which row counts?), and gold labels outside the label set
(dropping them would shrink the test set).  A UTF-8 byte-order mark, which spreadsheet programs
write, is read as such, not as part of the first column's name.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sovtp.errors import SovtpError
from sovtp.labels import LabelSet

ID_COLS = ("sample_id", "name", "id", "video", "clip", "file")
GOLD_COLS = ("gold", "gt", "label", "emotion", "target")
PRED_COLS = ("pred", "prediction", "predicted", "answer", "output", "gpt4v", "top1", "label_pred")


class ScoringInputError(SovtpError, ValueError):
    """A predictions or gold file that cannot be scored as it is (the CLI prints one line)."""


def text_encoding(path: str | Path) -> str:
    """The encoding a byte-order mark names — UTF-32 or UTF-16 (Excel's "Unicode text"), else
    ``utf-8-sig`` (a UTF-8 BOM, as spreadsheet exports write, or none): a BOM is never read as
    part of the first header."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        return "utf-32"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    return "utf-8-sig"


def read_table_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a CSV, JSONL or JSON-array file, streamed (a JSON array is read
    whole).  A torn *last* JSONL line (a crashed writer) is skipped; a corrupt line before it is
    an error, not a row quietly lost.  A CSV line with more or fewer fields than its header is
    refused by number (``csv`` would file the extras under ``None`` or fill ``None`` in)."""
    p = Path(path)
    try:
        yield from _table_lines(p, text_encoding(p))
    except UnicodeError as e:
        raise ScoringInputError(f"{p}: not UTF-8 or UTF-16 text ({e.reason})") from None


def _table_lines(p: Path, encoding: str) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        with p.open(encoding=encoding) as f:
            if suffix == ".json":
                head = f.read(4096).lstrip()
                f.seek(0)
                if head.startswith("["):
                    for n, row in enumerate(json.load(f), 1):
                        yield n, row
                    return
            bad: int | None = None
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if bad is not None:
                    raise ScoringInputError(f"{p}:{bad}: not JSON")
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError:
                    bad = n
    else:
        with p.open(newline="", encoding=encoding) as f:
            reader = csv.DictReader(f)
            for row in reader:
                n = reader.line_num  # the line the row ended on (quoted newlines included)
                width = len(reader.fieldnames or [])
                if None in row:  # more fields than the header names
                    got = width + len(row[None])  # type: ignore[index]
                    raise ScoringInputError(f"{p}:{n}: {got} fields, the header has {width}")
                if any(v is None for v in row.values()):  # fewer
                    got = sum(v is not None for v in row.values())
                    raise ScoringInputError(f"{p}:{n}: {got} fields, the header has {width}")
                yield n, row


def read_table(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a CSV or JSONL file, streamed."""
    for _, row in read_table_lines(path):
        yield row


def _listing(cases: dict[str, list[int]], limit: int = 8) -> str:
    """``'a' (lines 2, 9); 'b' (lines 3, 4)`` — at most ``limit`` cases, then a count."""
    items = [f"{k!r} (lines {', '.join(map(str, v))})" for k, v in list(cases.items())[:limit]]
    more = len(cases) - limit
    return "; ".join(items) + (f"; and {more} more" if more > 0 else "")


def check_unique_ids(
    rows: list[tuple[int, dict[str, Any]]], id_col: str, where: str | Path
) -> dict[str, dict[str, Any]]:
    """Rows by their (stripped) ID; an ID on two lines is refused with every such line."""
    by_id: dict[str, dict[str, Any]] = {}
    lines: dict[str, list[int]] = defaultdict(list)
    for n, r in rows:
        sid = str(r.get(id_col) or "").strip()
        lines[sid].append(n)
        by_id[sid] = r
    dups = {k: v for k, v in lines.items() if len(v) > 1}
    if dups:
        raise ScoringInputError(
            f"{where}: {len(dups)} sample ID(s) appear more than once — which row would count? "
            f"{_listing(dups)} (a run with several systems or variants: score it without --gold)"
        )
    return by_id


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
    pred_lines = list(read_table_lines(predictions))
    if not pred_lines:
        raise ScoringInputError(f"{predictions}: no rows")
    pred_rows = [r for _, r in pred_lines]
    id_c = _col(pred_rows[0], ID_COLS)
    if id_c is None:
        raise ScoringInputError(f"{predictions}: no sample column (one of {ID_COLS})")
    gold_lines = list(read_table_lines(gold_file)) if gold_file else pred_lines
    if not gold_lines:
        raise ScoringInputError(f"{gold_file}: no rows")
    gold_rows = [r for _, r in gold_lines]
    gid_c = _col(gold_rows[0], ID_COLS)
    g_c = _col(gold_rows[0], GOLD_COLS)
    if g_c is None or gid_c is None:
        raise ScoringInputError(f"{gold_file or predictions}: no gold column (one of {GOLD_COLS})")
    p_c = _col(pred_rows[0], PRED_COLS, exclude={g_c} if not gold_file else set())
    if p_c is None:
        rest = [k for k in pred_rows[0] if k not in (id_c, g_c)]
        if len(rest) != 1:
            raise ScoringInputError(
                f"{predictions}: cannot tell the prediction column among {rest}"
            )
        p_c = rest[0]
    ls = labels or LabelSet("gold", gold_vocabulary(gold_rows, g_c))
    by_id = check_unique_ids(pred_lines, id_c, predictions)
    if gold_file:
        check_unique_ids(gold_lines, gid_c, gold_file)
    by_key: dict[str, dict[str, Any] | None] = {}
    for k, r in by_id.items():  # a key two IDs share is ambiguous: exact IDs only
        by_key[sample_key(k)] = None if sample_key(k) in by_key else r
    unknown: dict[str, list[int]] = defaultdict(list)
    for n, gr in gold_lines:
        gold_raw = str(gr.get(g_c) or "").strip()
        if gold_raw and ls.normalize(gold_raw) is None:
            unknown[gold_raw].append(n)
    if unknown:
        raise ScoringInputError(
            f"{gold_file or predictions}: {sum(map(len, unknown.values()))} gold label(s) are "
            f"not in the label set {ls.labels}: {_listing(unknown)} — choose the label set "
            "(--labels / --evaluator, whose synonyms map spellings) or fix those rows"
        )
    out = []
    for gr in gold_rows:
        sid = str(gr[gid_c]).strip()
        gold_raw = str(gr.get(g_c) or "").strip()
        if not gold_raw:
            continue
        gold = ls.normalize(gold_raw)
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
