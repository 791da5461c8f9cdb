"""Time in video: each AU and posture of a face as events (onset, apex, offset, in seconds).

Why: a mean over sampled frames turns a clip into a bag of frames.  A brow raise that holds for
two of eight frames averages to a trace, and a hand over the mouth in one frame disappears —
the short events that often carry the emotion.  Summarised by peak and duration instead, they
survive, and their times let a reader see what happened when.

An *event* is a run of consecutive sampled frames in which a measure is at or above its
threshold.  Its onset and offset are the times of the run's first and last frame (a sampled clip
cannot say more), its apex the frame of its peak.  How long it lasted is worded only as far as the
samples bound it: at least from its first to its last sampled frame (``min_s``), at most from the
nearest sample before it to the nearest after it where it was measured and absent (``max_s``) —
"between 1.2 and 3.7 s", "under 0.8 s" for one frame.  A sample that could not measure it (the
face out of shot after a cut, a hand over the mouth: NaN) bounds nothing, and with no such
sample on one side — the clip's first or last frame, a face that leaves the shot — there is no
upper bound ("at least 0.8 s").  (It once added a whole sample spacing per event, so a blink
seen in two sparse samples read "for 7.4 s" and the cue's total exceeded its own time line.)  A blink (AU45) is a 0.1–0.4 s closure, which samples a second apart
cannot time at all, so it is worded by the frames that caught the eyes closed, never by a
duration.  Per-frame values stay in the annotation.

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
# AUs too brief to time from samples: worded by the frames that caught them, never a duration
MOMENTARY_AUS = ("AU45",)
MAX_MOMENTS_WORDED = 5


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


@dataclass
class Event:
    """One run of sampled frames at or above a threshold, and how long the samples say it lasted."""

    onset_s: float  # the first sampled frame it was seen in
    apex_s: float
    offset_s: float  # the last sampled frame it was seen in
    peak: float
    frames: int
    min_s: float  # it lasted at least this: first to last sampled frame it was seen in
    # ... and at most this: between the nearest samples either side that measured it absent;
    # None when a side has none (the clip's edge, the face out of shot): no upper bound
    max_s: float | None

    def to_dict(self) -> dict[str, float | int]:
        d = asdict(self)
        return {k: (_r(v, 3) if isinstance(v, float) else v) for k, v in d.items()}

    def duration_phrase(self) -> str:
        return duration_words(self.min_s, self.max_s, self.frames)


def duration_words(min_s: float, max_s: float | None, frames: int = 2) -> str:
    """How long, as far as the samples bound it: 'between 1.2 and 3.7 s'; 'under 0.8 s' when
    it was seen in one sampled frame only (nothing bounds it from below); '1.2 s' when the
    bounds agree to the tenth (dense samples); 'at least 1.2 s' with no upper bound; '' when the
    samples bound it neither way (one frame at the clip's edge)."""
    if max_s is None:
        return f"at least {min_s:.1f} s" if frames > 1 and min_s > 0 else ""
    if frames <= 1 or min_s <= 0.0:
        return f"under {max_s:.1f} s" if max_s > 0 else "for an instant"
    if round(max_s, 1) <= round(min_s, 1):
        return f"{min_s:.1f} s"
    return f"between {min_s:.1f} and {max_s:.1f} s"


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


def _known(vs: np.ndarray, i: int, step: int) -> int | None:
    """The nearest sample from ``i`` in direction ``step`` that measured something (not NaN)."""
    while 0 <= i < len(vs) and not np.isfinite(vs[i]):
        i += step
    return i if 0 <= i < len(vs) else None


def event_of(times, values, first: int, last: int) -> Event:
    """The event of samples ``first..last`` (inclusive): onset and offset at their times, apex at
    the first sample of the peak value, and its duration bounded by the samples: at least
    ``offset - onset``, at most between the nearest measured samples either side (NaN values
    are samples that measured nothing); no upper bound when a side has none."""
    vs = np.asarray(values, dtype=np.float64)
    k = first + int(np.nanargmax(vs[first : last + 1]))
    onset, offset = float(times[first]), float(times[last])
    before, after = _known(vs, first - 1, -1), _known(vs, last + 1, 1)
    upper = None if before is None or after is None else float(times[after] - times[before])
    return Event(
        onset, float(times[k]), offset, float(vs[k]), last - first + 1, offset - onset, upper
    )


def find_events(times, values, threshold: float = DEFAULT_THRESHOLD) -> list[Event]:
    """Runs of consecutive samples (in time order) with ``value >= threshold``; a NaN value (a
    sample that could not measure it) ends a run and bounds nothing."""
    vs = np.asarray(values, dtype=np.float64)
    if len(times) != len(vs):
        raise ValueError(f"{len(times)} times but {len(vs)} values")
    on = np.where(np.isfinite(vs), vs, -np.inf) >= threshold
    return [event_of(times, vs, a, b) for a, b in index_runs(on)]


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
    active_times: list[float] = field(default_factory=list)  # the frames at/above the threshold

    @property
    def throughout(self) -> bool:
        """Active in every frame that measured it (a held action, or a still image)."""
        return self.active_frames == self.n_frames

    @property
    def momentary(self) -> bool:
        """Too brief to time from samples (a blink): worded by the frames that caught it."""
        return self.code in MOMENTARY_AUS

    @property
    def min_s(self) -> float:
        """At least this long in all (the sum of its events' lower bounds)."""
        return sum(e.min_s for e in self.events)

    @property
    def max_s(self) -> float | None:
        """At most this long in all (the sum of its events' upper bounds; None if one has none)."""
        ups = [e.max_s for e in self.events]
        return None if any(u is None for u in ups) else float(sum(ups))

    def frames_phrase(self) -> str:
        return f"in {self.active_frames} of {self.n_frames} frames that measured it"

    def total_phrase(self) -> str:
        """How often and how long in all — the one phrase both the active-AUs cue and the time
        line use, so the two always agree: 'active in 4 of 30 frames that measured it, between
        0.3 and 0.5 s in all'; a blink: 'eyes closed in 2 of 8 frames that measured it (at 1.0,
        5.3 s)'.  (Frames that measured it: a face out of shot, or a withdrawn AU, is not one.)"""
        if self.momentary:
            shown = ", ".join(f"{t:.1f}" for t in self.active_times[:MAX_MOMENTS_WORDED])
            more = ", ..." if len(self.active_times) > MAX_MOMENTS_WORDED else ""
            return f"eyes closed {self.frames_phrase()} (at {shown}{more} s)"
        frames = sum(e.frames for e in self.events)
        how_long = duration_words(self.min_s, self.max_s, frames)
        return f"active {self.frames_phrase()}" + (f", {how_long} in all" if how_long else "")

    def phrase(self) -> str:
        """The AU as the active-AUs cue words it: by its peak, and when it was not active
        throughout, when and for how long the samples say."""
        word = f"{au_label(self.code)} ({intensity_word(self.peak)}, "
        if self.n_frames <= 1 or self.throughout:  # a still, or held: the time line says so
            return word + f"{self.peak:.2f})"
        return word + f"peak {self.peak:.2f} at {self.peak_s:.1f} s; {self.total_phrase()})"

    def timeline_phrase(self) -> str:
        """'AU12 lip corner puller: active in 4 of 30 frames that measured it, between 0.3 and 0.5 s in
        all: seen 1.2–1.5 s, apex 1.3 s (strong, 0.90), lasting between 0.3 and 0.5 s'."""
        head = f"{au_label(self.code)}: "
        if self.throughout:
            return head + (
                f"in all {self.n_frames} frames that measured it, apex {self.peak_s:.1f} s "
                f"({self._level(self.peak)})"
            )
        if self.momentary:
            return head + self.total_phrase() + f", strongest ({self._level(self.peak)})"
        strongest = sorted(self.events, key=lambda e: (-e.peak, e.onset_s))[:MAX_EVENTS_WORDED]
        parts = [
            (
                f"seen at {e.onset_s:.1f} s"
                if e.frames == 1
                else f"seen {e.onset_s:.1f}–{e.offset_s:.1f} s, apex {e.apex_s:.1f} s"
            )
            + f" ({self._level(e.peak)})"
            + (f", lasting {e.duration_phrase()}" if e.duration_phrase() else "")
            for e in sorted(strongest, key=lambda e: e.onset_s)
        ]
        more = len(self.events) - len(strongest)
        tail = f" (and {more} weaker {'time' if more == 1 else 'times'})" if more > 0 else ""
        return head + self.total_phrase() + ": " + "; then ".join(parts) + tail

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
            "min_s": _r(self.min_s, 3),
            "max_s": None if self.max_s is None else _r(self.max_s, 3),
            "frames": self.active_frames,
            "of_frames": self.n_frames,
            "throughout": self.throughout,
            "events": [e.to_dict() for e in self.events],
            "text": self.timeline_phrase(),
        }


def au_traces(
    series: list[tuple[float, Face]],
    threshold: float = DEFAULT_THRESHOLD,
    clip_times: list[float] | None = None,
) -> dict[str, AUTrace]:
    """Every AU measured on one face over time (``series``: (timestamp_s, face), time order).

    ``clip_times``: every sampled time of the clip (default: the series'), so that a frame
    without the face, or one that could not measure the AU, is known as such: it bounds no
    event (see :func:`event_of`)."""
    codes = sorted({c for _, f in series for c in f.aus}, key=au_sort_key)
    at = dict(series)
    all_t = sorted(set(clip_times) | set(at)) if clip_times is not None else [t for t, _ in series]
    out: dict[str, AUTrace] = {}
    for c in codes:
        pts = [(t, f) for t, f in series if c in f.aus]
        track = [float(at[t].aus[c]) if t in at and c in at[t].aus else float("nan") for t in all_t]
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
            events=find_events(all_t, track, threshold),
            active_times=[t for t, v in zip(ts, vs, strict=True) if v >= threshold],
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


def presence_events(seen) -> dict:
    """Name → the events in which it was seen, from (timestamp_s, names seen) per frame (time
    order) — the postures of a person, the (hand, region) self-touches of a subject; names come
    out sorted."""
    times = [t for t, _ in seen]
    names = sorted({n for _, ns in seen for n in ns})
    return {n: find_events(times, [1.0 if n in ns else 0.0 for _, ns in seen], 0.5) for n in names}


def span_word(onset_s: float, offset_s: float) -> str:
    """'at 1.2 s' for a moment (one sampled frame), else '1.0–1.4 s'."""
    if offset_s <= onset_s:
        return f"at {onset_s:.1f} s"
    return f"{onset_s:.1f}–{offset_s:.1f} s"


def span_phrase(events: list[Event]) -> str:
    """'at 1.2 s' / '1.0–1.4 s', joined: when a posture held, a hand touched, a pause fell."""
    return ", ".join(span_word(e.onset_s, e.offset_s) for e in events)
