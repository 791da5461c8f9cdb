"""``sovtp data check`` (a recipe: it reads adapters, evaluators and media, writes no folder): is this
copy of a benchmark the data the papers used?

Read a source (``ADAPTER:ROOT`` or a manifest) the way ``sovtp bench`` reads it and report,
before a ten-hour run rather than after it:

- counts per split, fold and class (and, where the benchmark's authors published them, the
  comparison with those counts: :mod:`sovtp.data.published`);
- samples whose media is missing, or whose path the data layer refused;
- unreadable media: a seeded sample of the media is actually decoded (a few frames of each),
  because a truncated video or a corrupt JPEG passes every existence test;
- duplicates: a sample ID listed twice, one media file listed under two IDs in a split, and a
  clip in both the train and the test side of one fold (leakage);
- a split or fold the adapter cannot read at all (its message, one line).

The adapters are called through their registry (:data:`sovtp.data.sources.ADAPTERS`) without the
duplicate-ID guard ``sovtp bench`` puts around them, so duplicates are counted and listed here
instead of stopping the check at the first one.  Which splits and folds an adapter has is read
from the shipped evaluator that names it (``evaluators/*.yaml``).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sovtp.data.published import Mismatch, compare
from sovtp.data.sample import ManifestError, Sample

Cell = tuple[str, int | None]
NO_LABEL = "(none)"


@dataclass
class CheckReport:
    """What :func:`check_dataset` found.  ``problems`` are one-line reasons; no problem means the
    copy is complete, readable, free of duplicates and matches every published count compared."""

    source: str
    name: str | None  # the benchmark compared with (the adapter name, or --published)
    counts: dict[Cell, dict[str, int]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # "id: path" of absent media
    refused: list[str] = field(default_factory=list)  # "id: why" of refused paths
    decoded: int = 0
    unreadable: list[str] = field(default_factory=list)  # "id: why"
    duplicate_ids: dict[str, int] = field(default_factory=dict)
    duplicate_media: dict[str, list[str]] = field(default_factory=dict)  # media → its IDs
    leaks: dict[int | None, list[str]] = field(default_factory=dict)  # fold → media in both
    unreadable_splits: list[str] = field(default_factory=list)
    compared: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def problems(self) -> list[str]:
        """Every finding that makes the copy unfit, as one line each."""
        out: list[str] = list(self.unreadable_splits)
        if not self.total and not self.unreadable_splits:
            out.append("no samples found")
        for what, items in (
            ("missing media", self.missing),
            ("refused paths", self.refused),
            ("unreadable media", self.unreadable),
        ):
            if items:
                more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
                out.append(f"{len(items)} {what}: {'; '.join(items[:3])}{more}")
        if self.duplicate_ids:
            ids = ", ".join(f"{k!r} ×{v}" for k, v in list(self.duplicate_ids.items())[:5])
            out.append(f"{len(self.duplicate_ids)} sample ID(s) listed more than once: {ids}")
        if self.duplicate_media:
            ex = "; ".join(
                f"{m} as {', '.join(v)}" for m, v in list(self.duplicate_media.items())[:3]
            )
            out.append(f"{len(self.duplicate_media)} media file(s) under two IDs in a split: {ex}")
        for fold, media in self.leaks.items():
            where = f"fold {fold}" if fold is not None else "the splits"
            out.append(
                f"{len(media)} clip(s) in both train and test of {where}: {', '.join(media[:3])}"
            )
        out += [f"differs from the published counts: {m.text()}" for m in self.mismatches]
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON for scripts (``--json``)."""
        return {
            "source": self.source,
            "benchmark": self.name,
            "total": self.total,
            "counts": [
                {
                    "split": s,
                    "fold": f,
                    "total": sum(c.values()),
                    "classes": dict(sorted(c.items())),
                }
                for (s, f), c in self.counts.items()
            ],
            "missing": self.missing,
            "refused": self.refused,
            "decoded": self.decoded,
            "unreadable": self.unreadable,
            "duplicate_ids": self.duplicate_ids,
            "duplicate_media": self.duplicate_media,
            "leaks": {str(k): v for k, v in self.leaks.items()},
            "unreadable_splits": self.unreadable_splits,
            "published": self.compared,
            "mismatches": [asdict(m) for m in self.mismatches],
            "problems": self.problems(),
            "ok": not self.problems(),
        }


# -- reading ---------------------------------------------------------------------------------
def _evaluator_for(adapter: str) -> Any:
    """The shipped evaluator whose adapter is ``adapter`` (its splits and folds), or None."""
    from sovtp.evaluator import available, load_evaluator

    for name in available():
        try:
            ev = load_evaluator(name)
        except Exception:  # noqa: BLE001 - a broken YAML is the evaluator tests' business
            continue
        if ev.adapter == adapter:
            return ev
    return None


def _cells(
    adapter: str, fold: int | None, split: str | None
) -> list[tuple[str | None, int | None]]:
    """The (split, fold) reads an adapter check makes: the evaluator's splits × folds (only
    ``fold``/``split`` when given); the adapter's own default when no evaluator names it."""
    ev = _evaluator_for(adapter)
    splits: list[str | None] = [split] if split else list(ev.splits if ev else [None])
    folds: list[int | None] = (
        [fold] if fold is not None else list((ev.folds if ev else []) or [None])
    )
    return [(s, f) for s in splits for f in folds]


def iter_source(
    source: str, *, fold: int | None = None, split: str | None = None, root: Path | None = None
) -> Iterator[tuple[Cell | None, Sample | str]]:
    """Every sample of ``source`` with the (split, fold) read that produced it; a read that
    fails yields ``(cell, message)`` instead (the check goes on with the other reads)."""
    from sovtp.data.sources import ADAPTERS

    kind, sep, rest = source.partition(":")
    if sep and kind in ADAPTERS:
        base = Path(rest)
        if not base.is_dir():
            raise ManifestError(f"{kind}: no such folder {base}")
        for s, f in _cells(kind, fold, split):
            kw = {k: v for k, v in (("split", s), ("fold", f)) if v is not None}
            ev = _evaluator_for(kind)
            kw.update(ev.options if ev is not None else {})  # adapter options, as bench reads
            cell = (s or "", f)
            try:
                for smp in ADAPTERS[kind](base, **kw):
                    yield cell, smp
            except (ManifestError, OSError, ValueError, KeyError) as e:
                label = (s or "default split") + (f" fold {f}" if f is not None else "")
                yield cell, f"{label}: {e}"
        return
    p = Path(source)
    if p.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        from sovtp.data.sources import open_dataset

        open_dataset(source)  # raises the one-line "unknown dataset" message
        raise ManifestError(f"{source}: data check reads manifests and ADAPTER:ROOT sources")
    if not p.is_file():
        raise ManifestError(f"no such manifest: {p}")
    from sovtp.data.manifest import manifest_rows, sample_from_row

    base = root or p.parent
    want = str(split).strip().lower() if split and split not in ("all", "*") else None
    for n, row in manifest_rows(p):  # rows as bench reads them, repeated IDs listed, not refused
        smp = sample_from_row(row, base, f"{p}:{n}")
        if want is not None and (smp.split or "").strip().lower() != want:
            continue
        if fold is not None and smp.fold != fold:
            continue
        yield None, smp


# -- checking --------------------------------------------------------------------------------
def readable(path: Path) -> str | None:
    """None when a few frames of ``path`` decode (a video's first, middle and last sampled
    frames; a frame folder's; an image), else why not."""
    from sovtp.media.video import load_frames

    try:
        frames = load_frames(path, "uniform:3")
    except Exception as e:  # noqa: BLE001 - any decoder failure is the finding
        return f"{type(e).__name__}: {e}".splitlines()[0][:200]
    return None if frames else "no frame decoded"


def check_dataset(
    source: str,
    *,
    fold: int | None = None,
    split: str | None = None,
    root: Path | None = None,
    decode: int = 20,
    seed: int = 0,
    published: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Check ``source`` (see the module docstring).  ``decode``: how many media files to decode
    (a seeded random sample; 0 = none, -1 = all); ``published``: the benchmark whose published
    counts to compare with (default: the adapter's name); ``progress(done, total)`` is called
    during the media scan."""
    kind, sep, _ = source.partition(":")
    name = published or (kind if sep else None)
    rep = CheckReport(source, name)
    ids: Counter[tuple[Cell | None, str]] = Counter()
    counts: dict[Cell, Counter[str]] = defaultdict(Counter)
    media_ids: dict[tuple[str, int | None, str], list[str]] = defaultdict(list)
    by_side: dict[int | None, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    present: dict[str, Path] = {}  # media path → a sample ID, for the decode pass
    for cell, item in iter_source(source, fold=fold, split=split, root=root):
        if isinstance(item, str):
            rep.unreadable_splits.append(item)
            continue
        s = item
        key = cell if cell is not None else ((s.split or ""), s.fold)
        ids[(cell, s.id)] += 1  # a manifest's IDs are unique across it; an adapter's per read
        counts[key][s.label or NO_LABEL] += 1
        media = str(s.media)
        media_ids[(key[0], key[1], media)].append(s.id)
        side = (key[0] or "").lower()
        if side in ("train", "test"):
            by_side[key[1]][side].add(media)
        if s.error:  # a path refused by the data layer, or (adapters) a clip not found
            refused = Path(s.media).name.startswith(".sovtp-refused-") or Path(s.media).exists()
            (rep.refused if refused else rep.missing).append(f"{s.id}: {s.error}")
            continue
        for p in (s.media, s.audio):
            if p is not None and not Path(p).exists():
                rep.missing.append(f"{s.id}: {p}")
        if Path(s.media).exists():
            present.setdefault(media, s.media)
    rep.counts = {k: dict(v) for k, v in counts.items()}
    rep.duplicate_ids = {sid: v for (_, sid), v in ids.items() if v > 1}
    rep.duplicate_media = {m: v for (_, _, m), v in media_ids.items() if len(set(v)) > 1}
    for f, sides in by_side.items():
        both = sorted(sides["train"] & sides["test"])
        if both:
            rep.leaks[f] = both
    rep.missing = sorted(set(rep.missing))
    paths = sorted(present)
    chosen = (
        paths if decode < 0 or decode >= len(paths) else random.Random(seed).sample(paths, decode)
    )
    for i, m in enumerate(chosen):
        why = readable(present[m])
        if why:
            rep.unreadable.append(f"{m}: {why}")
        rep.decoded += 1
        if progress is not None:
            progress(i + 1, len(chosen))
    compared, rep.mismatches = compare(name, rep.counts)
    rep.compared = [
        {"split": c[0], "fold": c[1], "published": pub.total, "found": n, "source": pub.source}
        for c, pub, n in compared
    ]
    return rep
