"""JSON Lines read as a stream, tolerant of the torn last line a crashed writer leaves, and a run's
rows one per key (the latest written wins) — read by the engine, the reports and the recipes
alike, so it lives below all of them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a torn or corrupt line is skipped, never fatal; no file, no rows."""
    p = Path(path)
    if not p.exists():
        return
    with p.open(encoding="utf-8-sig") as f:  # a BOM would hide the first row
        for line in f:
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def latest(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """key → its last row (a row asked again supersedes the earlier one); rows without a key are
    dropped."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        k = r.get("key")
        if k is not None:
            out.pop(k, None)  # keep the order of the latest writes
            out[k] = r
    return out


def latest_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's JSONL file, one per key, the latest winning."""
    return list(latest(iter_jsonl(path)).values())
