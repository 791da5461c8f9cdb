"""``apex:N`` sampling: a cheap landmark pass over the clip, then the frames worth annotating.

Uniform sampling treats a video as a bag of frames: a brow raise that lasts 0.4 s of a 6 s clip
falls between the samples, or is averaged away with the frames around it.  ``apex:N`` looks at
the whole clip first — every k-th frame (about ``scan_fps`` a second), shrunk to ``max_side``
pixels, through the face landmarker only (no pose) — scores each frame by how far its faces are
from their own neutral, and keeps the N strongest frames — spread in time by non-maximum
suppression, so that N frames are not N views of one half-second — plus the *onset* frame: the
last frame at rest, of the face that peaked, before its strongest movement, so that a reader sees
the face before and at its apex.

The score of a face is the distance of its expressive AUs (speech and blinks left out) from the
track's own resting level in this clip (a low percentile per AU, so a person's resting face —
the astronaut's constant half-smile — is not an expression), plus a small share of the absolute
activity, which ranks the frames of a clip that is expressive throughout.  A frame scores its
most expressive face.  Everything below :func:`scan` is a pure function over annotations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from sovtp.facs import EXPRESSIVE
from sovtp.media.sampling import Sampling
from sovtp.types import FrameAnnotation

APEX_VERSION = 2  # bump when the scoring or the choice changes: it is part of the cache key
BASELINE_PERCENTILE = 20.0
ABSOLUTE_WEIGHT = 0.25  # share of absolute AU activity in a face's score
ONSET_LEVEL = 0.25  # the onset is where the score falls below this share of the rise to the apex
MIN_RISE = 0.05  # a clip whose scores rise less than this has no movement to find an onset of
MAX_WINDOW_S = 1.0  # apex picks are at least min(span / 2N, this) seconds apart


@dataclass(frozen=True)
class ApexConfig:
    """How the landmark pass looks at a clip (part of the annotation cache key)."""

    scan_fps: float = 10.0  # frames a second looked at (a clip at 30 fps: every 3rd frame)
    max_scan: int = 300  # at most this many frames looked at (longer clips: a wider stride)
    max_side: int = 480  # frames are shrunk to this long side before detection
    onset: bool = True  # also keep the onset frame of the strongest movement

    def key(self) -> str:
        return f"apex-v{APEX_VERSION}:" + ",".join(f"{k}={v}" for k, v in asdict(self).items())


@dataclass
class ApexPlan:
    """What the pass found: the frames to annotate and why."""

    n: int
    indices: list[int]  # every frame to annotate, sorted (apex frames + onset)
    apex: list[int]  # the N strongest frames, sorted
    onset: int | None  # the last frame at rest before the strongest movement
    scanned: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    stride: int = 1

    @property
    def sampling(self) -> Sampling:
        """The resolved sampling: what decoding (and a later exact rerun) needs."""
        return Sampling("indices", indices=tuple(self.indices))

    def summary(self) -> str:
        """One line for ``ClipAnnotation.detectors`` (and so the run manifest)."""
        onset = "none" if self.onset is None else str(self.onset)
        return (
            f"scanned {len(self.scanned)} frames (every {self.stride}); "
            f"apex {','.join(map(str, self.apex))}; onset {onset}"
        )


def face_scores(frames: list[FrameAnnotation]) -> dict[tuple[int, int], float]:
    """(frame position, track id) → expression strength of that face, relative to its track."""
    rows: dict[int, list[tuple[int, dict[str, float]]]] = {}
    for pos, fa in enumerate(frames):
        for f in fa.faces:
            rows.setdefault(f.track_id, []).append((pos, f.aus))
    out: dict[tuple[int, int], float] = {}
    for tid, seq in rows.items():
        codes = sorted({c for _, aus in seq for c in aus if c in EXPRESSIVE})
        if not codes:
            out.update({(pos, tid): 0.0 for pos, _ in seq})
            continue
        v = np.array([[aus.get(c, np.nan) for c in codes] for _, aus in seq], dtype=np.float64)
        measured = ~np.isnan(v)
        base = np.zeros(len(codes))
        for j in range(len(codes)):  # a code measured in no frame keeps a 0 baseline
            if measured[:, j].any():
                base[j] = np.percentile(v[measured[:, j], j], BASELINE_PERCENTILE)
        v = np.where(measured, v, base)
        dev = np.clip(v - base, 0.0, None)
        score = np.sqrt((dev**2).sum(axis=1)) + ABSOLUTE_WEIGHT * np.sqrt((v**2).sum(axis=1))
        out.update({(pos, tid): float(s) for (pos, _), s in zip(seq, score, strict=True)})
    return out


def expression_scores(frames: list[FrameAnnotation]) -> list[float]:
    """One score per frame: its most expressive face (0 for a frame without a face)."""
    per_face = face_scores(frames)
    best = [0.0] * len(frames)
    for (pos, _), s in per_face.items():
        best[pos] = max(best[pos], s)
    return best


def spread_top(scores: list[float], n: int, times: list[float], window_s: float) -> list[int]:
    """Positions of the ``n`` strongest frames, no two within ``window_s`` of each other
    (greedy non-maximum suppression: the strongest first, its neighbours in time suppressed).
    When suppression leaves fewer than ``n`` frames, the strongest suppressed ones fill in."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    picked: list[int] = []
    for i in order:
        if len(picked) == n:
            break
        if all(abs(times[i] - times[j]) >= window_s for j in picked):
            picked.append(i)
    for i in order:  # fill, strongest first, when the window left too few
        if len(picked) >= n:
            break
        if i not in picked:
            picked.append(i)
    return picked


def window_for(times: list[float], n: int) -> float:
    """The suppression window of ``apex:N``: room for N picks twice over in the scanned span,
    at most :data:`MAX_WINDOW_S` (so a long clip's second event is not suppressed)."""
    span = (max(times) - min(times)) if times else 0.0
    return min(span / max(2 * n, 1), MAX_WINDOW_S)


def onset_of(apex: int, scores: list[float]) -> int | None:
    """The onset of the movement peaking at position ``apex`` of one face's ``scores`` (NaN
    where the face is not seen): the last low-intensity position before it — walking back while
    the score stays above :data:`ONSET_LEVEL` of the rise over this face's lowest score.  None
    when the face is lost on the way back (a cut: no rest of *this* face to show), the movement
    starts at the first position, or nothing moves."""
    vals = np.asarray(scores, dtype=np.float64)
    seen = np.isfinite(vals)
    if not seen[apex]:
        return None
    low = float(np.nanmin(vals))
    if vals[apex] - low < MIN_RISE:
        return None
    level = low + ONSET_LEVEL * (vals[apex] - low)
    j = apex
    while j >= 0 and seen[j] and vals[j] > level:
        j -= 1
    return j if j >= 0 and seen[j] else None


def choose(
    indices: list[int],
    scores: list[float],
    n: int,
    onset: bool = True,
    times: list[float] | None = None,
    face_scores: list[dict[int, float]] | None = None,
) -> tuple[list[int], int | None]:
    """The ``n`` highest-scoring frame indices, spread in time, and the onset frame.

    Picks are spread by non-maximum suppression within :func:`window_for` seconds of ``times``
    (default: the indices, one unit apart) — ``apex:6`` once put 3 of its 6 frames within
    0.4 s.  The onset belongs to the strongest pick: the last low-intensity frame of *the face
    that peaked there* before it (:func:`onset_of`; ``face_scores``, per position the score of
    each face seen, default: the frame's score as one face).
    """
    if not indices:
        return [], None
    ts = [float(i) for i in indices] if times is None else list(times)
    picks = spread_top(scores, n, ts, window_for(ts, n))
    top = sorted(indices[i] for i in picks)
    if not onset:
        return top, None
    a = min(range(len(scores)), key=lambda i: (-scores[i], i))
    per_face = face_scores or [{0: s} for s in scores]
    tid = max(per_face[a], key=lambda t: (per_face[a][t], -t)) if per_face[a] else None
    if tid is None:
        return top, None
    track = [f.get(tid, float("nan")) for f in per_face]
    j = onset_of(a, track)
    return top, (indices[j] if j is not None else None)


def plan(frames: list[FrameAnnotation], n: int, onset: bool = True, stride: int = 1) -> ApexPlan:
    """An :class:`ApexPlan` over annotated (tracked) frames of a pass."""
    idx = [fa.index for fa in frames]
    per: list[dict[int, float]] = [{} for _ in frames]
    for (pos, tid), sc in face_scores(frames).items():
        per[pos][tid] = sc
    scores = [max(d.values(), default=0.0) for d in per]
    times = [fa.timestamp_s for fa in frames]
    top, on = choose(idx, scores, n, onset, times, per)
    chosen = sorted(set(top) | ({on} if on is not None else set()))
    return ApexPlan(n, chosen, top, on, idx, [round(s, 4) for s in scores], stride)


def _shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    from PIL import Image

    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def scan(
    path,
    sampling: str | Sampling,
    scout,
    config: ApexConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> ApexPlan:
    """Run the landmark pass over a clip and choose its ``apex:N`` frames.

    ``scout`` is an open :class:`~sovtp.annotate.mediapipe.MediaPipeAnnotator` (best without
    pose: only faces are scored).  An image has one frame, which is its plan.
    """
    from sovtp.annotate.geometry import apply_geometry
    from sovtp.annotate.tracking import FaceTracker
    from sovtp.media.video import iter_frames, probe

    samp = Sampling.parse(sampling)
    if samp.kind != "apex":
        raise ValueError(f"scan needs an apex:N sampling, not {samp}")
    cfg = config or ApexConfig()
    n = int(samp.value)
    info = probe(path)
    if info.kind == "image":
        return ApexPlan(n, [0], [0], None, [0], [0.0])
    lo, hi = samp.window or (0, info.n_frames - 1)
    hi = min(hi, info.n_frames - 1)
    if lo > hi:
        raise ValueError(f"{samp}: the clip has only {info.n_frames} frames")
    fps = info.fps or 25.0
    span = hi - lo + 1
    stride = max(1, math.ceil(fps / cfg.scan_fps), math.ceil(span / cfg.max_scan))
    look = Sampling("indices", indices=tuple(range(lo, hi + 1, stride)))
    scout.start_clip()
    tracker = FaceTracker()
    anns: list[FrameAnnotation] = []
    for fr in iter_frames(path, look):
        fa = scout.detect(_shrink(fr.image, cfg.max_side), fr.index, fr.timestamp_s)
        tracker.update(fa)
        anns.append(fa)
        if progress:
            progress(1)
    apply_geometry(anns, still=False)
    return plan(anns, n, cfg.onset, stride)
