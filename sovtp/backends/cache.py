"""A response cache shared across runs (sqlite in the user cache dir).

Only deterministic requests are cached — temperature 0 (greedy) or a fixed seed — keyed by the
sha256 of everything that decides the answer: backend, model, server flavour, the messages with
images by sha256, labels, output form and generation settings.  A hit is marked ``cached`` in
its row.  sqlite in WAL mode lets two runs share the file.  An entry is JSON read through the
``Response`` model (nothing in it runs); one that does not validate is a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from pathlib import Path

from sovtp.backends.base import GenerationConfig
from sovtp.records import Query, Response
from sovtp.resources import cache_root

log = logging.getLogger(__name__)


def is_deterministic(cfg: GenerationConfig) -> bool:
    return cfg.temperature == 0 or cfg.seed is not None


def request_key(backend: str, model: str, flavour: str, q: Query, cfg: GenerationConfig) -> str:
    blob = json.dumps(
        {
            "backend": backend,
            "model": model,
            "flavour": flavour,
            "messages": q.redacted()["messages"],
            "labels": q.labels,
            "output": q.output,
            "facs": q.meta.get("facs"),  # the measured AUs a text-only query stands for
            "gen": cfg.__dict__,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else cache_root() / "responses.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT)")
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: str) -> Response | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM responses WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        try:  # JSON validated field by field: an entry is data, never code
            r = Response.model_validate_json(row[0])
        except ValueError as e:  # a damaged or foreign entry is a miss, asked again
            log.warning(
                "ignoring unreadable response cache entry %s in %s (%s)",
                key[:12],
                self.path,
                str(e).splitlines()[0] if str(e) else type(e).__name__,
            )
            return None
        self.hits += 1
        r.cached = True
        return r

    def put(self, key: str, r: Response) -> None:
        if r.error:  # failures are not answers; a later run retries them
            return
        body = r.model_dump_json(exclude={"raw", "cached"})
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, body))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()
