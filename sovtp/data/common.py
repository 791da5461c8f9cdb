"""What every release adapter shares: label words, safe media lookup, and the emit step that
turns parsed rows into samples (missing clips as per-sample errors; none found refused)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sovtp.data.ledger import check_media
from sovtp.data.sample import ManifestError, Sample, refused_path, safe_path

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv")


def norm_word(w: str) -> str:
    """A label word as compared: lower case, letters and digits only (``With A-H`` → ``withah``)."""
    return re.sub(r"[^0-9a-z]+", "", str(w).lower())


def vocabulary(words: dict[str, list[str]]) -> dict[str, str]:
    """``{label: [the release's spellings]}`` → ``{normalised spelling: label}``."""
    return {norm_word(s): lab for lab, spellings in words.items() for s in (lab, *spellings)}


def _find_media(root: Path, candidates: list[str]) -> Path | ManifestError | None:
    """The first candidate (relative to root) that exists: a video file or a frame folder; the
    refusal itself when a candidate leaves the root (see :func:`_sample`)."""
    for c in candidates:
        try:
            p = safe_path(root, c)
        except ManifestError as e:
            return e
        if p.exists():
            return p
    return None


def _inside(root: Path, path: Path) -> Path | ManifestError:
    """A path found by globbing under root, checked (a symlink may point out).  It already
    starts with ``root``: taken as it stands (from the working folder), not joined to root
    again, which doubled a relative root (``CASME_sq/CASME_sq/rawvideo/...``)."""
    try:
        return safe_path(root, path.absolute())
    except ManifestError as e:
        return e


def _sample(root: Path, sid: str, media: Path | ManifestError, label: str | None, **kw) -> Sample:
    """A Sample — or, for a refused path, one that carries the refusal as its error."""
    if isinstance(media, ManifestError):
        return Sample(sid, refused_path(root, sid), label, error=str(media), **kw)
    return Sample(sid, media, label, **kw)


def _need(root: Path, rel: str) -> Path:
    p = root / rel
    if not p.exists():
        raise ManifestError(f"{root}: expected {rel} (see the adapter's documented layout)")
    return p


def _first(root: Path, rels: list[str]) -> Path:
    """The first of several spellings a release has used for one file or folder."""
    for rel in rels:
        if (root / rel).exists():
            return root / rel
    raise ManifestError(
        f"{root}: expected {' or '.join(rels)} (see the adapter's documented layout)"
    )


Pending = tuple[str, list[str], "str | None", dict[str, Any]]
"""(sample ID, media candidates relative to the root, label, other Sample fields)"""


def emit(root: Path, where: str, pending: list[Pending]) -> Iterator[Sample]:
    """Samples for ``(id, media candidates, label, Sample fields)``: a missing clip becomes a
    sample with ``error`` set; none found at all is refused (:func:`~.ledger.check_media`)."""
    out, missing = [], []
    for sid, cands, label, kw in pending:
        media = _find_media(root, cands)
        if media is None:
            missing.append(cands[0])
            s = Sample(
                sid, root.resolve() / cands[0], label, error=f"media not found: {cands[0]}", **kw
            )
        else:
            s = _sample(root, sid, media, label, **kw)
        out.append(s)
    check_media(where, len(pending), missing, root)
    yield from out
