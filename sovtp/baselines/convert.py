"""Converting an old or foreign ``.pt`` checkpoint into the safe folder format
(:mod:`sovtp.baselines.checkpoint`), the one place a pickle is ever read beyond weights-only —
and then only with the user's ``--i-trust-this-file``, only the globals it names allowed.

Apart from the format module on purpose: reading and writing checkpoints needs no model, while
a conversion proves the weights load into the architecture their config names
(:mod:`sovtp.baselines.models`), which itself reads weights through the format module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sovtp.baselines.checkpoint import (
    CONFIG,
    CheckpointError,
    UnsafeCheckpointError,
    check_config,
    check_legacy,
    first_line,
    safe_load,
    save_checkpoint,
    unsafe_globals,
)


def convert_checkpoint(
    src: str | Path, dst: str | Path | None = None, *, trust: bool = False
) -> Path:
    """An old or foreign ``.pt`` checkpoint → a checkpoint folder (default: the file's path
    without its suffix).  Read weights-only; a file that needs full unpickling is read only
    with ``trust`` — and then only the globals its pickle names are allowed, for this one load
    (a pickle that needs more, e.g. bound methods, is refused even so: load such a file
    yourself, if you trust it, and give the dict to :func:`save_converted`)."""
    src = Path(src)
    if not src.is_file():
        raise CheckpointError(f"no such checkpoint file: {src}")
    try:
        ck = safe_load(src)
    except UnsafeCheckpointError:
        if not trust:
            raise
        ck = _trusted_load(src)
    return save_converted(ck, src, dst)


def save_converted(ck: Any, src: str | Path, dst: str | Path | None = None) -> Path:
    """A checkpoint dict read from ``src`` (``model``, ``config``, ``labels``; ``optimizer`` and
    ``scheduler`` kept for ``--resume``) → a checkpoint folder, once its weights are checked to
    load into the architecture its config names."""
    src = Path(src)
    out = Path(dst) if dst is not None else src.with_suffix("")
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / CONFIG).is_file():
        # the conversion replaces the folder whole: never a folder of someone's other files
        raise CheckpointError(f"{out}: a folder that is not a sovtp checkpoint; choose a new -o")
    ck = dict(check_legacy(src, ck))
    if not isinstance(ck["config"], dict):
        ck["config"] = dict(vars(ck["config"]))  # e.g. a dataclass or a namespace
    check_config(src, ck)
    ck["converted_from"] = str(src)
    _check_architecture(src, ck)
    return save_checkpoint(ck, out)  # other values JSON cannot hold are written as text


def _trusted_load(src: Path) -> Any:
    """Trust, narrowly: allow the globals the pickle names (and the classes the weights-only
    unpickler then asks for, one by one), for this one weights-only load."""
    import re

    import torch

    allow = [_import(src, n) for n in unsafe_globals(src)]
    for _ in range(32):
        with torch.serialization.safe_globals(allow):
            try:
                return torch.load(src, map_location="cpu", weights_only=True)
            except Exception as e:
                msg = str(e)
                need = re.search(
                    r"but got <class '([\w.]+)'>|Unsupported global: GLOBAL ([\w.]+)", msg
                )
                if need is None:
                    raise CheckpointError(
                        f"{src}: cannot convert: its pickle needs more than named globals "
                        f"({first_line(e)[:160]}); if you trust it, load it yourself and give the "
                        "dict to sovtp.baselines.convert.save_converted (README: CNN baselines)"
                    ) from None
                obj = _import(src, need.group(1) or need.group(2))
                if any(obj is a for a in allow):
                    raise CheckpointError(
                        f"{src}: cannot convert ({first_line(e)[:160]})"
                    ) from None
                allow.append(obj)
    raise CheckpointError(f"{src}: cannot convert: it names too many globals")


def _import(src: Path, name: str) -> Any:
    import importlib

    mod, _, attr = name.rpartition(".")
    obj: Any = None
    while mod:  # "pkg.mod.Class.method": the longest importable module, then attributes
        try:
            obj = importlib.import_module(mod)
            break
        except ImportError:
            mod, _, head = mod.rpartition(".")
            attr = f"{head}.{attr}"
    try:
        if obj is None:
            raise ImportError(f"no module for {name}")
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise CheckpointError(
            f"{src}: cannot convert: it needs {name}, which is not importable here ({e})"
        ) from None
    return obj


def _check_architecture(src: Path, ck: dict[str, Any]) -> None:
    from sovtp.baselines.models import build_model

    cfg = ck["config"]
    try:
        model, _ = build_model(
            cfg["model"],
            len(ck["labels"]),
            None,
            size=cfg.get("size"),
            **cfg.get("model_kwargs", {}),
        )
        if cfg.get("freq") or ck.get("freq"):
            from sovtp.baselines.freq import with_freq_channel

            model = with_freq_channel(model)
        model.load_state_dict(ck["model"])
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(
            f"{src}: its weights do not fit its config ({first_line(e)})"
        ) from None
