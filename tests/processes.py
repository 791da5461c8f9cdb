"""Signal a real ``sovtp`` process mid-run: the way Ctrl-C or a scheduler's SIGTERM reaches it."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any


def signal_when(
    argv: Sequence[Any], ready: Callable[[], bool], sig: int, wait_s: float = 60, **popen: Any
) -> tuple[int, str, str]:
    """Start ``argv``, send ``sig`` once ``ready()`` holds (or the process ended, or ``wait_s``
    passed) and return its exit code, stdout and stderr.  Output goes to files, not pipes: a
    chatty child never blocks on a full pipe before it is signalled."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(list(map(str, argv)), stdout=out, stderr=err, text=True, **popen)
        try:
            deadline = time.monotonic() + wait_s
            while not ready() and time.monotonic() < deadline and p.poll() is None:
                time.sleep(0.05)
            os.kill(p.pid, sig)
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read()
