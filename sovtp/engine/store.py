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
      run.json, .lock    its kind and identity, its writer's lock (sovtp.engine.folder)

A key's rows are replaced, never stacked: when ``--resume`` asks an error row again, the old row
is dropped from the files first (an atomic rewrite), so every reader — the report, ``sovtp
score``, a pandas one-liner — sees one row per key.  Readers that may meet a folder written by an
older sovtp use :func:`sovtp.jsonl.latest_rows`, where the last row of a key wins.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from sovtp.backends.base import is_transient
from sovtp.engine.folder import RunFolder, RunLocked, atomic_write
from sovtp.errors import SovtpError
from sovtp.jsonl import iter_jsonl, latest

__all__ = ["RETRY_ERRORS", "RunLocked", "RunStore", "repair_jsonl", "row_is_transient"]

RETRY_ERRORS = ("transient", "all")


def row_is_transient(row: dict[str, Any]) -> bool:
    """Whether an error row may be answered if asked again: its own ``transient`` field, or (a
    row written before the field existed) what its error text says."""
    flag = row.get("transient")
    return bool(flag) if flag is not None else is_transient(row.get("error"))


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


class RunStore(RunFolder):
    """A run folder of rows: ``responses.jsonl``, ``predictions.jsonl`` and ``gallery.jsonl``,
    one row per key, appended and flushed as answers arrive (bench, ablate and spot)."""

    def __init__(self, root: str | Path, kind: str = "bench"):
        super().__init__(root, kind)
        self.responses = self.root / "responses.jsonl"
        self.predictions = self.root / "predictions.jsonl"
        self.gallery = self.root / "gallery.jsonl"
        self._lock = threading.Lock()
        self._files: dict[Path, Any] = {}
        self.retried = 0  # error rows dropped by ``open`` to be asked again

    def has_results(self) -> bool:
        return self.has_rows()

    def legacy_identity(self) -> dict[str, Any] | None:
        """Runs from before ``run.json`` kept their identity in ``manifest.json``."""
        p = self.root / "manifest.json"
        try:
            return json.loads(p.read_text()).get("identity") if p.exists() else None
        except (OSError, ValueError):
            return None

    def has_rows(self) -> bool:
        return self.predictions.exists() and self.predictions.stat().st_size > 0

    def open(
        self,
        resume: bool,
        retry_errors: str = "transient",
        identity: dict[str, Any] | None = None,
    ) -> set[str]:
        """Claim the folder (:meth:`RunFolder.claim`: lock, kind, the resume rule over
        ``identity``) and prepare it; returns the keys already done (empty unless resuming).

        On resume, error rows are asked again — the transient ones (timeouts, 5xx, 429, lost
        connections, malformed answers), or every one with ``retry_errors="all"`` — so they are
        not done, and their rows leave the files now (see the module doc)."""
        if retry_errors not in RETRY_ERRORS:
            raise SovtpError(f"retry_errors must be one of {RETRY_ERRORS}, not {retry_errors!r}")
        self.claim(identity, resume)
        (self.root / "gallery").mkdir(exist_ok=True)
        if not resume:
            return set()
        for p in (self.responses, self.predictions, self.gallery):
            repair_jsonl(p)
        rows = latest(iter_jsonl(self.predictions))
        again = {
            k
            for k, r in rows.items()
            if r.get("error") and (retry_errors == "all" or row_is_transient(r))
        }
        self.retried = len(again)
        for p in (self.gallery, self.responses, self.predictions):  # predictions last: it is
            self._compact(p, again)  # what a resume reads
        return set(rows) - again

    @staticmethod
    def _compact(path: Path, drop: set[str]) -> None:
        """Rewrite a JSONL file with one row per key (the latest) and without ``drop``'s keys;
        atomic, and only when there is something to remove."""
        rows = list(iter_jsonl(path))
        keep = latest(rows)
        for k in drop:
            keep.pop(k, None)
        if len(keep) == len(rows):
            return
        atomic_write(path, "".join(json.dumps(r, default=str) + "\n" for r in keep.values()))

    def counts(self) -> dict[str, int]:
        """The folder's rows, one per key: how many, how many errors, how many of those are
        transient, how many answers could not be parsed."""
        from sovtp.engine.outcome import is_invalid

        rows = latest(iter_jsonl(self.predictions)).values()
        errors = [r for r in rows if r.get("error")]
        return {
            "rows": len(rows),
            "errors": len(errors),
            "transient_errors": sum(map(row_is_transient, errors)),
            "invalid": sum(map(is_invalid, rows)),
        }

    def gallery_samples(self) -> set[str]:
        return {r["sample_id"] for r in iter_jsonl(self.gallery) if "sample_id" in r}

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

    def close(self) -> None:
        """Close the files and let the folder go."""
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()
        super().close()
