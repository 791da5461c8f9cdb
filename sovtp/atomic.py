"""The one way sovtp replaces a file: write beside it under a unique temporary name, then rename
over it (``os.replace`` is atomic on one file system).  A reader — another process, a resume after
``kill -9`` — sees the old file or the new one, never half of one; a failed write leaves the old
file and no temporary behind.

:func:`atomic_path` is for writers that need a path (gzip, safetensors, an encoder);
:func:`atomic_write` for bytes or text in hand; :func:`write_json` for a JSON document.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block ends
    without an exception, removed when it raises.  The file gets the mode a plain ``open`` would
    give it (``mkstemp`` makes it private)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, tmp.open("wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented JSON, atomically."""
    atomic_write(path, json.dumps(data, indent=1, default=str))
