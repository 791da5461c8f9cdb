"""One name for every way a benchmark arrives: a manifest, an adapter over an official tree,
or a HF dataset.

``SOURCE`` forms accepted by ``sovtp bench``:

- ``path/to/manifest.csv`` or ``.jsonl``             a sovtp manifest
- ``dfew:/data/DFEW`` (any adapter name: root)       an official layout (:mod:`.adapters`)
- ``casme2_spot:/data/CASME_sq``, ``samm:ROOT``, ``mmme:ROOT``   micro-expression spotting
  layouts, one sample per long video (:mod:`.me_adapters`)
- ``hf:/data/folder`` or ``hf:/data/x.parquet``      HF ``datasets`` (:mod:`.hf`)

Every form refuses a sample ID given twice; :func:`check_gold` lists gold labels outside a label
set before a run spends anything on them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from sovtp.data.adapters import ADAPTERS as LABEL_ADAPTERS
from sovtp.data.adapters import RENAMED
from sovtp.data.manifest import check_gold, read_manifest, unknown_gold
from sovtp.data.me_adapters import ME_ADAPTERS
from sovtp.data.sample import ManifestError, Sample

# every ADAPTER:ROOT name open_dataset accepts: the recognition layouts, then the spotting ones
# (registered here, not in adapters.py: me_adapters builds on adapters, so the reverse import
# would be a circle)
ADAPTERS = {**LABEL_ADAPTERS, **ME_ADAPTERS}
__all__ = ["ADAPTERS", "check_gold", "open_dataset", "select", "unique_ids", "unknown_gold"]


def unique_ids(samples: Iterator[Sample], where: str) -> Iterator[Sample]:
    """Pass samples through, refusing a sample ID seen before (an adapter whose label file lists
    a clip twice would otherwise have one of the two silently replace the other in scoring)."""
    seen: set[str] = set()
    for s in samples:
        if s.id in seen:
            raise ManifestError(f"{where}: sample {s.id!r} is listed twice")
        seen.add(s.id)
        yield s


def open_dataset(
    source: str,
    *,
    root: str | Path | None = None,
    split: str | None = None,
    fold: int | None = None,
    allow_outside_root: bool = False,
    **options,
) -> Iterator[Sample]:
    """Stream the samples of ``source`` (see the module docstring).  ``allow_outside_root``
    lets a manifest name media outside its root (refused per sample otherwise); adapters and HF
    folders always keep to theirs."""
    kind, sep, rest = source.partition(":")
    if sep and kind == "hf":
        from sovtp.data.hf import iter_hf

        return unique_ids(iter_hf(rest, split or "test", **options), source)
    if sep and kind in RENAMED:
        raise ManifestError(f"{kind}: ambiguous name; use {RENAMED[kind]}")
    if sep and kind in ADAPTERS:
        base = Path(rest)
        if not base.is_dir():
            raise ManifestError(f"{kind}: no such folder {base}")
        kw = {k: v for k, v in (("split", split), ("fold", fold)) if v is not None}
        return unique_ids(ADAPTERS[kind](base, **kw, **options), source)
    p = Path(source)
    if p.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        return read_manifest(p, root, split, fold, allow_outside_root=allow_outside_root)
    raise ManifestError(
        f"unknown dataset {source!r}: a .csv/.jsonl manifest, hf:PATH, or one of "
        + ", ".join(f"{a}:ROOT" for a in ADAPTERS)
    )


def select(
    samples: Iterator[Sample], limit: int | None = None, shuffle: bool = False, seed: int = 0
) -> Iterator[Sample]:
    """``--limit`` and ``--shuffle --seed``.  Shuffling streams too: reservoir sampling when a
    limit is given (memory O(limit)); without a limit the IDs must be shuffled, so samples are
    buffered — the only case that holds the manifest's rows."""
    if not shuffle:
        yield from islice(samples, limit) if limit else samples
        return
    rng = random.Random(seed)
    if limit:
        res: list[Sample] = []
        for i, s in enumerate(samples):
            if i < limit:
                res.append(s)
            else:
                j = rng.randint(0, i)
                if j < limit:
                    res[j] = s
        rng.shuffle(res)
        yield from res
        return
    buf = list(samples)
    rng.shuffle(buf)
    yield from buf
