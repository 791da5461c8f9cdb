"""Video and image decoding with PyAV / Pillow, decoding only the frames a sampling asks for.

Sparse samplings (``uniform:8`` of a 10-minute clip) seek to the keyframe before each target and
decode forward from there; dense ones decode straight through.  The decision is made per target
by the distance from the last decoded frame, so a sampling never costs more than a full decode.
Every failure to read a file becomes one :class:`~sovtp.errors.MediaError`.

Frames come out as a viewer shows them: a phone clip's display matrix (rotation side data, the old
``rotate`` tag) is applied, so the detector never sees a face lying on its side.  A
variable-frame-rate clip (a phone's, a screen recording) is sampled by *presentation time*: its
packets' timestamps are listed first (demuxing, no decoding), ``uniform:N`` takes the N distinct
frames nearest to N times spread over the clip, ``fps:F`` the frame nearest each 1/F s, and a
frame's ``index`` is its position in presentation order.  Frames larger than the pixel cap
(:func:`sovtp.media.image.max_pixels`) are refused from the stream header.
"""

from __future__ import annotations

import logging
import stat
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from sovtp.errors import MediaError
from sovtp.media.files import frame_files, is_image
from sovtp.media.image import check_size, load_image
from sovtp.media.sampling import Sampling
from sovtp.types import Frame

log = logging.getLogger(__name__)

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv"}
# Seek instead of decoding forward when the next target is more than this many frames away.
SEEK_GAP = 48
# A stream whose average rate differs from its nominal rate by more than this is treated as
# variable-frame-rate (sampled by timestamps); a false alarm only costs one demux pass.
VFR_TOLERANCE = 0.01


@dataclass
class MediaInfo:
    path: str
    kind: str  # "image" | "video" | "frames" (a folder of frames)
    width: int
    height: int
    n_frames: int
    fps: float
    duration_s: float
    has_audio: bool = False


@dataclass
class DecodeStats:
    """How much work a decode did; benchmarks and tests read it."""

    decoded: int = 0
    seeks: int = 0


FRAME_DIR_FPS = 25.0  # assumed rate of a folder of frames (DFEW, FERV39k ship clips this way)


def _check_file(path: Path) -> None:
    from sovtp.media.files import check_regular

    st = check_regular(path)  # FIFOs, devices, sockets refused before any read
    if stat.S_ISDIR(st.st_mode):
        return
    if st.st_size == 0:
        raise MediaError(path, "file is empty")


def _load_image(path: Path, limit: int | None = None) -> np.ndarray:
    return load_image(path, limit)


def _open(path: Path):
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise MediaError(path, f"not a readable video ({e.__class__.__name__}: {e})") from e
    if not container.streams.video:
        container.close()
        raise MediaError(path, "no video stream")
    return container


def _stream_facts(container, path: Path) -> tuple[float, int, float]:
    """(fps, n_frames, duration_s) of the first video stream, estimating what the header omits."""
    vs = container.streams.video[0]
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    fps = float(rate) if rate else 25.0
    duration_s = 0.0
    if vs.duration is not None and vs.time_base is not None:
        duration_s = float(vs.duration * vs.time_base)
    elif container.duration is not None:
        duration_s = container.duration / 1_000_000
    n = int(vs.frames or 0)
    if n <= 0:
        n = int(round(duration_s * fps))
    if n <= 0:
        raise MediaError(path, "video stream reports no frames and no duration")
    if duration_s <= 0:
        duration_s = n / fps
    return fps, n, duration_s


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that make a decoded frame upright (its display matrix;
    FFmpeg turns an old ``rotate`` tag into the same side data)."""
    try:
        rot = frame.rotation or 0
    except (AttributeError, ValueError, TypeError):
        return 0
    return int(round(rot / 90.0)) % 4


def upright(frame) -> np.ndarray:
    """A decoded frame as RGB, turned by its rotation metadata (what a viewer shows)."""
    img = frame.to_ndarray(format="rgb24")
    k = _quarter_turns(frame)
    return np.ascontiguousarray(np.rot90(img, k)) if k else img


def is_vfr(vs) -> bool:
    """Whether a stream's average rate disagrees with its nominal rate (variable frame rate)."""
    avg, nominal = vs.average_rate, vs.base_rate or vs.guessed_rate
    if not avg or not nominal:
        return False
    return abs(float(avg) / float(nominal) - 1.0) > VFR_TOLERANCE


def probe(path: str | Path, max_pixels: int | None = None) -> MediaInfo:
    """Read a file's header (for a video, plus its first frame, whose display matrix says
    whether width and height swap).  ``max_pixels`` overrides the pixel cap."""
    p = Path(path)
    _check_file(p)
    if is_image(p):
        img = _load_image(p, max_pixels)
        return MediaInfo(str(p), "image", img.shape[1], img.shape[0], 1, 0.0, 0.0)
    if p.is_dir():
        files = frame_files(p)
        img = _load_image(files[0], max_pixels)
        n = len(files)
        return MediaInfo(
            str(p), "frames", img.shape[1], img.shape[0], n, FRAME_DIR_FPS, n / FRAME_DIR_FPS
        )
    import av

    container = _open(p)
    try:
        vs = container.streams.video[0]
        w, h = int(vs.codec_context.width), int(vs.codec_context.height)
        check_size(p, w, h, max_pixels)
        fps, n, dur = _stream_facts(container, p)
        try:
            first = next(container.decode(vs), None)
        except av.FFmpegError:
            first = None
        if first is not None and _quarter_turns(first) % 2:
            w, h = h, w
        return MediaInfo(
            str(p), "video", w, h, n, fps, dur, has_audio=bool(container.streams.audio)
        )
    finally:
        container.close()


def _frame_index(frame, start_pts: int, time_base: Fraction, fps: float, fallback: int) -> int:
    if frame.pts is None:
        return fallback
    return int(round(float((frame.pts - start_pts) * time_base) * fps))


def presentation_pts(path: str | Path) -> list[int]:
    """Every frame's presentation timestamp (stream time base), in order, read by demuxing only
    (packets, no pixels).  Packets the demuxer marks as discarded (edit lists) are left out."""
    container = _open(Path(path))
    try:
        vs = container.streams.video[0]
        pts = {
            pkt.pts
            for pkt in container.demux(vs)
            if pkt.pts is not None and pkt.size and not pkt.is_discard
        }
    finally:
        container.close()
    return sorted(pts)


def _nearest_distinct(times: list[float], targets: list[float]) -> list[int]:
    """Positions of distinct frames, increasing, each the nearest to its target time among those
    that still leave one frame for every later target (``len(targets) <= len(times)``)."""
    out: list[int] = []
    lo, n, k = 0, len(times), len(targets)
    for i, tau in enumerate(targets):
        hi = n - (k - i)  # the last position this target may take
        j = bisect_left(times, tau, lo, hi + 1)
        cands = [c for c in (j - 1, j) if lo <= c <= hi]
        best = min(cands, key=lambda c: abs(times[c] - tau))
        out.append(best)
        lo = best + 1
    return out


def select_by_time(
    samp: Sampling, times: list[float], fps: float, clip: str | Path = "<clip>"
) -> list[int]:
    """Frame positions a sampling picks from frames at ``times`` (seconds, sorted): ``uniform:N``
    N distinct frames nearest to the centres of N equal spans of the clip, ``fps:F`` the frame
    nearest each multiple of 1/F s; other kinds index frames by position (an index past the
    end is a :class:`MediaError` naming ``clip``)."""
    n = len(times)
    if n == 0:
        return []
    if samp.kind not in ("uniform", "fps"):
        return samp.select(n, fps, clip)
    step = float(np.median(np.diff(times))) if n > 1 else 0.0
    t0, span = times[0], times[-1] - times[0] + step
    if samp.kind == "uniform":
        k = min(int(samp.value), n)
        return _nearest_distinct(times, [t0 + (i + 0.5) * span / k for i in range(k)])
    picks: set[int] = set()
    dt, tau = 1.0 / samp.value, t0
    while tau < t0 + max(span, 1e-9):
        j = bisect_left(times, tau)
        cands = [c for c in (j - 1, j) if 0 <= c < n]
        picks.add(min(cands, key=lambda c: abs(times[c] - tau)))
        tau += dt
    return sorted(picks)


def _iter_vfr(p: Path, samp: Sampling, stats: DecodeStats, fps: float) -> Iterator[Frame]:
    """Sample a variable-frame-rate clip by presentation time (see the module docstring)."""
    pts = presentation_pts(p)
    container = _open(p)
    try:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        tb = vs.time_base or Fraction(1, 90000)
        start_pts = vs.start_time if vs.start_time is not None else (pts[0] if pts else 0)
        times = [float((x - start_pts) * tb) for x in pts]
        decoder: Iterator | None = None
        last = -(10**9)  # position of the last decoded frame
        for pos in select_by_time(samp, times, fps, p):
            if pos <= last:  # already decoded past it (a frame missing from the output)
                continue
            target = pts[pos]
            if decoder is None or pos - last > SEEK_GAP:
                if decoder is not None or pos > SEEK_GAP:
                    container.seek(target, stream=vs, backward=True, any_frame=False)
                    stats.seeks += 1
                decoder = container.decode(vs)
            fr = None
            for fr in decoder:
                stats.decoded += 1
                if fr.pts is not None:
                    last = bisect_left(pts, fr.pts)
                    if fr.pts >= target:
                        break
            else:
                fr = None
            if fr is None:
                log.warning("%s: clip ended before frame %d of %d", p, pos, len(pts))
                break
            yield Frame(last, float((fr.pts - start_pts) * tb), upright(fr))
    finally:
        container.close()


def _iter_cfr(
    p: Path, container: Any, samp: Sampling, stats: DecodeStats, fps: float, n: int
) -> Iterator[Frame]:
    """Sample a constant-frame-rate clip of ``n`` frames by frame index from an open
    ``container``: decode on while the next target is near, seek across gaps over ``SEEK_GAP``."""
    vs = container.streams.video[0]
    vs.thread_type = "AUTO"
    targets = samp.select(n, fps, p)
    tb = vs.time_base or Fraction(1, 90000)
    start_pts = vs.start_time or 0
    decoder: Iterator | None = None
    last = -(10**9)  # index of the last decoded frame
    seq = -1
    pending = None  # a frame decoded past one target that may serve the next
    for t in targets:
        if pending is not None and pending[0] >= t:
            idx, fr = pending
        else:
            pending = None
            if decoder is None or t - last > SEEK_GAP:
                if decoder is not None or t > SEEK_GAP:
                    target_pts = start_pts + int(t / fps / tb)
                    container.seek(target_pts, stream=vs, backward=True, any_frame=False)
                    stats.seeks += 1
                    seq = -1
                decoder = container.decode(vs)
                last = -(10**9)
            fr, idx = None, -1
            for fr in decoder:
                stats.decoded += 1
                seq += 1
                idx = _frame_index(fr, start_pts, tb, fps, seq)
                last = idx
                if idx >= t:
                    break
            else:
                fr = None
            if fr is None:
                log.warning("%s: clip ended before frame %d (header said %d frames)", p, t, n)
                break
        pending = (idx, fr) if idx > t else None
        ts = float((fr.pts - start_pts) * tb) if fr.pts is not None else t / fps
        yield Frame(t, ts, upright(fr))


def iter_frames(
    path: str | Path,
    sampling: str | Sampling = "uniform:8",
    stats: DecodeStats | None = None,
    max_pixels: int | None = None,
) -> Iterator[Frame]:
    """Yield the sampled frames of a video (or the single frame of an image), in order, upright.
    ``max_pixels`` overrides the pixel cap (``SOVTP_MAX_PIXELS``, 100 MP by default)."""
    p = Path(path)
    _check_file(p)
    samp = Sampling.parse(sampling)
    stats = stats if stats is not None else DecodeStats()
    if is_image(p):
        img = _load_image(p, max_pixels)
        stats.decoded += 1
        yield Frame(0, 0.0, img)
        return
    if p.is_dir():  # a folder of frames: read only the sampled files
        files = frame_files(p)
        for t in samp.select(len(files), FRAME_DIR_FPS, p):
            stats.decoded += 1
            yield Frame(t, t / FRAME_DIR_FPS, _load_image(files[t], max_pixels))
        return

    import av

    container = _open(p)
    got = 0
    try:
        vs = container.streams.video[0]
        check_size(p, int(vs.codec_context.width), int(vs.codec_context.height), max_pixels)
        fps, n, _ = _stream_facts(container, p)
        if is_vfr(vs):
            container.close()
            frames = _iter_vfr(p, samp, stats, fps)
        else:
            frames = _iter_cfr(p, container, samp, stats, fps, n)
        with closing(frames):  # a consumer that stops early closes the decoder's file now
            for frame in frames:
                got += 1
                yield frame
    except av.FFmpegError as e:
        raise MediaError(p, f"decoding failed ({e.__class__.__name__}: {e})") from e
    finally:
        container.close()
    if got == 0:  # one rule for both decoders: a clip that yields nothing is an error
        raise MediaError(p, "no frame could be decoded")


def load_frames(
    path: str | Path,
    sampling: str | Sampling = "uniform:8",
    stats: DecodeStats | None = None,
    max_pixels: int | None = None,
) -> list[Frame]:
    """All sampled frames as a list (a clip's handful of frames; use iter_frames to stream)."""
    return list(iter_frames(path, sampling, stats, max_pixels))
