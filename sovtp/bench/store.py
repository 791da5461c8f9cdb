"""The run folder: append-only JSONL rows flushed one by one, so a crash loses at most the
requests in flight, and ``--resume`` picks up from the rows already written.

    RUN/
      config.yaml        the resolved configuration (no secrets)
      manifest.json      versions, prompt hashes, detector config, seeds, frames per sample
      responses.jsonl    one row per (sample, face, system, variant): the backend's answer
      predictions.jsonl  one row per same key: the parsed prediction + gold + sample facts
      gallery.jsonl      the first samples' prompt, answer and image file, for the report
      gallery/           their annotated images
      report.json|md|html
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from sovtp.errors import SovtpError
from sovtp.jsonl import iter_jsonl


def repair_jsonl(path: Path) -> int:
    """Cut a torn last line (a crash mid-write) so that appends start on a fresh line; returns the
    number of bytes dropped."""
    if not path.exists():
        return 0
    with path.open("rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return 0
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return 0
        # walk back to the last newline
        pos = size
        chunk = 1 << 16
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            buf = f.read(pos - start)
            k = buf.rfind(b"\n")
            if k >= 0:
                f.truncate(start + k + 1)
                return size - (start + k + 1)
            pos = start
        f.truncate(0)
        return size


class RunStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.responses = self.root / "responses.jsonl"
        self.predictions = self.root / "predictions.jsonl"
        self.gallery = self.root / "gallery.jsonl"
        self._lock = threading.Lock()
        self._files: dict[Path, Any] = {}

    def open(self, resume: bool) -> set[str]:
        """Prepare the folder; returns the keys already done (empty unless resuming)."""
        if self.predictions.exists() and self.predictions.stat().st_size and not resume:
            raise SovtpError(
                f"{self.root} already holds a run: add --resume to continue it, or choose "
                "another --out"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "gallery").mkdir(exist_ok=True)
        done: set[str] = set()
        if resume:
            for p in (self.responses, self.predictions, self.gallery):
                repair_jsonl(p)
            done = {r["key"] for r in iter_jsonl(self.predictions) if "key" in r}
        return done

    def _file(self, path: Path):
        f = self._files.get(path)
        if f is None:
            f = self._files[path] = path.open("a")
        return f

    def append(self, path: Path, row: dict[str, Any]) -> None:
        line = json.dumps(row, default=str) + "\n"
        with self._lock:
            f = self._file(path)
            f.write(line)
            f.flush()

    def write_row(self, response: dict[str, Any], prediction: dict[str, Any]) -> None:
        """The response first, then the prediction: a key counts as done only once both are
        written (resume reads the predictions)."""
        self.append(self.responses, response)
        self.append(self.predictions, prediction)

    def write_json(self, name: str, data: Any) -> None:
        p = self.root / name
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        tmp.replace(p)

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()
