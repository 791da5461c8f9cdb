"""Audio track → mono float32 numpy array (for de-identification and audio cues)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sovtp.errors import MediaError


def decode_mono(container, stream, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """An open container's audio ``stream`` as mono float32 in [-1, 1], resampled to
    ``sample_rate`` (None: the stream's own rate)."""
    import av

    rate = int(sample_rate or stream.rate or stream.codec_context.sample_rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks: list[np.ndarray] = []
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    data = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return data, rate


def load_audio(path: str | Path, sample_rate: int | None = 16000) -> tuple[np.ndarray, int]:
    """Decode the first audio stream, downmixed to mono, resampled to ``sample_rate``.

    ``sample_rate=None`` keeps the stream's own rate.  Returns ``(samples, rate)`` with samples
    in [-1, 1].  A file without an audio stream raises :class:`MediaError`.
    """
    import av

    from sovtp.media.files import check_regular

    p = Path(path)
    if check_regular(p, allow_frame_dir=False).st_size == 0:  # FIFOs, devices refused unread
        raise MediaError(p, "file is empty")
    try:
        container = av.open(str(p))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise MediaError(p, f"not a readable media file ({e.__class__.__name__}: {e})") from e
    try:
        if not container.streams.audio:
            raise MediaError(p, "no audio stream")
        return decode_mono(container, container.streams.audio[0], sample_rate)
    except av.FFmpegError as e:
        raise MediaError(p, f"audio decoding failed ({e})") from e
    finally:
        container.close()


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited polyphase resampling (scipy); identity when the rates already agree."""
    if int(rate) == int(target):
        return np.asarray(samples, dtype=np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    out = resample_poly(np.asarray(samples, dtype=np.float64), int(target) // g, int(rate) // g)
    return out.astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM WAV bytes (stdlib ``wave``): what ``input_audio`` parts carry."""
    import io
    import wave

    x = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    pcm = np.round(x * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Inverse of :func:`wav_bytes` for 16-bit PCM (mono, or downmixed)."""
    import io
    import wave

    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError("only 16-bit PCM WAV is read here")
        n_ch, rate = w.getnchannels(), w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    return pcm.reshape(-1, n_ch).mean(axis=1) / 32767.0, rate
