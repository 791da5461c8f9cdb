"""Time in video: each AU and posture of a face as events (onset, apex, offset, in seconds).

Why: a mean over sampled frames turns a clip into a bag of frames.  A brow raise that holds for
two of eight frames averages to a trace, and a hand over the mouth in one frame disappears —
the short events that often carry the emotion.  Summarised by peak and duration instead, they
survive, and their times let a reader see what happened when.

An *event* is a run of consecutive sampled frames in which a measure is at or above its
threshold.  Its onset and offset are the times of the run's first and last frame (a sampled clip
cannot say more), its apex the frame of its peak; its duration adds one typical frame spacing,
so a one-frame event lasts one frame.  Per-frame values stay in the annotation.

This module is the one home of that machinery: the AU time line, the posture cues, the NFBL cues
(:mod:`sovtp.annotate.nfbl`: self-touch, arms crossed, fidgeting) and the prosody pauses
(:mod:`sovtp.deid.prosody`) all find their runs with :func:`index_runs` / :func:`find_events` and
word their times with :func:`span_word` / :func:`span_phrase`, so "1.0–1.4 s" means the same
thing in every cue.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from sovtp.facs import DEFAULT_THRESHOLD, PROTOTYPES, au_label, au_sort_key, intensity_word
from sovtp.types import Face

# The AUs that FACS interpretation (the EMFACS prototypes) relies on: when one was not measured,
# the cue says so instead of implying it was absent.
INTERPRETED_AUS = sorted({au for proto in PROTOTYPES.values() for au in proto}, key=au_sort_key)
MAX_EVENTS_WORDED = 3  # per AU in the time line text (all of them stay in the value)


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


@dataclass
class Event:
    """One run of frames at or above a threshold."""

    onset_s: float
    apex_s: float
    offset_s: float
    peak: float
    frames: int
    duration_s: float

    def to_dict(self) -> dict[str, float | int]:
        d = asdict(self)
        return {k: (_r(v, 3) if isinstance(v, float) else v) for k, v in d.items()}


def frame_spacing(times: list[float]) -> float:
    """The typical time between two sampled frames (the median gap); 0 for one frame."""
    t = sorted(set(times))
    return float(np.median(np.diff(t))) if len(t) > 1 else 0.0


def index_runs(on) -> list[tuple[int, int]]:
    """(first, last) indices, inclusive, of each run of consecutive true samples of ``on``
    (a sequence or array of booleans)."""
    m = np.diff(np.concatenate([[0], np.asarray(on, dtype=bool).astype(np.int8), [0]]))
    firsts, ends = np.flatnonzero(m == 1), np.flatnonzero(m == -1)
    return [(int(a), int(b) - 1) for a, b in zip(firsts, ends, strict=True)]


def event_of(times, values, first: int, last: int, dt: float = 0.0) -> Event:
    """The event of samples ``first..last`` (inclusive): onset and offset at their times, apex at
    the first sample of the peak value, duration ``offset - onset + dt``."""
    k = first + int(np.argmax(np.asarray(values[first : last + 1], dtype=np.float64)))
    onset, offset = float(times[first]), float(times[last])
    return Event(
        onset, float(times[k]), offset, float(values[k]), last - first + 1, offset - onset + dt
    )


def find_events(
    times, values, threshold: float = DEFAULT_THRESHOLD, dt: float = 0.0
) -> list[Event]:
    """Runs of consecutive samples (in time order) with ``value >= threshold``."""
    vs = np.asarray(values, dtype=np.float64)
    if len(times) != len(vs):
        raise ValueError(f"{len(times)} times but {len(vs)} values")
    return [event_of(times, vs, a, b, dt) for a, b in index_runs(vs >= threshold)]


@dataclass
class AUTrace:
    """One AU of one face over a clip: how strong at its peak, when, and for how long."""

    code: str
    method: str
    mean: float
    peak: float
    peak_s: float
    peak_sides: tuple[float, float] | None
    n_frames: int  # frames that measured it
    active_frames: int  # of those, at or above the threshold
    events: list[Event] = field(default_factory=list)

    @property
    def throughout(self) -> bool:
        """Active in every frame that measured it (a held action, or a still image)."""
        return self.active_frames == self.n_frames

    @property
    def duration_s(self) -> float:
        return sum(e.duration_s for e in self.events)

    def phrase(self) -> str:
        """The AU as the active-AUs cue words it: by its peak, and when it was brief, when."""
        word = f"{au_label(self.code)} ({intensity_word(self.peak)}, "
        if self.n_frames <= 1 or self.throughout:
            return word + f"{self.peak:.2f})"
        return word + f"peak {self.peak:.2f} at {self.peak_s:.1f} s, for {self.duration_s:.1f} s)"

    def timeline_phrase(self) -> str:
        """'AU12 lip corner puller: onset 1.2 s, apex 1.3 s (strong, 0.90), offset 1.5 s'."""
        head = f"{au_label(self.code)}: "
        if self.throughout:
            return head + f"throughout, apex {self.peak_s:.1f} s ({self._level(self.peak)})"
        strongest = sorted(self.events, key=lambda e: (-e.peak, e.onset_s))[:MAX_EVENTS_WORDED]
        parts = [
            f"onset {e.onset_s:.1f} s, apex {e.apex_s:.1f} s ({self._level(e.peak)}), "
            f"offset {e.offset_s:.1f} s"
            for e in sorted(strongest, key=lambda e: e.onset_s)
        ]
        more = len(self.events) - len(strongest)
        tail = f" (and {more} weaker {'time' if more == 1 else 'times'})" if more > 0 else ""
        return head + ", then ".join(parts) + tail

    @staticmethod
    def _level(v: float) -> str:
        return f"{intensity_word(v)}, {v:.2f}"

    def to_dict(self) -> dict:
        return {
            "au": self.code,
            "name": au_label(self.code),
            "method": self.method,
            "peak": _r(self.peak, 4),
            "apex_s": _r(self.peak_s, 3),
            "onset_s": _r(self.events[0].onset_s, 3) if self.events else None,
            "offset_s": _r(self.events[-1].offset_s, 3) if self.events else None,
            "duration_s": _r(self.duration_s, 3),
            "frames": self.active_frames,
            "of_frames": self.n_frames,
            "throughout": self.throughout,
            "events": [e.to_dict() for e in self.events],
            "text": self.timeline_phrase(),
        }


def au_traces(
    series: list[tuple[float, Face]], threshold: float = DEFAULT_THRESHOLD
) -> dict[str, AUTrace]:
    """Every AU measured on one face over time (``series``: (timestamp_s, face), time order)."""
    times = [t for t, _ in series]
    dt = frame_spacing(times)
    codes = sorted({c for _, f in series for c in f.aus}, key=au_sort_key)
    out: dict[str, AUTrace] = {}
    for c in codes:
        pts = [(t, f) for t, f in series if c in f.aus]
        ts = [t for t, _ in pts]
        vs = [float(f.aus[c]) for _, f in pts]
        k = int(np.argmax(vs))  # the first frame at the peak
        methods = Counter(f.au_methods.get(c, "") for _, f in pts)
        method = max(methods, key=lambda m: (methods[m], m)) if methods else ""
        out[c] = AUTrace(
            code=c,
            method=method,
            mean=float(np.mean(vs)),
            peak=vs[k],
            peak_s=ts[k],
            peak_sides=pts[k][1].au_sides.get(c),
            n_frames=len(vs),
            active_frames=sum(v >= threshold for v in vs),
            events=find_events(ts, vs, threshold, dt),
        )
    return out


def not_measured(traces: dict[str, AUTrace]) -> list[str]:
    """The AUs FACS interpretation relies on that no frame of this face measured."""
    return [c for c in INTERPRETED_AUS if c not in traces]


def strongest(
    traces: dict[str, AUTrace], top_k: int, threshold: float = DEFAULT_THRESHOLD
) -> list[AUTrace]:
    """The ``top_k`` AUs active at their peak, strongest peak first."""
    act = [t for t in traces.values() if t.peak >= threshold]
    return sorted(act, key=lambda t: (-t.peak, au_sort_key(t.code)))[:top_k]


def not_measured_phrase(codes: list[str]) -> str:
    return "not measured: " + ", ".join(au_label(c) for c in codes) if codes else ""


def timeline_value(
    series: list[tuple[float, Face]], traces: dict[str, AUTrace], top_k: int
) -> dict:
    """The machine-readable AU time line of one face (what a template's time line words)."""
    times = [t for t, _ in series]
    return {
        "n_frames": len(series),
        "span_s": [_r(min(times), 3), _r(max(times), 3)] if times else [0.0, 0.0],
        "frame_spacing_s": _r(frame_spacing(times), 3),
        "aus": [t.to_dict() for t in strongest(traces, top_k)],
        "not_measured": not_measured(traces),
    }


def presence_events(seen, dt: float | None = None) -> dict:
    """Name → the events in which it was seen, from (timestamp_s, names seen) per frame (time
    order) — the postures of a person, the (hand, region) self-touches of a subject; names come
    out sorted.  ``dt`` (default: the frame spacing) lengthens each event by one frame."""
    times = [t for t, _ in seen]
    dt = frame_spacing(times) if dt is None else dt
    names = sorted({n for _, ns in seen for n in ns})
    return {
        n: find_events(times, [1.0 if n in ns else 0.0 for _, ns in seen], 0.5, dt) for n in names
    }


def span_word(onset_s: float, offset_s: float) -> str:
    """'at 1.2 s' for a moment (one sampled frame), else '1.0–1.4 s'."""
    if offset_s <= onset_s:
        return f"at {onset_s:.1f} s"
    return f"{onset_s:.1f}–{offset_s:.1f} s"


def span_phrase(events: list[Event]) -> str:
    """'at 1.2 s' / '1.0–1.4 s', joined: when a posture held, a hand touched, a pause fell."""
    return ", ".join(span_word(e.onset_s, e.offset_s) for e in events)
