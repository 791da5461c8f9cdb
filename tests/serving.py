"""Start ``transformers serve`` for a test: a real OpenAI-compatible server in a process of its
own, waited for until ``/v1/models`` answers, stopped (SIGTERM, then kill) when the test is done.
The served-model tests (a tiny random VLM, the real SmolLM2) share it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 240.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def transformers_serve(
    launch: str, args: list[str], port: int, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``python -c launch *args`` (``transformers serve`` re-runs its launching script in the
    model process, so it is started from a string) and yield its base URL once it answers; the
    server's own output goes to ``log_path`` and into the failure message."""
    env = (
        os.environ
        | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "NO_COLOR": "1"}
        | (env or {})
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", launch, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        t_end = time.monotonic() + START_TIMEOUT_S
        while not is_up(f"{base_url}/models"):
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited {proc.returncode}:\n{log_path.read_text()}")
            if time.monotonic() > t_end:
                pytest.fail(f"transformers serve not up in {START_TIMEOUT_S:.0f} s")
            time.sleep(0.5)
        yield base_url
    finally:
        proc.terminate()  # uvicorn shuts down on SIGTERM
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
