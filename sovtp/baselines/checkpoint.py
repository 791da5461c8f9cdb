"""CNN checkpoints that cannot run code when they are read.

A pickle can call any function while it is loaded, and checkpoints are exactly what people
share, so sovtp never fully unpickles one.  A checkpoint is a folder (``sovtp train`` writes
``OUT/last/`` after every epoch)::

    checkpoint.json    format, labels, config (architecture, size, seed, sampling, ...),
                       normalisation, what the weights were initialised from, history, epoch,
                       class counts, data — plain JSON
    model.safetensors  the model's state dict (safetensors: tensors and a JSON header, no code)
    train_state.pt     optimiser + scheduler state for ``--resume`` only: tensors, numbers,
                       strings, lists and dicts that ``torch.load(weights_only=True)`` reads

A ``.pt`` file (sovtp's earlier format, or anyone's) is read with ``torch.load(weights_only=
True)`` only: a file that needs full unpickling is refused with one line that says how to
convert a file you trust (``sovtp models convert-checkpoint FILE --i-trust-this-file``).
Nothing here imports torch until a tensor is read: resolving a folder is a few ``stat`` calls.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from sovtp.errors import SovtpError

FORMAT = "sovtp-cnn/2"
CONFIG = "checkpoint.json"
WEIGHTS = "model.safetensors"
STATE = "train_state.pt"
LAST = "last"  # the checkpoint folder inside a training output folder
LEGACY = "last.pt"  # what `sovtp train` wrote before (one pickle)
STATE_KEYS = ("optimizer", "scheduler")  # what goes to train_state.pt (with the epoch)
TENSOR_KEYS = ("model", *STATE_KEYS)
NORMALISATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # ImageNet's
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle", ".tar")


class CheckpointError(SovtpError):
    """A checkpoint (or crop-set cache) sovtp will not or cannot read; the message names it."""


class UnsafeCheckpointError(CheckpointError):
    """A file only full unpickling could read — which could run code: refused."""


def convert_hint(path: str | Path) -> str:
    return f"sovtp models convert-checkpoint {path} --i-trust-this-file"


def _old_dirs(folder: Path) -> list[Path]:
    return sorted(folder.parent.glob(f".{folder.name}.old-*"))


def _recover(folder: Path) -> None:
    """A save interrupted between its two renames leaves the previous folder aside: put it back."""
    if not folder.exists():
        old = _old_dirs(folder)
        if old:
            os.replace(old[-1], folder)


def checkpoint_path(ckpt: str | Path) -> Path:
    """The file that stands for a checkpoint: ``checkpoint.json`` of a checkpoint folder (given
    as the folder, any file in it, or a training folder holding ``last/``), or a ``.pt`` file
    (a training folder's old ``last.pt``).  A ``.pt`` file is screened here with the
    weights-only unpickler and refused (:class:`CheckpointError`) when it needs more; a missing
    checkpoint gives the path it would have (the caller says it is not there)."""
    p = Path(ckpt)
    if p.is_dir():
        if (p / CONFIG).is_file():
            return p / CONFIG
        _recover(p / LAST)
        if (p / LAST / CONFIG).is_file():
            return p / LAST / CONFIG
        if (p / LEGACY).is_file():
            return screen(p / LEGACY)
        return p / LAST / CONFIG
    if p.name in (CONFIG, WEIGHTS, STATE) and (p.parent / CONFIG).is_file():
        return p.parent / CONFIG
    if p.is_file():
        if p.suffix.lower() in PICKLE_SUFFIXES:
            return screen(p)
        raise CheckpointError(
            f"{p}: not a sovtp checkpoint (a folder holding {CONFIG} and {WEIGHTS}, or a .pt "
            "file); a bare state dict is initial weights: sovtp train --weights FILE"
        )
    named_file = p.suffix.lower() in PICKLE_SUFFIXES or p.name in (CONFIG, WEIGHTS, STATE)
    return p if named_file else p / LAST / CONFIG  # not there: where it would be


def variant_name(ckpt: str | Path) -> str:
    """A checkpoint's name in tables: its training folder's (``OUT`` for ``OUT/last/``, ``OUT``
    for ``OUT/last.pt``), else the checkpoint folder's own.  Reads nothing."""
    p = Path(ckpt)
    if p.name in (CONFIG, WEIGHTS, STATE) or p.suffix.lower() in PICKLE_SUFFIXES:
        p = p.parent
    return p.parent.name if p.name == LAST else p.name


# -- reading -----------------------------------------------------------------------------------


def refusal(path: Path, advice: str | None = None) -> UnsafeCheckpointError:
    """The one line that refuses a file needing full unpickling."""
    names = unsafe_globals(path)
    more = ", ..." if len(names) > 3 else ""
    what = f" (it calls for {', '.join(names[:3])}{more})" if names else ""
    advice = advice or f"if you trust who made it, convert it once: {convert_hint(path)}"
    return UnsafeCheckpointError(
        f"{path}: refused: loading it needs full unpickling, which can run any code hidden in "
        f"the file{what}; {advice}"
    )


def unsafe_globals(path: Path) -> list[str]:
    """The globals a torch file names beyond the weights-only allowlist (read from its pickle
    opcodes, nothing run); empty when that cannot be told."""
    import torch

    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not torch's zip format: say nothing more
        return []


def safe_load(
    path: str | Path, map_location: Any = "cpu", *, mmap: bool = False, advice: str | None = None
) -> Any:
    """``torch.load(weights_only=True)``; anything it refuses, or cannot read, is a
    :class:`CheckpointError` naming the file (``advice``: what to do, when refused)."""
    import pickle
    import warnings

    import torch

    p = Path(path)
    try:
        with warnings.catch_warnings():  # an old pickle's protocol warning: the refusal says it
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(p, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        if mmap and "mmap" in str(e):
            return safe_load(p, map_location, advice=advice)
        raise refusal(p, advice) from None
    except RuntimeError as e:
        if mmap and "mmap" in str(e):  # an old (non-zip) torch file: no mmap, same unpickler
            return safe_load(p, map_location, advice=advice)
        raise CheckpointError(f"{p}: not a readable torch file ({_why(e)})") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{p}: not a readable torch file ({_why(e)})") from None


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {first_line(e)}"


def first_line(e: BaseException) -> str:
    """The line of an error that says what went wrong (torch's unpickler: the one after its
    boilerplate), without colour codes."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def check_legacy(path: Path, ck: Any) -> dict[str, Any]:
    if not isinstance(ck, dict) or not {"model", "config", "labels"} <= set(ck):
        raise CheckpointError(
            f"{path}: not a sovtp checkpoint (no model/config/labels); a plain state dict is "
            f"initial weights: sovtp train --weights {path}"
        )
    return check_config(path, ck)  # every reader of an old .pt: its config is untrusted too


def screen(path: Path) -> Path:
    """``path`` when the weights-only unpickler reads it as a sovtp checkpoint (memory-mapped:
    the tensors are not read), else :class:`CheckpointError`."""
    check_legacy(path, safe_load(path, mmap=True))
    return path


def read_meta(ckpt: str | Path) -> dict[str, Any]:
    """A checkpoint's configuration without its tensors: ``checkpoint.json`` (for a ``.pt``
    file: its non-tensor entries, read weights-only)."""
    p = checkpoint_path(ckpt)
    if p.name != CONFIG:
        if not p.exists():
            raise CheckpointError(f"no checkpoint at {p}")
        ck = check_legacy(p, safe_load(p, mmap=True))
        return {k: v for k, v in ck.items() if k not in TENSOR_KEYS}
    try:
        meta = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"no readable checkpoint at {p} ({first_line(e)})") from None
    if not isinstance(meta, dict) or not str(meta.get("format", "")).startswith("sovtp-cnn/"):
        raise CheckpointError(f"{p}: not a sovtp checkpoint (format {FORMAT} expected)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{p}: checkpoint format {meta.get('format')!r}; this sovtp reads {FORMAT}"
        )
    norm = meta.get("normalisation")
    if norm is not None and norm != NORMALISATION:
        raise CheckpointError(
            f"{p}: normalisation {norm} is not ImageNet's, which sovtp's CNN baselines use"
        )
    return check_config(p, meta)


# Constructor arguments a checkpoint may set: shapes and rates only.  A shared checkpoint's JSON
# is untrusted input too: free keys would reach timm's create_model (whose checkpoint_path=,
# pretrained_cfg_overlay= or an hf-hub: name load or fetch other files).
MODEL_KWARGS = (
    "width_mult",
    "image_size",
    "dropout",
    "attention_dropout",
    "drop_rate",
    "drop_path_rate",
)


def check_config(p: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Refuse a checkpoint whose configuration would have the model builder fetch or load
    anything: a model name that is not a plain name, constructor arguments that are not
    shapes or rates."""
    cfg = meta.get("config")
    if not isinstance(cfg, dict):
        return meta
    name = cfg.get("model")
    if not isinstance(name, str) or not name.replace("_", "").replace(".", "").isalnum():
        raise CheckpointError(f"{p}: model {name!r} is not a plain architecture name")
    kw = cfg.get("model_kwargs") or {}
    bad = (
        [k for k, v in kw.items() if k not in MODEL_KWARGS or not isinstance(v, (int, float))]
        if isinstance(kw, dict)
        else [kw]
    )
    if bad:
        raise CheckpointError(
            f"{p}: model_kwargs {bad or kw!r} not allowed in a checkpoint "
            f"(only {', '.join(MODEL_KWARGS)}, numbers)"
        )
    return meta


def read_checkpoint(
    ckpt: str | Path, *, state: bool = False, map_location: Any = "cpu"
) -> dict[str, Any]:
    """A checkpoint as one dict: ``checkpoint.json``'s entries, ``model`` (the state dict, from
    safetensors) and, with ``state``, ``optimizer`` and ``scheduler`` (weights-only)."""
    p = checkpoint_path(ckpt)
    if p.name != CONFIG:  # a .pt file the weights-only unpickler reads
        if not p.exists():
            raise CheckpointError(f"no checkpoint at {p}")
        return check_legacy(p, safe_load(p, map_location))
    meta = read_meta(p)
    ck = {**meta, "model": read_weights(p.parent / WEIGHTS, map_location)}
    if state:
        sp = p.parent / STATE
        keep = "sovtp writes it weights-only, so this one is not sovtp's: train afresh"
        st = safe_load(sp, "cpu", advice=keep) if sp.is_file() else None
        if not isinstance(st, dict) or not set(STATE_KEYS) <= set(st):
            raise CheckpointError(
                f"{p.parent}: no optimiser/scheduler state ({STATE}) to resume from"
            )
        ck.update({k: st[k] for k in STATE_KEYS})
    return ck


def read_weights(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    dev = str(map_location) if map_location is not None else "cpu"
    try:  # copies: safetensors maps the file, which a later save may replace
        return {k: v.clone() for k, v in load_file(path, device=dev).items()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path}: not readable weights (safetensors): {first_line(e)}"
        ) from None


# -- writing -----------------------------------------------------------------------------------


def _cpu_state(sd: dict[str, Any]) -> dict[str, Any]:
    # own contiguous CPU copies: safetensors refuses views and tensors sharing memory
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}


def share_like_umask(path: Path) -> None:
    """safetensors writes its files 0600 whatever the umask: give them the mode any other file
    gets (checkpoints are made to be shared)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def save_checkpoint(ck: dict[str, Any], folder: str | Path) -> Path:
    """Write ``ck`` (``model`` state dict, optional ``optimizer``/``scheduler``, JSON-able rest)
    as a checkpoint folder.  Atomic: the files go to a temporary folder, which then replaces
    ``folder`` by rename (a reader sees the old checkpoint or the new, never half of each).
    Returns the folder."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}"
    tmp = folder.parent / f".{folder.name}.part-{tag}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_cpu_state(ck["model"]), str(tmp / WEIGHTS), metadata={"format": FORMAT})
    share_like_umask(tmp / WEIGHTS)
    if any(k in ck for k in STATE_KEYS):
        st = {k: ck[k] for k in STATE_KEYS if k in ck}
        torch.save({**st, "epoch": ck.get("epoch")}, tmp / STATE)
    rest = {k: v for k, v in ck.items() if k not in (*TENSOR_KEYS, "format", "normalisation")}
    meta = {"format": FORMAT, **rest, "normalisation": NORMALISATION}
    (tmp / CONFIG).write_text(json.dumps(meta, indent=1, default=str))
    _recover(folder)
    old = folder.parent / f".{folder.name}.old-{tag}"
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder
