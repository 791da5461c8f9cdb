"""Video and image decoding with PyAV / Pillow, decoding only the frames a sampling asks for.

Sparse samplings (``uniform:8`` of a 10-minute clip) seek to the keyframe before each target and
decode forward from there; dense ones decode straight through.  The decision is made per target
by the distance from the last decoded frame, so a sampling never costs more than a full decode.
Every failure to read a file becomes one :class:`~sovtp.errors.MediaError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from sovtp.errors import MediaError
from sovtp.media.sampling import Sampling
from sovtp.types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv"}
# Seek instead of decoding forward when the next target is more than this many frames away.
SEEK_GAP = 48


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


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


FRAME_DIR_FPS = 25.0  # assumed rate of a folder of frames (DFEW, FERV39k ship clips this way)


def frame_files(path: Path) -> list[Path]:
    """The image files of a frame folder, in name order (``00001.jpg``, ``00002.jpg`` ...)."""
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)


def is_frame_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any(q.suffix.lower() in IMAGE_EXTS for q in p.iterdir())


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(path, "no such file")
    if path.is_dir():
        if is_frame_dir(path):
            return
        raise MediaError(path, "is a directory with no image frames")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty")


def _load_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, rgba)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise MediaError(path, f"not a readable image ({e.__class__.__name__}: {e})") from e


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


def probe(path: str | Path) -> MediaInfo:
    """Read a file's header (no pixel decoding for videos)."""
    p = Path(path)
    _check_file(p)
    if is_image(p):
        img = _load_image(p)
        return MediaInfo(str(p), "image", img.shape[1], img.shape[0], 1, 0.0, 0.0)
    if p.is_dir():
        files = frame_files(p)
        img = _load_image(files[0])
        n = len(files)
        return MediaInfo(
            str(p), "frames", img.shape[1], img.shape[0], n, FRAME_DIR_FPS, n / FRAME_DIR_FPS
        )
    container = _open(p)
    try:
        vs = container.streams.video[0]
        fps, n, dur = _stream_facts(container, p)
        return MediaInfo(
            str(p),
            "video",
            int(vs.codec_context.width),
            int(vs.codec_context.height),
            n,
            fps,
            dur,
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def _frame_index(frame, start_pts: int, time_base: Fraction, fps: float, fallback: int) -> int:
    if frame.pts is None:
        return fallback
    return int(round(float((frame.pts - start_pts) * time_base) * fps))


def iter_frames(
    path: str | Path,
    sampling: str | Sampling = "uniform:8",
    stats: DecodeStats | None = None,
) -> Iterator[Frame]:
    """Yield the sampled frames of a video (or the single frame of an image), in order."""
    p = Path(path)
    _check_file(p)
    samp = Sampling.parse(sampling)
    stats = stats if stats is not None else DecodeStats()
    if is_image(p):
        img = _load_image(p)
        stats.decoded += 1
        yield Frame(0, 0.0, img)
        return
    if p.is_dir():  # a folder of frames: read only the sampled files
        files = frame_files(p)
        for t in samp.select(len(files), FRAME_DIR_FPS):
            stats.decoded += 1
            yield Frame(t, t / FRAME_DIR_FPS, _load_image(files[t]))
        return

    import av

    container = _open(p)
    try:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        fps, n, _ = _stream_facts(container, p)
        targets = samp.select(n, fps)
        tb = vs.time_base or Fraction(1, 90000)
        start_pts = vs.start_time or 0
        decoder: Iterator | None = None
        last = -(10**9)  # index of the last decoded frame
        seq = -1
        pending = None  # a frame decoded past one target that may serve the next
        got = 0
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
            got += 1
            ts = float((fr.pts - start_pts) * tb) if fr.pts is not None else t / fps
            yield Frame(t, ts, fr.to_ndarray(format="rgb24"))
        if got == 0:
            raise MediaError(p, "no frame could be decoded")
    except av.FFmpegError as e:
        raise MediaError(p, f"decoding failed ({e.__class__.__name__}: {e})") from e
    finally:
        container.close()


def load_frames(
    path: str | Path, sampling: str | Sampling = "uniform:8", stats: DecodeStats | None = None
) -> list[Frame]:
    """All sampled frames as a list (a clip's handful of frames; use iter_frames to stream)."""
    return list(iter_frames(path, sampling, stats))
