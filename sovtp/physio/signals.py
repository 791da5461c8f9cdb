"""Physiological recordings (PPG, EDA, ECG, RSP, EEG channels …) and their windows on clips.

A recording is a CSV: one time column (seconds) and one column per channel, sampled at a steady
rate (the rate is read off the time column's median step).  Its time 0 is the video's first
frame unless ``offset_s`` says otherwise (a recording that started earlier has a positive
offset: recording time = video time + offset).  A clip's window is the stretch between its start
and end seconds — ``Sample.start_s``/``end_s``, or ``start_frame``/``end_frame`` at the video's
fps — optionally padded, because heart rate needs a few beats and a skin-conductance response
peaks 1–5 s after what caused it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sovtp.errors import SovtpError

TIME_COLUMNS = ("time", "time_s", "t", "timestamp", "seconds")


@dataclass
class Recording:
    """Channels sampled at ``fs`` Hz; ``t`` in seconds of video time."""

    t: np.ndarray
    channels: dict[str, np.ndarray]
    fs: float
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.t)

    def channel(self, *names: str) -> np.ndarray | None:
        """The first channel whose name matches one of ``names`` (case-insensitive prefix:
        ``ppg`` finds ``PPG`` and ``ppg_finger``)."""
        low = {k.lower(): k for k in self.channels}
        for n in names:
            for k, orig in low.items():
                if k == n.lower() or k.startswith(n.lower()):
                    return self.channels[orig]
        return None


def rate_of(t: np.ndarray) -> float:
    """Sampling rate from a time column (median step, robust to a dropped sample)."""
    if len(t) < 2:
        raise SovtpError("a recording needs at least two samples to have a rate")
    step = float(np.median(np.diff(t)))
    if step <= 0:
        raise SovtpError("the time column must increase")
    return 1.0 / step


def load_csv(path: str | Path, time_column: str | None = None, offset_s: float = 0.0) -> Recording:
    """A CSV with a time column (seconds; ``time``, ``time_s``, ``t``, ``timestamp`` …) and
    numeric channel columns; non-numeric columns are ignored, empty cells become NaN."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 3:
        raise SovtpError(f"{path}: a header and at least two samples are needed")
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    if time_column is not None:
        if time_column not in header:
            raise SovtpError(f"{path}: no column {time_column!r} (columns: {', '.join(header)})")
        ti = header.index(time_column)
    else:
        ti = next((lower.index(c) for c in TIME_COLUMNS if c in lower), -1)
        if ti < 0:
            raise SovtpError(f"{path}: no time column (one of {', '.join(TIME_COLUMNS)})")

    def num(x: str) -> float:
        try:
            return float(x)
        except ValueError:
            return float("nan")

    data = np.array([[num(c) for c in r] + [np.nan] * (len(header) - len(r)) for r in rows[1:]])
    t = data[:, ti] - offset_s
    channels = {
        header[j]: data[:, j]
        for j in range(len(header))
        if j != ti and np.isfinite(data[:, j]).any()
    }
    return Recording(t, channels, rate_of(t), str(path))


def window(rec: Recording, start_s: float, end_s: float, pad_s: float = 0.0) -> Recording:
    """The samples with ``start_s − pad_s <= t <= end_s + pad_s`` (video seconds)."""
    if end_s < start_s:
        raise SovtpError(f"window ends ({end_s}) before it starts ({start_s})")
    lo, hi = start_s - pad_s, end_s + pad_s
    m = (rec.t >= lo - 1e-9) & (rec.t <= hi + 1e-9)
    out = Recording(rec.t[m], {k: v[m] for k, v in rec.channels.items()}, rec.fs, rec.source)
    out.meta = {"start_s": f"{start_s:g}", "end_s": f"{end_s:g}", "pad_s": f"{pad_s:g}"}
    return out


def clip_seconds(
    start_s: float | None = None,
    end_s: float | None = None,
    start_frame: int | None = None,
    end_frame: int | None = None,
    fps: float | None = None,
) -> tuple[float, float]:
    """A clip's (start, end) in seconds, from seconds or from inclusive frame indices at
    ``fps`` (the end frame lasts until the next frame starts)."""
    if start_s is not None and end_s is not None:
        return float(start_s), float(end_s)
    if start_frame is not None and end_frame is not None:
        if not fps:
            raise SovtpError("frame bounds need the video's fps to become seconds")
        return start_frame / fps, (end_frame + 1) / fps
    raise SovtpError("a clip window needs start/end seconds or start/end frames")


def clip_window(rec: Recording, sample, fps: float | None = None, pad_s: float = 0.0) -> Recording:
    """The recording under one :class:`~sovtp.data.sample.Sample`'s interval."""
    a, b = clip_seconds(sample.start_s, sample.end_s, sample.start_frame, sample.end_frame, fps)
    return window(rec, a, b, pad_s)
