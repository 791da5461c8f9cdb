"""Sample media made from ``skimage.data.astronaut()`` (public domain), for demos and tests.

Needs scikit-image (extra ``dev``); the clip is written with PyAV, so nothing third-party is
stored in the repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as e:
        raise ImportError("the sample needs scikit-image: pip install 'sovtp[dev]'") from e
    return data.astronaut()


def write_video(
    path: str | Path,
    frames: list[np.ndarray],
    fps: int = 10,
    codec: str = "libx264",
    gop: int = 10,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode RGB frames to a video file with PyAV (even sizes required by yuv420p)."""
    import av

    path = Path(path)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        s.codec_context.gop_size = gop
        for img in frames:
            for pkt in s.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            ):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def panning_clip(
    seconds: float = 3.0, fps: int = 10, size: tuple[int, int] = (640, 360)
) -> list[np.ndarray]:
    """The astronaut's face panning across a 640×360 frame (one face, moving)."""
    img = astronaut()
    w, h = size
    scale = h / img.shape[0] * 1.4
    from PIL import Image

    big = np.asarray(
        Image.fromarray(img).resize((int(img.shape[1] * scale), int(img.shape[0] * scale)))
    )
    n = int(seconds * fps)
    frames = []
    for k in range(n):
        canvas = np.full((h, w, 3), 40, dtype=np.uint8)
        x = int(-big.shape[1] * 0.25 + k * (w - big.shape[1] * 0.5) / max(n - 1, 1))
        y = -int(big.shape[0] * 0.05)
        xs, ys = max(0, x), max(0, y)
        crop = big[ys - y : ys - y + h - ys, xs - x : xs - x + w - xs]
        canvas[ys : ys + crop.shape[0], xs : xs + crop.shape[1]] = crop
        frames.append(canvas)
    return frames


def make_sample(out_dir: str | Path) -> Path:
    """Write ``astronaut_pan.mp4`` (3 s, 640×360) into ``out_dir`` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_video(out / "astronaut_pan.mp4", panning_clip())
