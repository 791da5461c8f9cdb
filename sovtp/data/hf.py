"""Hugging Face ``datasets`` as a source: a local folder, parquet file(s) or a hub name,
streamed (``streaming=True``) so a large dataset is never materialised.

Images and videos are taken as their *encoded bytes* (``decode=False``) and written once to a
content-addressed folder under the user cache, because the rest of sovtp works on media files
(and the annotation cache keys on their sha256).  Integer labels of a ``ClassLabel`` column are
turned into their names.  A cell naming a file outside the dataset's folder is refused for that
sample alone (``Sample.error``).  No dataset loading script runs: a local one is refused, and
``trust_remote_code`` is never turned on (``datasets`` < 4 is told False; 4.0 dropped scripts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sovtp.data.sample import ManifestError, Sample, refused_path, safe_path


def _media_dir() -> Path:
    from sovtp.resources import cache_root

    return cache_root() / "hf-media"


def _store(value: Any, default_ext: str, out: Path, root: Path) -> Path:
    """An image/video cell (``{'bytes', 'path'}`` or a path string) → a file on disk.  A cell
    that only names a file must name one inside the dataset's folder (``safe_path``)."""
    if isinstance(value, str):
        return safe_path(root, value)
    if isinstance(value, dict):
        data, src = value.get("bytes"), value.get("path")
        if data is None and src:
            return safe_path(root, src)
    else:
        raise ManifestError(f"unsupported media cell {type(value).__name__}")
    ext = Path(src).suffix if src else default_ext
    sha = hashlib.sha256(data).hexdigest()
    p = out / sha[:2] / f"{sha}{ext or default_ext}"
    if not p.exists():
        from sovtp.atomic import atomic_write

        atomic_write(p, data)
    return p


def refuse_scripts(p: Path) -> None:
    """A dataset loading script is code: sovtp never lets ``datasets`` run one.  A ``.py``
    path, or a folder holding ``<folder name>.py`` (what ``datasets`` takes for its script),
    is refused before ``datasets`` sees it."""
    script = p if p.suffix == ".py" else p / f"{p.name}.py"
    if script.is_file():
        raise ManifestError(
            f"{script}: a dataset loading script is code, and sovtp runs none; give the data "
            "files (parquet, imagefolder, videofolder) without it"
        )


def _no_remote_code(datasets: Any) -> dict[str, Any]:
    """``datasets`` < 4 ran a hub dataset's script when asked to; say no explicitly there (4.0
    removed scripts and the option with them)."""
    try:
        major = int(str(datasets.__version__).split(".")[0])
    except ValueError:
        major = 4
    return {"trust_remote_code": False} if major < 4 else {}


def iter_hf(
    path: str,
    split: str | None = "test",
    *,
    image_column: str | None = None,
    video_column: str | None = None,
    label_column: str = "label",
    id_column: str | None = None,
) -> Iterator[Sample]:
    """Samples of a HF dataset.  ``path`` is what ``datasets.load_dataset`` takes: a local folder
    (imagefolder / videofolder / parquet files), a ``.parquet`` file or a hub name."""
    try:
        import datasets
    except ImportError as e:
        raise ManifestError(
            "HF datasets need the `datasets` package: pip install 'sovtp[data]'"
        ) from e
    p = Path(path)
    refuse_scripts(p)
    if p.suffix == ".parquet" or (p.is_dir() and any(p.glob("*.parquet"))):
        files = [str(p)] if p.is_file() else sorted(str(x) for x in p.glob("*.parquet"))
        ds = datasets.load_dataset("parquet", data_files={split or "train": files}, streaming=True)
    else:
        ds = datasets.load_dataset(str(path), streaming=True, **_no_remote_code(datasets))
    if split not in ds:
        have = list(ds)
        if split is not None and len(have) != 1:
            raise ManifestError(f"{path}: no split {split!r} (has {have})")
        split = have[0]
    d = ds[split]
    feats = d.features or {}
    media_col = video_column or image_column
    if media_col is None:
        media_col = next(
            (c for c, f in feats.items() if type(f).__name__ in ("Image", "Video")), None
        ) or next((c for c in ("image", "video", "file", "path") if c in feats), None)
    if media_col is None:
        raise ManifestError(f"{path}: name the media column (--image-column / --video-column)")
    kind = type(feats.get(media_col)).__name__
    if kind in ("Image", "Video"):
        d = d.cast_column(media_col, getattr(datasets, kind)(decode=False))
    names = getattr(feats.get(label_column), "names", None)
    out = _media_dir()
    root = p if p.is_dir() else p.parent
    for n, row in enumerate(d):
        lab = row.get(label_column)
        if names is not None and isinstance(lab, int):
            lab = names[lab] if lab >= 0 else None
        sid = str(row[id_column]) if id_column else f"{split}-{n:06d}"
        label = None if lab is None else str(lab)
        try:
            media = _store(row[media_col], ".mp4" if kind == "Video" else ".png", out, root)
        except ManifestError as e:  # a cell naming a file outside the dataset: this sample only
            yield Sample(sid, refused_path(root, sid), label, split=split, error=str(e))
            continue
        yield Sample(sid, media, label, split=split)
