"""One writer for de-identified media: audio through ``audio_fn``, video frames through
``video_frames_fn``, everything else dropped.

Why one writer: the faces stage (frames) and the voice stage (audio) must land in the same output
file, and a stream that no stage handled must never be copied through by accident — subtitles,
data streams and metadata can carry names.  So the output holds exactly the first video stream
(re-encoded, H.264) and the first audio stream (re-encoded), and container metadata is not
copied.  An audio file in gives the same format out (WAV → PCM, MP3 → MP3, M4A → AAC, ...).

``video_frames_fn`` is a *stream* transform, ``Iterator[VideoFrame] -> Iterator[np.ndarray]``
yielding one RGB array per input frame in order, so a face tracker can look ahead (buffer) to
bridge detection gaps before it yields.  ``audio_fn(samples, rate) -> samples`` gets the whole
mono track at once (McAdams works per utterance).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from sovtp.errors import MediaError
from sovtp.media.audio import decode_mono
from sovtp.pool import threaded

AudioFn = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class VideoFrame:
    index: int  # position in presentation order
    timestamp_s: float
    image: np.ndarray  # H×W×3 uint8 RGB


VideoFramesFn = Callable[[Iterator[VideoFrame]], Iterator[np.ndarray]]

# output extension → (container format, audio codec)
AUDIO_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("wav", "pcm_s16le"),
    ".mp3": ("mp3", "libmp3lame"),
    ".m4a": ("ipod", "aac"),
    ".aac": ("adts", "aac"),
    ".flac": ("flac", "flac"),
    ".ogg": ("ogg", "libopus"),
    ".opus": ("opus", "libopus"),
}
VIDEO_FORMATS: dict[str, tuple[str, str]] = {
    ".mp4": ("mp4", "aac"),
    ".m4v": ("mp4", "aac"),
    ".mov": ("mov", "aac"),
    ".mkv": ("matroska", "aac"),
    ".webm": ("webm", "libopus"),
}
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


def _audio_packets(stream, samples: np.ndarray, rate: int, chunk: int = 1024) -> Iterator:
    """Encode mono float samples at ``rate`` through ``stream``'s codec; yields packets in order."""
    import av

    cc = stream.codec_context
    resampler = av.AudioResampler(format=cc.format.name, layout=cc.layout.name, rate=cc.sample_rate)
    pcm = np.clip(samples, -1.0, 1.0).astype(np.float32)
    pts = 0
    for i in range(0, len(pcm), chunk):
        frame = av.AudioFrame.from_ndarray(pcm[None, i : i + chunk], format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = pts
        frame.time_base = Fraction(1, rate)
        pts += frame.samples
        for f in resampler.resample(frame):
            yield from stream.encode(f)
    for f in resampler.resample(None):
        yield from stream.encode(f)
    yield from stream.encode(None)


def _add_audio_stream(out, codec: str, rate: int, channels: int):
    if codec == "libopus" and rate not in OPUS_RATES:
        rate = 48000
    stream = out.add_stream(codec, rate=rate)
    if codec == "aac":
        # FFmpeg's "fast" AAC coder: 0.04 s of CPU for 4 s of audio where the default
        # ("twoloop") took 0.12–0.20 s — 3–5 % of a real-time budget, for speech at 69 kb/s
        stream.options = {"aac_coder": "fast"}
    # the anonymised track is mono; stereo sources get it on both channels
    stream.layout = "stereo" if channels >= 2 else "mono"
    return stream


def refuse_overwrite(src: str | Path, dst: str | Path) -> None:
    """Refuse an output that is the input: the same path, or another name for the same file —
    a hard link or a symlink (same device and inode, ``os.path.samefile``).  Writing ``dst``
    would then write the raw file in place, and a failure halfway would leave neither."""
    import os

    src, dst = Path(src), Path(dst)
    same = src.resolve() == dst.resolve()
    if not same and dst.exists():
        try:
            same = os.path.samefile(src, dst)
        except OSError:
            same = False
    if same:
        raise MediaError(
            dst,
            "is the source file (the same path, a hard link or a symlink to it): refusing to "
            "overwrite it; write de-identified media elsewhere",
        )


def write_media(
    src: str | Path,
    dst: str | Path,
    video_frames_fn: VideoFramesFn | None = None,
    audio_fn: AudioFn | None = None,
    crf: int = 20,
    preset: str = "veryfast",
) -> dict:
    """Write ``src`` to ``dst`` with the video frames and the audio passed through the stages.

    A stage left as None passes its stream through unchanged (decoded and re-encoded).  Returns
    ``{"video_frames": n, "audio_s": seconds, "format": container}``.  ``dst`` must differ from
    ``src``: the raw file is never overwritten in place.
    """
    import av

    src, dst = Path(src), Path(dst)
    refuse_overwrite(src, dst)
    try:
        probe = av.open(str(src))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise MediaError(src, f"not a readable media file ({e})") from e
    with probe:
        has_video = bool(probe.streams.video)
        has_audio = bool(probe.streams.audio)
        channels = probe.streams.audio[0].codec_context.channels if has_audio else 1
        samples, rate = decode_mono(probe, probe.streams.audio[0]) if has_audio else (None, 0)
        if has_video:
            v = probe.streams.video[0]
            fps = v.average_rate or v.guessed_rate or Fraction(25)
    if not has_video and not has_audio:
        raise MediaError(src, "neither a video nor an audio stream")
    if samples is not None and audio_fn is not None:
        samples = np.asarray(audio_fn(samples, rate), dtype=np.float32)
    if not has_video:
        return encode_media(dst, samples=samples, rate=rate, channels=channels)
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"  # FFmpeg's own threads decode while the faces stage works
        tb = vin.time_base or Fraction(1, 90000)
        start = vin.start_time or 0

        from sovtp.media.video import upright

        def frames() -> Iterator[VideoFrame]:
            for i, f in enumerate(inp.decode(vin)):
                t = float((f.pts - start) * tb) if f.pts is not None else i / float(fps)
                yield VideoFrame(i, t, upright(f))  # rotation applied: faces are found upright

        # three stages on their own threads — decode, the faces stage, encode — so the codecs
        # work on one core while the detectors work on the other (all three spend their time
        # in C code that releases the GIL)
        source = threaded(frames())
        images = video_frames_fn(source) if video_frames_fn else (vf.image for vf in source)
        images = threaded(images)
        return encode_media(
            dst,
            frames=images,
            fps=fps,
            samples=samples,
            rate=rate,
            channels=channels,
            crf=crf,
            preset=preset,
        )


def encode_media(
    dst: str | Path,
    frames: Iterator[np.ndarray] | list[np.ndarray] | None = None,
    fps: float | Fraction | None = None,
    samples: np.ndarray | None = None,
    rate: int = 0,
    channels: int = 1,
    crf: int = 20,
    preset: str = "veryfast",
) -> dict:
    """Encode RGB ``frames`` (H.264, constant ``fps``) and/or mono ``samples`` into ``dst``.

    The container and audio codec follow ``dst``'s extension (see ``VIDEO_FORMATS`` /
    ``AUDIO_FORMATS``).  Written beside ``dst`` and renamed (:func:`sovtp.atomic.atomic_path`): a crash leaves no half
    file.
    Tests use it to mux synthesised speech onto a clip made from an image.  ``preset`` is
    x264's: ``veryfast`` by default; ``ultrafast`` spends ~2.5 ms less CPU a 640×360 frame
    (about 6 % of a real-time budget at 25 fps) for files ~8× larger at the same ``crf``.
    """
    import av

    dst = Path(dst)
    ext = dst.suffix.lower()
    table = VIDEO_FORMATS if frames is not None else AUDIO_FORMATS
    if ext not in table:
        kind = "a video" if frames is not None else "audio"
        raise MediaError(dst, f"write {kind} as one of {sorted(table)}")
    fmt, acodec = table[ext]
    from sovtp.atomic import atomic_path

    n_video = 0
    with atomic_path(dst) as tmp, av.open(str(tmp), "w", format=fmt) as out:
        astream = None
        if samples is not None:
            astream = _add_audio_stream(out, acodec, rate, channels)
        apackets = iter(_audio_packets(astream, samples, rate)) if astream else iter(())
        if frames is not None:
            n_video = _encode_video(out, frames, Fraction(fps or 25), apackets, crf, preset)
        for pkt in apackets:
            out.mux(pkt)
    return {
        "video_frames": n_video,
        "audio_s": (len(samples) / rate) if samples is not None else 0.0,
        "format": fmt,
    }


def _encode_video(
    out, frames, fps: Fraction, apackets: Iterator, crf: int, preset: str = "veryfast"
) -> int:
    """Encode frames at constant ``fps``, muxing audio packets up to each frame's time."""
    import av
    import cv2

    out_tb = Fraction(1) / fps
    vout = None
    pending = next(apackets, None)
    n = 0
    for n, img in enumerate(frames, start=1):
        if vout is None:
            vout = out.add_stream("libx264", rate=fps)
            vout.width = img.shape[1] - img.shape[1] % 2
            vout.height = img.shape[0] - img.shape[0] % 2
            vout.pix_fmt = "yuv420p"
            # one x264 thread: the encoder already has a pipeline thread of its own, and on
            # 2 cores x264's frame threads cost CPU (640×360, 100 frames: 6.6 ms a frame with
            # its default threads, 4.1 ms with one; same preset, same size)
            vout.options = {"crf": str(crf), "preset": preset, "threads": "1"}
        img = np.ascontiguousarray(img[: vout.height, : vout.width, :3], dtype=np.uint8)
        # RGB → I420 by OpenCV (BT.601 limited range, as swscale's default; same decoded
        # pixels) instead of PyAV's swscale inside encode: ~0.3–1 ms a 640×360 frame less
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420), "yuv420p")
        frame.pts = n - 1
        frame.time_base = out_tb
        for pkt in vout.encode(frame):
            out.mux(pkt)
        now = float((n - 1) * out_tb)
        while pending is not None and (
            pending.pts is None or pending.pts * pending.time_base <= now
        ):
            out.mux(pending)
            pending = next(apackets, None)
    if vout is not None:
        for pkt in vout.encode(None):
            out.mux(pkt)
    if pending is not None:
        out.mux(pending)
    return n
