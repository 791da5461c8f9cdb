"""Annotation cache: a clip is run through the detectors once per (media, sampling, detectors).

Entries are gzip-compressed JSON (the ``ClipAnnotation.to_dict`` form) under the user cache,
keyed by the sha256 of the media bytes, the sampling string and the detector config — so a
renamed file still hits, and a changed model or threshold never does.  Writes are atomic
(temp file + rename): a crash never leaves a half entry that a later run would trust.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from pathlib import Path

from sovtp.resources import cache_root
from sovtp.types import ClipAnnotation

log = logging.getLogger(__name__)
SCHEMA = 5  # bump when the stored form (frames or cues) changes (5: cue wording, issue 19)
# (a frame's "hands" needed none: written only by a hands-on detector, whose key is new)


def annotations_dir() -> Path:
    return cache_root() / "annotations"


def file_sha256(path: str | Path) -> str:
    """Content hash of a media file — or of a frame folder (names and bytes of its frames)."""
    from sovtp.media.files import check_regular

    h = hashlib.sha256()
    check_regular(path)  # a FIFO blocks and /dev/zero never ends: refused before the read
    if Path(path).is_dir():
        for f in sorted(Path(path).iterdir()):
            if f.is_file():
                h.update(f.name.encode() + b"\0" + bytes.fromhex(file_sha256(f)))
        return h.hexdigest()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(media_sha256: str, sampling: str, detector_key: dict) -> str:
    blob = json.dumps(
        {"schema": SCHEMA, "media": media_sha256, "sampling": sampling, "detector": detector_key},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class AnnotationCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else annotations_dir()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json.gz"

    def get(self, key: str) -> ClipAnnotation | None:
        p = self._path(key)
        if not p.exists():
            return None
        try:
            with gzip.open(p, "rt", encoding="utf-8") as f:
                clip = ClipAnnotation.from_dict(json.load(f))
        except (OSError, ValueError, KeyError, TypeError) as e:  # damaged: a miss, never a crash
            log.warning("ignoring unreadable annotation cache entry %s (%s)", p, e)
            return None
        clip.cached = True
        return clip

    def put(self, key: str, clip: ClipAnnotation) -> None:
        from sovtp.atomic import atomic_path

        with (
            atomic_path(self._path(key)) as tmp,
            gzip.open(tmp, "wt", encoding="utf-8", compresslevel=3) as f,
        ):
            json.dump(clip.to_dict(), f)
