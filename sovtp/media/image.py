"""Still images → upright RGB ``uint8`` arrays, whatever the file stores.

Pillow's ``convert("RGB")`` is not enough for what datasets ship: a 16-bit greyscale PNG
(mode ``I;16``) is *clipped* to 255 and reads as all white, a phone JPEG is stored sideways with
an EXIF orientation tag, and a transparent PNG has undefined colour under its alpha.  So:

- EXIF orientation is applied (the pixels the detector sees are the picture a viewer shows);
- 16-bit and 32-bit greyscale (``I;16*``, ``I``, ``F``) are *scaled* to 0..255, not clipped;
- anything with alpha (``RGBA``, ``LA``, ``PA``, ``P`` with a transparent index) is composited
  on white; palette, bilevel, CMYK, YCbCr ... go through Pillow's own conversion;
- a picture larger than a pixel cap is refused from its header, before a byte of pixels is
  decoded (a 20000×20000 PNG would take 1.2 GB as RGB): :func:`max_pixels`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sovtp.errors import MediaError, MediaTooLargeError
from sovtp.media.files import env_cap

DEFAULT_MAX_PIXELS = 100_000_000  # 100 megapixels: a 12k × 8k still passes, a bomb does not
MAX_PIXELS_ENV = "SOVTP_MAX_PIXELS"

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def max_pixels(limit: int | None = None) -> int:
    """The pixel cap in force: ``limit`` if given, else ``$SOVTP_MAX_PIXELS``, else 100 MP.
    ``0`` or a negative value means no cap (for a trusted folder of huge scans)."""
    if limit is not None:
        return int(limit)
    return env_cap(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS, "pixels")


def check_size(path: str | Path, width: int, height: int, limit: int | None = None) -> None:
    """Refuse a picture or video frame of more than :func:`max_pixels` pixels."""
    cap = max_pixels(limit)
    if cap > 0 and width * height > cap:
        raise MediaTooLargeError(
            path,
            f"{width}×{height} is {width * height / 1e6:.1f} megapixels, over the limit of "
            f"{cap / 1e6:g} (raise it with {MAX_PIXELS_ENV} if the file is trusted)",
        )


def _grey_to_u8(a: np.ndarray, mode: str) -> np.ndarray:
    """A high-bit-depth single-channel array → 0..255, scaled (never clipped)."""
    a = a.astype(np.float64)
    if mode in _SIXTEEN_BIT:
        a = a / 257.0  # 65535 → 255
    elif mode == "F" and a.size and float(a.max()) <= 1.0:
        a = a * 255.0  # a float image in 0..1
    elif a.size and float(a.max()) > 255.0:
        # "I" (what some Pillow versions give for a 16-bit PNG, or a 32-bit TIFF): assume 16-bit
        # when it fits, otherwise stretch the range that is there
        top = 65535.0 if float(a.max()) <= 65535.0 else float(a.max())
        a = a * (255.0 / top)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def to_rgb8(im: Any) -> np.ndarray:
    """A loaded Pillow image → an upright ``H×W×3`` ``uint8`` array (see the module docstring)."""
    from PIL import Image, ImageOps

    im = ImageOps.exif_transpose(im) or im
    mode = im.mode
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        g = _grey_to_u8(np.asarray(im), mode)
        return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    ):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def load_image(path: str | Path, limit: int | None = None) -> np.ndarray:
    """Read an image file as an upright RGB ``uint8`` array; every failure is a
    :class:`~sovtp.errors.MediaError` (:class:`~sovtp.errors.MediaTooLargeError` over the cap)."""
    from PIL import Image, UnidentifiedImageError

    from sovtp.media.files import check_regular

    p = Path(path)
    check_regular(p, allow_frame_dir=False)  # a FIFO or device would block or never end
    cap = max_pixels(limit)
    # Pillow refuses on its own above 2 × MAX_IMAGE_PIXELS (~179 MP); a user who raised our cap
    # above that must get it raised there too (a call-time setting, never at import)
    if cap <= 0 or (Image.MAX_IMAGE_PIXELS is not None and cap > Image.MAX_IMAGE_PIXELS):
        Image.MAX_IMAGE_PIXELS = None if cap <= 0 else cap
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                check_size(p, im.width, im.height, cap)  # from the header, before decoding
                im.load()
                return to_rgb8(im)
    except Image.DecompressionBombError as e:
        raise MediaTooLargeError(p, f"{e} (limit: {MAX_PIXELS_ENV})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise MediaError(p, f"not a readable image ({e.__class__.__name__}: {e})") from e
