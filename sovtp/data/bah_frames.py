"""BAH frame-level labels: where in a video ambivalence/hesitancy (A/H) is shown.

The BAH release annotates *timestamp segments* in which A/H occurs; its frame-level labels are
those segments read at the video's frames, and a video's label is 1 when it holds any segment.
Two layouts are read (both under the BAH root that :func:`sovtp.data.adapters.bah` reads):

- ``annotations/segments.csv`` — one row per A/H segment, header ``video,start,end`` (seconds;
  ``video`` as in ``splits/*.csv``, relative to ``videos/``, extension optional).  A video with
  no row has no A/H.
- ``annotations/frames/<video id>.txt`` — one integer per frame (1 = A/H, 0 = none,
  −1 = not annotated), an optional header line first — the per-frame form ABAW tracks use.
  ``<video id>`` is the adapter's sample ID (the video path with ``/`` → ``_``, no extension).

The layout of the official archive is not reproduced on this machine; if it differs, convert it
to one of the two forms above (both are plain text) rather than changing the scorer.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from sovtp.data.sample import ManifestError, safe_path

Segment = tuple[float, float]


def video_id(rel: str) -> str:
    """The adapter's sample ID of a video path (``p01/q3.mp4`` → ``p01_q3``)."""
    return Path(rel.strip()).with_suffix("").as_posix().replace("/", "_")


def read_segments(path: str | Path) -> dict[str, list[Segment]]:
    """video ID → its A/H segments ``(start_s, end_s)``, sorted; rows with ``end < start``
    are refused (a swapped pair would silently become an empty segment)."""
    out: dict[str, list[Segment]] = defaultdict(list)
    with Path(path).open(newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.DictReader(f), 2):
            try:
                a, b = float(row["start"]), float(row["end"])
            except (KeyError, TypeError, ValueError):
                raise ManifestError(f"{path}:{n}: needs numeric start and end (seconds)") from None
            if b < a:
                raise ManifestError(f"{path}:{n}: segment ends ({b}) before it starts ({a})")
            out[video_id(row["video"])].append((a, b))
    return {k: sorted(v) for k, v in out.items()}


def frames_from_segments(segments: list[Segment], n_frames: int, fps: float) -> np.ndarray:
    """(n_frames,) int8: 1 where frame ``i`` (at ``i / fps`` s) lies in a segment (inclusive)."""
    t = np.arange(n_frames) / float(fps)
    y = np.zeros(n_frames, np.int8)
    for a, b in segments:
        y[(t >= a) & (t <= b)] = 1
    return y


def read_frame_labels(path: str | Path) -> np.ndarray:
    """(n_frames,) int8 from a per-frame file: 1, 0 or −1 (not annotated); a non-numeric first
    line is a header."""
    lines = [x.strip() for x in Path(path).read_text(encoding="utf-8-sig").splitlines()]
    lines = [x for x in lines if x]
    if lines and not lines[0].lstrip("-").replace(".", "", 1).isdigit():
        lines = lines[1:]
    y = np.array([int(float(x)) for x in lines], dtype=np.int8)
    if ((y < -1) | (y > 1)).any():
        raise ManifestError(f"{path}: frame labels must be 1, 0 or -1")
    return y


def frame_labels(
    root: str | Path, vid: str, n_frames: int | None = None, fps: float | None = None
) -> np.ndarray | None:
    """The frame labels of one video: its per-frame file if there is one, else its segments
    read at ``n_frames`` frames of ``fps`` (both needed then); None when the root has neither
    layout."""
    root = Path(root)
    per = root / "annotations" / "frames"
    if per.is_dir():
        p = safe_path(root, f"annotations/frames/{vid}.txt")
        return read_frame_labels(p) if p.exists() else None
    seg = root / "annotations" / "segments.csv"
    if seg.exists():
        if n_frames is None or fps is None:
            raise ValueError("segments need the video's frame count and fps")
        return frames_from_segments(_segments_cached(seg).get(vid, []), n_frames, fps)
    return None


_CACHE: dict[tuple[str, int], dict[str, list[Segment]]] = {}


def _segments_cached(p: Path) -> dict[str, list[Segment]]:
    key = (str(p.resolve()), p.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = read_segments(p)
    return _CACHE[key]


def video_label(frames: np.ndarray) -> str:
    """The video-level label the frame labels imply: ``ambivalence`` when any frame has A/H."""
    return "ambivalence" if (np.asarray(frames) == 1).any() else "none"
