"""JSON Lines read as a stream, tolerant of the torn last line a crashed writer leaves."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
