"""One benchmark item, and the rule that keeps its paths inside the dataset root."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sovtp.errors import SovtpError


class ManifestError(SovtpError):
    """A manifest row that cannot be used (missing column, a path that escapes its root)."""


def safe_path(root: Path, rel: str | Path) -> Path:
    """``root / rel`` — refused when it would land outside ``root`` (``..``, an absolute path
    elsewhere, or a symlink pointing out), so a manifest cannot make sovtp read arbitrary
    files."""
    root_r = root.resolve()
    p = Path(rel)
    cand = (p if p.is_absolute() else root_r / p).resolve()
    if not cand.is_relative_to(root_r):
        raise ManifestError(f"path {str(rel)!r} escapes the dataset root {root_r}")
    return cand


def refused_path(root: Path, rel: str | Path) -> Path:
    """Where a sample whose media was refused points instead: one file name *inside* the root
    that does not exist, so that even code that ignores ``Sample.error`` fails on that sample
    alone (a missing file) and never reads what the path named."""
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in str(rel))[:120]
    return root.resolve() / f".sovtp-refused-{name}"


def media_path(
    root: Path, rel: str | Path, *, allow_outside_root: bool = False
) -> tuple[Path, str | None]:
    """``(path, None)`` for a usable media path, ``(refused_path, reason)`` for one that leaves
    ``root`` — an absolute path elsewhere, ``../``, or a symlink pointing out — a per-sample
    error, so one bad row never stops a run (and nothing outside the root is ever read or sent
    to a server).  ``allow_outside_root`` (the user's explicit ``--allow-outside-root``) takes
    such a path as given instead."""
    if allow_outside_root:
        p = Path(rel)
        return (p if p.is_absolute() else root.resolve() / p).resolve(), None
    try:
        return safe_path(root, rel), None
    except ManifestError as e:
        return refused_path(root, rel), f"{e} (pass --allow-outside-root to read it)"


@dataclass
class Sample:
    """A clip (or image) with its gold label and whatever the benchmark knows about it.

    ``face_labels`` maps a face ID (as sovtp numbers faces, see ``sovtp annotate``) to its own
    label, for per-face scoring; ``start_frame``/``end_frame`` (inclusive) or ``start_s``/``end_s``
    restrict sampling to an interval of a longer video.  ``error`` marks a sample the data layer
    refused (a path that leaves its root): it still gets rows, each carrying that error.
    """

    id: str
    media: Path
    label: str | None = None
    split: str | None = None
    fold: int | None = None
    subject: str | None = None
    transcript: str | None = None
    audio: Path | None = None
    face_labels: dict[int, str] = field(default_factory=dict)
    start_frame: int | None = None
    end_frame: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    description: str | None = None  # a reference rationale (EMER/DEEMO), for reasoning scores
    meta: dict[str, Any] = field(default_factory=dict)
    # why this sample cannot be used (its media path was refused): the runner writes its rows
    # with this error instead of decoding; ``media`` then names no real file
    error: str | None = None

    @property
    def has_interval(self) -> bool:
        return self.start_frame is not None or self.start_s is not None

    def row(self) -> dict[str, Any]:
        """What a prediction row carries about its sample (no pixels, relative facts only)."""
        d: dict[str, Any] = {"sample_id": self.id, "gold": self.label}
        for k in ("split", "fold", "subject", "description"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.meta:
            d["meta"] = self.meta
        return d


def sample_to_dict(s: Sample) -> dict[str, Any]:
    """A JSON-able dict (paths as strings) — how a sample travels to a Ray worker."""
    from dataclasses import asdict

    d = asdict(s)
    d["media"] = str(s.media)
    d["audio"] = str(s.audio) if s.audio else None
    d["face_labels"] = {str(k): v for k, v in s.face_labels.items()}
    return d


def sample_from_dict(d: dict[str, Any]) -> Sample:
    d = dict(d)
    d["media"] = Path(d["media"])
    d["audio"] = Path(d["audio"]) if d.get("audio") else None
    d["face_labels"] = {int(k): v for k, v in (d.get("face_labels") or {}).items()}
    return Sample(**d)


def sampling_for(sample: Sample, sampling: str) -> str:
    """The frame sampling of one sample: the run's, restricted to the sample's interval."""
    if not sample.has_interval:
        return sampling
    from sovtp.media.sampling import Sampling
    from sovtp.media.video import probe

    info = probe(sample.media)
    fps = info.fps or 25.0
    start = (
        sample.start_frame if sample.start_frame is not None else round((sample.start_s or 0) * fps)
    )
    if sample.end_frame is not None:
        end = sample.end_frame
    elif sample.end_s is not None:
        end = round(sample.end_s * fps)
    else:
        end = info.n_frames - 1
    end = max(start, min(end, max(info.n_frames - 1, start)))
    rel = Sampling.parse(sampling).select(end - start + 1, fps, clip=sample.media)
    return "indices:" + ",".join(str(start + i) for i in rel)
