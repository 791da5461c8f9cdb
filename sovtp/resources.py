"""Where the shipped prompt specs and evaluator specs live.

In a checkout (and an editable install) they are the top-level ``prompts/`` and ``evaluators/``
folders that researchers edit; in a wheel they are the data packages ``sovtp.prompts`` and
``sovtp.evaluators`` (mapped onto those folders in pyproject.toml).
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def _data_dir(name: str) -> Path:
    here = _REPO / name
    if here.is_dir():
        return here
    from importlib import resources

    try:
        return Path(str(resources.files(f"sovtp.{name}")))
    except ModuleNotFoundError as e:  # pragma: no cover - broken install
        raise FileNotFoundError(f"sovtp's {name}/ folder is missing from this install") from e


def prompts_dir() -> Path:
    """The prompts folder; ``SOVTP_PROMPTS_DIR`` points sovtp at a researcher's own copy."""
    env = os.environ.get("SOVTP_PROMPTS_DIR")
    return Path(env) if env else _data_dir("prompts")


def evaluators_dir() -> Path:
    return _data_dir("evaluators")


def cache_root() -> Path:
    """The user cache (annotations, responses, HF media); ``SOVTP_CACHE_DIR`` moves it."""
    env = os.environ.get("SOVTP_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sovtp"))
