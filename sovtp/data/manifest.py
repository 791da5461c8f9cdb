"""The manifest: a CSV or JSONL file with one sample per row, read as a stream.

Columns (only ``media`` is required; ``id`` defaults to the media path):

=============== ==========================================================================
id              sample ID (unique within the manifest; default: the media path, plus
                ``@start_frame`` / ``@start_s`` for an interval)
media           media path, relative to the root (the manifest's folder unless ``--root``), or
                absolute inside it; ``path``, ``video``, ``image`` and ``file`` are accepted
                as names too
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

Reading refuses what would silently change a benchmark: a sample ID on two lines (every such
line is named), and a split/fold filter that matches no row (the message names the filter and
the columns the manifest has).  A media or audio path that leaves the root — absolute
elsewhere, climbing out with ``../``, or a symlink pointing out — is a per-sample error
(``Sample.error``, one line naming the path): that sample gets error rows, nothing outside the
root is read or sent anywhere, and the rest runs.  ``allow_outside_root=True`` (the CLI's
``--allow-outside-root``) takes such paths as given; each sample read that way is marked
``meta["outside_root"] = True``, so the choice shows in every result row.  CSV files may start
with a UTF-8 byte-order mark (spreadsheet exports do).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sovtp.data.sample import ManifestError, Sample, media_path

MEDIA_COLS = ("media", "path", "video", "image", "file")
KNOWN = {
    "id",
    "sample_id",
    "label",
    "split",
    "fold",
    "subject",
    "transcript",
    "audio",
    "face_labels",
    "description",
    "start_frame",
    "end_frame",
    "start_s",
    "end_s",
    *MEDIA_COLS,
}


def manifest_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """A CSV or JSONL manifest's rows with their line numbers (for messages), as read alike by
    :func:`load_manifest` and ``sovtp data check``; a line that is no JSON object is a
    :class:`ManifestError` naming it.  Column names are stripped."""
    # utf-8-sig: a byte-order mark would otherwise become part of the first column's name
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8-sig") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ManifestError(f"{path}:{n}: not JSON ({e})") from None
                    if not isinstance(row, dict):
                        raise ManifestError(f"{path}:{n}: not a JSON object")
                    yield n, row
    else:
        with path.open(newline="", encoding="utf-8-sig") as f:
            for n, row in enumerate(csv.DictReader(f), 2):
                yield n, {k.strip() if isinstance(k, str) else k: v for k, v in row.items()}


def _num(v: Any, kind=int) -> Any:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    return kind(v)


def _default_id(row: dict[str, Any], media: str) -> str:
    for k in ("start_frame", "start_s"):
        if row.get(k) not in (None, ""):
            return f"{media}@{row[k]}"
    return str(media)


def sample_from_row(
    row: dict[str, Any], root: Path, where: str = "", *, allow_outside_root: bool = False
) -> Sample:
    """One manifest row → a Sample.  A path that leaves ``root`` makes a Sample with ``error``
    set, unless ``allow_outside_root`` (then it is taken as given, and the sample is marked
    ``meta["outside_root"]``)."""
    media = next((row[c] for c in MEDIA_COLS if row.get(c)), None)
    if not media:
        raise ManifestError(f"{where}: no media column (one of {MEDIA_COLS})")
    fl = row.get("face_labels") or {}
    if isinstance(fl, str):
        try:
            fl = json.loads(fl) if fl.strip() else {}
        except json.JSONDecodeError:
            raise ManifestError(f"{where}: face_labels is not a JSON object") from None
    path, error = media_path(root, str(media).strip(), allow_outside_root=allow_outside_root)
    audio = None
    outside = allow_outside_root and not path.is_relative_to(root.resolve())
    if row.get("audio"):
        audio, a_err = media_path(
            root, str(row["audio"]).strip(), allow_outside_root=allow_outside_root
        )
        error = error or a_err
        outside = outside or (allow_outside_root and not audio.is_relative_to(root.resolve()))
    meta = {k: v for k, v in row.items() if k not in KNOWN and v not in (None, "")}
    if outside:
        meta["outside_root"] = True
    try:
        return Sample(
            id=str(row.get("id") or row.get("sample_id") or _default_id(row, media)).strip(),
            media=path,
            label=(str(row["label"]).strip() or None) if row.get("label") is not None else None,
            split=(str(row["split"]).strip() or None) if row.get("split") is not None else None,
            fold=_num(row.get("fold")),
            subject=str(row["subject"]) if row.get("subject") not in (None, "") else None,
            transcript=row.get("transcript") or None,
            audio=audio,
            face_labels={int(k): str(v) for k, v in fl.items()},
            start_frame=_num(row.get("start_frame")),
            end_frame=_num(row.get("end_frame")),
            start_s=_num(row.get("start_s"), float),
            end_s=_num(row.get("end_s"), float),
            description=row.get("description") or None,
            meta=meta,
            error=f"{where}: {error}" if error else None,
        )
    except (TypeError, ValueError) as e:
        raise ManifestError(f"{where}: {e}") from None


def _duplicates(rows: Iterable[tuple[int, dict[str, Any]]]) -> dict[str, list[int]]:
    """Sample IDs that occur on more than one line, with those lines (a tolerant pass: rows
    that would fail to read are left to the main pass)."""
    lines: dict[str, list[int]] = defaultdict(list)
    try:
        for n, row in rows:
            media = next((row[c] for c in MEDIA_COLS if row.get(c)), None)
            sid = row.get("id") or row.get("sample_id") or (media and _default_id(row, media))
            if sid:
                lines[str(sid).strip()].append(n)
    except ManifestError:
        pass
    return {k: v for k, v in lines.items() if len(v) > 1}


def _filter_text(split: str | None, fold: int | None) -> str:
    parts = [f"split={split!r}" if split is not None else "", f"fold={fold}" if fold else ""]
    return " and ".join(p for p in parts if p)


def read_manifest(
    path: str | Path,
    root: str | Path | None = None,
    split: str | None = None,
    fold: int | None = None,
    *,
    allow_outside_root: bool = False,
) -> Iterator[Sample]:
    """Samples of a manifest, one at a time (a benchmark is never held in memory whole).

    ``split`` / ``fold`` keep the rows whose column matches (case-insensitive split; ``"all"``
    or ``"*"`` keeps every row).  A duplicate ID raises :class:`ManifestError` when its second
    line is reached, naming every duplicated ID and its lines; a filter that keeps no row
    raises at the end, naming the filter, the values present and the manifest's columns.
    ``allow_outside_root``: see the module docstring (default: such paths are refused)."""
    p = Path(path)
    if not p.exists():
        raise ManifestError(f"no such manifest: {p}")
    base = Path(root) if root else p.parent
    if split is not None and str(split).strip().lower() in ("all", "*", ""):
        split = None
    want_split = str(split).strip().lower() if split is not None else None
    seen: dict[str, int] = {}
    columns: dict[str, None] = {}
    present: dict[str, set[str]] = {"split": set(), "fold": set()}
    n_rows = kept = 0
    for n, row in manifest_rows(p):
        columns.update(dict.fromkeys(row))
        n_rows += 1
        s = sample_from_row(row, base, f"{p}:{n}", allow_outside_root=allow_outside_root)
        if s.id in seen:
            dups = _duplicates(manifest_rows(p))
            raise ManifestError(
                f"{p}: sample IDs must be unique; {len(dups)} ID(s) repeat: "
                + "; ".join(
                    f"{k!r} on lines {', '.join(map(str, v))}" for k, v in list(dups.items())[:8]
                )
                + (f"; and {len(dups) - 8} more" if len(dups) > 8 else "")
                + " (give each row its own id)"
            )
        seen[s.id] = n
        present["split"].add(str(s.split))
        present["fold"].add(str(s.fold))
        if want_split is not None and (s.split or "").strip().lower() != want_split:
            continue
        if fold is not None and s.fold != int(fold):
            continue
        kept += 1
        yield s
    if n_rows == 0:
        raise ManifestError(f"{p}: the manifest has no rows")
    if kept == 0:
        what = _filter_text(split, fold)
        missing = [c for c, v in (("split", split), ("fold", fold)) if v is not None]
        missing = [c for c in missing if c not in columns]
        hint = (
            f"it has no {' or '.join(repr(c) for c in missing)} column"
            if missing
            else "values present: "
            + "; ".join(
                f"{c}: {', '.join(sorted(present[c]))}"
                for c, v in (("split", split), ("fold", fold))
                if v is not None
            )
        )
        raise ManifestError(
            f"{p}: no row matches {what} (a --split/--fold filter, or the evaluator's default); "
            f"{hint}; the manifest's columns are {', '.join(map(str, columns))}. Pass --split "
            "all to keep every row, or add the column."
        )


def manifest_columns(path: str | Path) -> list[str]:
    """The columns a manifest has (a CSV's header; the keys of any JSONL row), so that a caller
    can apply an evaluator's default split/fold only where the manifest can be filtered by it."""
    p = Path(path)
    if p.suffix.lower() not in (".jsonl", ".ndjson"):
        with p.open(newline="", encoding="utf-8-sig") as f:
            return [c.strip() for c in (csv.DictReader(f).fieldnames or [])]
    cols: dict[str, None] = {}
    for _, row in manifest_rows(p):
        cols.update(dict.fromkeys(row))
    return list(cols)


def unknown_gold(samples: Iterable[Sample], labels: Any) -> dict[str, list[str]]:
    """Gold labels (sample and per-face) that ``labels`` (a :class:`~sovtp.labels.LabelSet`)
    cannot normalise, each with the IDs of its samples — the list a run should show before it
    starts, instead of scoring those samples as errors."""
    out: dict[str, list[str]] = defaultdict(list)
    for s in samples:
        golds = [s.label, *s.face_labels.values()]
        for g in golds:
            if g and labels.normalize(g) is None:
                out[g].append(s.id)
    return dict(out)


def check_gold(samples: Iterable[Sample], labels: Any) -> None:
    """Raise :class:`ManifestError` listing every gold label outside ``labels`` (with counts and
    the first sample IDs), so a benchmark never drops those samples from its score unseen."""
    bad = unknown_gold(samples, labels)
    if not bad:
        return
    listing = "; ".join(
        f"{g!r} ×{len(ids)} ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"
        for g, ids in sorted(bad.items(), key=lambda kv: -len(kv[1]))
    )
    raise ManifestError(
        f"{sum(map(len, bad.values()))} gold label(s) are not in the label set "
        f"{getattr(labels, 'name', '')} ({', '.join(labels.labels)}): {listing} — choose the "
        "label set (--labels, or an evaluator whose synonyms map these spellings) or fix the rows"
    )


def _rel(path: Path, base: Path) -> str:
    """A path relative to ``base`` where it lies under it, else absolute (manifests allow both)."""
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


def write_manifest(samples, path: str | Path, root: str | Path) -> int:
    """Write samples as a JSONL manifest with paths relative to ``root`` (what adapters export)."""
    base = Path(root).resolve()
    n = 0
    with Path(path).open("w") as f:
        for s in samples:
            d = {"id": s.id, "media": _rel(s.media, base), "label": s.label}
            for k in (
                "split",
                "fold",
                "subject",
                "transcript",
                "description",
                "start_frame",
                "end_frame",
                "start_s",
                "end_s",
            ):
                v = getattr(s, k)
                if v is not None:
                    d[k] = v
            if s.audio:
                d["audio"] = _rel(s.audio, base)
            if s.face_labels:
                d["face_labels"] = {str(k): v for k, v in s.face_labels.items()}
            d.update(s.meta)
            f.write(json.dumps(d) + "\n")
            n += 1
    return n
