"""What left the machine, recorded in one place: ``<folder>/outgoing/``.

Why: a privacy claim is only as good as the check of the bytes that were actually sent.  The
prepare pipeline's guard is the one door every request passes; when ``PrepareOptions.outgoing``
is set, each request that passes it has its image and audio payloads written here exactly as they
sit in the request (decoded from the data URLs / base64 of the messages, not re-encoded), and one
line per request goes into ``index.jsonl`` — including the requests the guard refused, with the
reason.  ``sovtp audit RUN`` then searches exactly these files.

Layout::

    outgoing/images/<sha256>.jpg|png   the image bytes sent (content-addressed: written once)
    outgoing/audio/<sha256>.wav        the audio bytes sent
    outgoing/index.jsonl               one JSON line per request (:meth:`OutgoingRecorder.record`)

Several worker processes may write the same folder: a payload is written to a unique temporary
name and moved into place with :func:`os.replace` (atomic; two writers of one hash write the same
bytes), and each index line is one ``os.write`` on an ``O_APPEND`` descriptor.  The folder stays
on this machine: it holds the raw media's path so the audit can compare raw with sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sovtp.jsonl import iter_jsonl
from sovtp.records import Query

INDEX = "index.jsonl"
_EXT = {"image/jpeg": ".jpg", "image/jpg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


def write_once(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it exists (content-addressed: same name, same bytes);
    atomic against other processes.  True when this call wrote it."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def append_line(path: Path, record: dict[str, Any]) -> None:
    """One JSON line, appended with a single write (lines from several processes never mix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def decode_data_url(url: str) -> tuple[str, bytes] | None:
    """``(mime, bytes)`` of a base64 ``data:`` URL, None for anything else (a web URL, a hash)."""
    if not url.startswith("data:") or ";base64," not in url:
        return None
    head, data = url[5:].split(";base64,", 1)
    return head.lower(), base64.b64decode(data)


def payloads(q: Query) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """The image parts (mime, bytes) and audio parts (format, bytes) of every message, in order."""
    images: list[tuple[str, bytes]] = []
    audio: list[tuple[str, bytes]] = []
    for m in q.messages:
        content = m.get("content")
        if not isinstance(content, list):
            continue
        for p in content:
            if p.get("type") == "image_url":
                got = decode_data_url(p["image_url"].get("url", ""))
                if got is not None:
                    images.append(got)
            elif p.get("type") == "input_audio":
                a = p["input_audio"]
                audio.append((a.get("format", "wav"), base64.b64decode(a.get("data", ""))))
    return images, audio


class OutgoingRecorder:
    """Writes a request's payloads and its index line under ``root`` (``<run>/outgoing``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        q: Query,
        *,
        sample_id: str = "",
        source: str | None = None,
        raw_audio: str | None = None,
        transcript: str | None = None,
        deid: bool = True,
        refused: str | None = None,
    ) -> dict[str, Any]:
        """Record one request: its payloads (unless ``refused``: then nothing left, only the
        reason is kept) and its index line, which is returned."""
        entry: dict[str, Any] = {
            "query_id": q.id,
            "sample_id": sample_id,
            "source": source,
            "raw_audio": raw_audio,
            "deid": deid,
            "guard": "refused" if refused else "passed",
            "reason": refused,
            "images": [],
            "audio": [],
            "transcript": transcript,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if not refused:
            images, audio = payloads(q)
            refs = {r.sha256: r for r in q.images}
            for mime, data in images:
                sha = hashlib.sha256(data).hexdigest()
                name = f"images/{sha}{_EXT.get(mime, '.bin')}"
                write_once(self.root / name, data)
                ref = refs.get(sha)
                entry["images"].append(
                    {
                        "sha256": sha,
                        "file": name,
                        "frame_index": None if ref is None else ref.frame_index,
                        "width": None if ref is None else ref.width,
                        "height": None if ref is None else ref.height,
                    }
                )
            for fmt, data in audio:
                sha = hashlib.sha256(data).hexdigest()
                name = f"audio/{sha}.{fmt}"
                write_once(self.root / name, data)
                entry["audio"].append({"sha256": sha, "file": name, "format": fmt})
        append_line(self.root / INDEX, entry)
        return entry


def read_index(root: str | Path) -> Iterator[dict[str, Any]]:
    """The index lines of an ``outgoing/`` folder, in order (a torn last line is skipped)."""
    return iter_jsonl(Path(root) / INDEX)
