"""Only regular files are media: the gate every reader passes before it opens anything.

Why: ``open()`` on a FIFO blocks until a writer comes (forever, in a batch run), ``/dev/zero``
or ``/dev/urandom`` never end (a hash or decoder spins at 100 % CPU), and a socket or device is
no media either.  Such a path is refused here, from ``os.stat`` alone — before any byte is read —
with one line that says what it is.  A directory is media only when it is a frame folder (a
folder of images, as DFEW and FERV39k ship clips).

Reads are bounded in bytes: a file over :func:`max_bytes` (``SOVTP_MAX_MEDIA_BYTES``, 20 GB by
default; 0 lifts the cap) is refused from its size.  A regular file of bounded size is read in
bounded time (it cannot block or grow without end the way a FIFO or device does), and frame
pixels are capped apart (``SOVTP_MAX_PIXELS``, :mod:`sovtp.media.image`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sovtp.errors import MediaError, SovtpError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}

MAX_BYTES_ENV = "SOVTP_MAX_MEDIA_BYTES"
DEFAULT_MAX_BYTES = 20 * 1024**3

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def env_cap(name: str, default: int, unit: str) -> int:
    """A size cap read from the environment variable ``name`` (``default`` when unset or blank;
    ``2e9`` is read as 2000000000).  Both media caps (bytes here, pixels in
    :mod:`sovtp.media.image`) read their variable this one way.  A value that is no number is a
    :class:`~sovtp.errors.SovtpError` naming the variable: a setting error, not one bad file."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise SovtpError(f"{name}={raw!r} is not a number of {unit}") from None


def max_bytes() -> int:
    """The media size cap in bytes (``SOVTP_MAX_MEDIA_BYTES``; 0 or less: no cap)."""
    return env_cap(MAX_BYTES_ENV, DEFAULT_MAX_BYTES, "bytes")


def kind_of(mode: int) -> str | None:
    """What a non-regular, non-directory ``st_mode`` is, in words (None for a regular file or a
    directory)."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return None


def check_regular(path: str | Path, *, allow_frame_dir: bool = True) -> os.stat_result:
    """Refuse anything that is not a regular file (or, with ``allow_frame_dir``, a frame folder)
    before it is opened: a :class:`~sovtp.errors.MediaError` naming what it is.  Symbolic links
    are followed (a link to a FIFO is refused like the FIFO).  Returns the ``stat`` result."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise MediaError(p, "no such file") from None
    except OSError as e:
        raise MediaError(p, f"cannot stat ({e.strerror or e})") from None
    what = kind_of(st.st_mode)
    if what is not None:
        raise MediaError(p, f"is {what}, not a regular file: refused before any read")
    if stat.S_ISDIR(st.st_mode):
        if not allow_frame_dir:
            raise MediaError(p, "is a directory, not a file")
        if not is_frame_dir(p):
            raise MediaError(p, "is a directory with no image frames")
        return st
    if not stat.S_ISREG(st.st_mode):  # pragma: no cover - every other kind is listed above
        raise MediaError(p, "is not a regular file")
    cap = max_bytes()
    if cap > 0 and st.st_size > cap:
        raise MediaError(
            p, f"is {st.st_size} bytes, over the {cap}-byte cap ({MAX_BYTES_ENV} raises it)"
        )
    return st


# -- a frame folder: the images in it are its frames ------------------------------------------
def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def frame_files(path: Path) -> list[Path]:
    """The image files of a frame folder, in name order with numbers compared as numbers:
    CASME II and CAS(ME)² name frames ``img1.jpg`` .. ``img120.jpg`` without padding, where
    plain name order would put ``img10`` before ``img2`` (``00001.jpg`` sorts the same either way)."""
    frames = (p for p in path.iterdir() if is_image(p) and p.is_file())
    return sorted(frames, key=_natural)  # is_file: regular files only (a FIFO would block)


def _natural(p: Path) -> list[tuple[int, int | str]]:
    """A sort key that orders the digit runs of a name by value (``img2`` < ``img10``)."""
    import re

    return [(0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", p.name) if t]


def is_frame_dir(path: str | Path) -> bool:
    p = Path(path)
    # only regular files count as frames (a FIFO named 0001.jpg would block its reader)
    return p.is_dir() and any(is_image(q) and q.is_file() for q in p.iterdir())
