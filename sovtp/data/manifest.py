"""The manifest: a CSV or JSONL file with one sample per row, read as a stream.

Columns (only ``media`` is required; ``id`` defaults to the media path):

=============== ==========================================================================
id              sample ID (unique within the manifest)
media           media path, relative to the root (the manifest's folder unless ``--root``);
                ``path``, ``video``, ``image`` and ``file`` are accepted as names too
label           gold label (spelled as the benchmark spells it; normalised by the label set)
split / fold    e.g. ``test`` / ``1``
subject         participant or speaker ID
transcript      what is said
audio           audio path (relative to the root)
face_labels     JSON object face ID → label, e.g. ``{"1": "happy", "2": "sad"}``
description     reference rationale for reasoning scores
start_frame, end_frame, start_s, end_s   an interval of a longer video
=============== ==========================================================================

Any other column is kept in ``Sample.meta`` (and so can define a difficulty tier).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sovtp.data.sample import ManifestError, Sample, safe_path

MEDIA_COLS = ("media", "path", "video", "image", "file")
KNOWN = {
    "id", "sample_id", "label", "split", "fold", "subject", "transcript", "audio", "face_labels",
    "description", "start_frame", "end_frame", "start_s", "end_s", *MEDIA_COLS,
}  # fmt: skip


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open() as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield n, json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ManifestError(f"{path}:{n}: not JSON ({e})") from None
    else:
        with path.open(newline="") as f:
            for n, row in enumerate(csv.DictReader(f), 2):
                yield n, row


def _num(v: Any, kind=int) -> Any:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    return kind(v)


def sample_from_row(row: dict[str, Any], root: Path, where: str = "") -> Sample:
    media = next((row[c] for c in MEDIA_COLS if row.get(c)), None)
    if not media:
        raise ManifestError(f"{where}: no media column (one of {MEDIA_COLS})")
    fl = row.get("face_labels") or {}
    if isinstance(fl, str):
        try:
            fl = json.loads(fl) if fl.strip() else {}
        except json.JSONDecodeError:
            raise ManifestError(f"{where}: face_labels is not a JSON object") from None
    try:
        return Sample(
            id=str(row.get("id") or row.get("sample_id") or media),
            media=safe_path(root, media),
            label=(str(row["label"]).strip() or None) if row.get("label") is not None else None,
            split=row.get("split") or None,
            fold=_num(row.get("fold")),
            subject=str(row["subject"]) if row.get("subject") not in (None, "") else None,
            transcript=row.get("transcript") or None,
            audio=safe_path(root, row["audio"]) if row.get("audio") else None,
            face_labels={int(k): str(v) for k, v in fl.items()},
            start_frame=_num(row.get("start_frame")),
            end_frame=_num(row.get("end_frame")),
            start_s=_num(row.get("start_s"), float),
            end_s=_num(row.get("end_s"), float),
            description=row.get("description") or None,
            meta={k: v for k, v in row.items() if k not in KNOWN and v not in (None, "")},
        )
    except (TypeError, ValueError) as e:
        raise ManifestError(f"{where}: {e}") from None


def read_manifest(
    path: str | Path, root: str | Path | None = None, split: str | None = None
) -> Iterator[Sample]:
    """Samples of a manifest, one at a time (a benchmark is never held in memory whole)."""
    p = Path(path)
    if not p.exists():
        raise ManifestError(f"no such manifest: {p}")
    base = Path(root) if root else p.parent
    for n, row in _rows(p):
        s = sample_from_row(row, base, f"{p}:{n}")
        if split is None or s.split == split:
            yield s


def write_manifest(samples, path: str | Path, root: str | Path) -> int:
    """Write samples as a JSONL manifest with paths relative to ``root`` (what adapters export)."""
    base = Path(root).resolve()
    n = 0
    with Path(path).open("w") as f:
        for s in samples:
            d = {"id": s.id, "media": str(s.media.relative_to(base)), "label": s.label}
            for k in ("split", "fold", "subject", "transcript", "description",
                      "start_frame", "end_frame", "start_s", "end_s"):  # fmt: skip
                v = getattr(s, k)
                if v is not None:
                    d[k] = v
            if s.audio:
                d["audio"] = str(s.audio.relative_to(base))
            if s.face_labels:
                d["face_labels"] = {str(k): v for k, v in s.face_labels.items()}
            d.update(s.meta)
            f.write(json.dumps(d) + "\n")
            n += 1
    return n
