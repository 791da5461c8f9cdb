"""A trained checkpoint → one :class:`~sovtp.records.Prediction` per sample.

A clip's prediction is the mean of its frames' logits (the subject's aligned face in each
sampled frame); ``scores`` are the softmax of that mean, ``label`` its arg-max and
``confidence`` the winner's probability.  A sample with no face crop gets an invalid row with
its reason — counted wrong, never dropped, like an LLM's unparseable answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovtp.baselines.checkpoint import read_checkpoint, variant_name
from sovtp.baselines.data import CropSet
from sovtp.baselines.models import build_model
from sovtp.baselines.train import normalise, pick_device
from sovtp.records import Prediction


@dataclass
class Loaded:
    model: Any
    labels: list[str]
    config: dict[str, Any]
    device: Any
    name: str  # the system name: cnn:<model>

    @property
    def size(self) -> int:
        return int(self.config["size"])


def load(ckpt: str | Path, device: str | None = None) -> Loaded:
    """The model of a checkpoint, in eval mode: a checkpoint folder (or a file in it), a
    training folder (its ``last/``), or a ``.pt`` file the weights-only unpickler reads — a
    file that needs more is refused (:class:`~sovtp.baselines.checkpoint.CheckpointError`)."""
    ck = read_checkpoint(ckpt)
    cfg = ck["config"]
    model, _ = build_model(
        cfg["model"], len(ck["labels"]), None, size=cfg["size"], **cfg.get("model_kwargs", {})
    )
    if cfg.get("freq"):
        from sovtp.baselines.freq import with_freq_channel

        model = with_freq_channel(model)
    model.load_state_dict(ck["model"])
    dev = pick_device(device or cfg.get("device"))
    model.to(dev).eval()
    return Loaded(model, list(ck["labels"]), cfg, dev, f"cnn:{cfg['model']}")


def crop_logits(m: Loaded, x, batch_size: int = 128):
    """Logits (N, C) of uint8 crops (N, 3, S, S), on CPU."""
    import torch

    outs = []
    amp = m.device.type == "cuda"
    with torch.inference_mode(), torch.autocast(m.device.type, torch.bfloat16, enabled=amp):
        for i in range(0, len(x), batch_size):
            xb = normalise(x[i : i + batch_size].to(m.device).float().div_(255))
            outs.append(m.model(xb).float().cpu())
    return torch.cat(outs) if outs else torch.zeros(0, len(m.labels))


NO_CROP = "no face crop"  # the reason a clip without a face crop gets an invalid row


def logits_prediction(m: Loaded, sid: str, logits, gold: str | None, variant: str) -> Prediction:
    """A clip's frame logits (N, C) → its Prediction: softmax of the mean logit, arg-max label,
    ranking and scores; ``None`` (no crop) → an invalid row with its reason."""
    import torch

    if logits is None:
        return Prediction(
            sample_id=sid,
            system=m.name,
            variant=variant,
            gold=gold,
            parse_status="invalid",
            error=NO_CROP,
        )
    prob = torch.softmax(logits.float().mean(0), 0)
    k = int(prob.argmax())
    return Prediction(
        sample_id=sid,
        system=m.name,
        variant=variant,
        label=m.labels[k],
        ranking=[m.labels[i] for i in prob.argsort(descending=True).tolist()],
        scores={lab: float(p) for lab, p in zip(m.labels, prob.tolist(), strict=True)},
        confidence=float(prob[k]),
        parse_status="ok",
        gold=gold,
    )


def crops_prediction(
    m: Loaded,
    crops: Any,
    sid: str,
    gold: str | None,
    variant: str,
    *,
    logits_of: Callable[[Any], Any] | None = None,
    batch_size: int = 128,
) -> Prediction:
    """The one crop → logits → Prediction path of every CNN answer (``predict`` and
    :class:`~sovtp.baselines.system.CnnSystem`, with or without TTA): a clip's uint8 crops
    (N, S, S, 3), as :func:`~sovtp.baselines.data.clip_crops` / ``sample_crops`` cut them, through
    ``logits_of`` (default: the checkpoint in eval mode; a TTA adapter's ``step`` adapts as it
    answers), frame logits averaged.  No crop → an invalid row (``logits_of`` is not called:
    an adapter sees only real batches)."""
    if len(crops) == 0:
        return logits_prediction(m, sid, None, gold, variant)
    import torch

    x = torch.as_tensor(crops).permute(0, 3, 1, 2).contiguous()
    logits = logits_of(x) if logits_of is not None else crop_logits(m, x, batch_size)
    return logits_prediction(m, sid, logits, gold, variant)


def predict_crops(
    ckpt: str | Path | Loaded, crops: CropSet, variant: str = "", batch_size: int = 128
) -> list[Prediction]:
    """Predictions for the samples of a crop set (gold from its ``y``, when labelled)."""
    m = ckpt if isinstance(ckpt, Loaded) else load(ckpt)
    logits = crop_logits(m, crops.x, batch_size)
    out = []
    for i, sid in enumerate(crops.ids):
        sel = logits[crops.owner == i]
        gy = int(crops.y[i])
        gold = crops.labels[gy] if gy >= 0 else None
        out.append(logits_prediction(m, sid, sel if len(sel) else None, gold, variant))
    return out


def predict(
    ckpt: str | Path | Loaded,
    samples: Iterable[Any],
    *,
    sampling: str | None = None,
    batch_size: int = 128,
    device: str | None = None,
    variant: str | None = None,
    detector: Any = None,
) -> list[Prediction]:
    """One Prediction per sample: its aligned face crops (annotation cache) through the model,
    logits averaged over frames.  ``sampling`` defaults to the one the model was trained with;
    ``variant`` to the checkpoint's folder name."""
    from sovtp.baselines.data import sample_crops

    m = ckpt if isinstance(ckpt, Loaded) else load(ckpt, device)
    var = variant if variant is not None else _variant(ckpt)
    samp = sampling or m.config.get("sampling", "uniform:8")
    own = None
    if detector is None:
        from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

        own = detector = MediaPipeAnnotator(DetectorConfig()).__enter__()
    out = []
    try:
        for s in samples:
            if getattr(s, "error", None):
                out.append(
                    Prediction(
                        sample_id=s.id,
                        system=m.name,
                        variant=var,
                        gold=s.label,
                        parse_status="invalid",
                        error=s.error,
                    )
                )
                continue
            c = sample_crops(s, m.size, samp, subject=m.config.get("subject"), detector=detector)
            out.append(crops_prediction(m, c, s.id, s.label, var, batch_size=batch_size))
    finally:
        if own is not None:
            own.close()
    return out


def _variant(ckpt: Any) -> str:
    return "" if isinstance(ckpt, Loaded) else variant_name(ckpt)


def accuracy(preds: Sequence[Prediction]) -> float:
    """Share of predictions equal to their gold (invalid counts as wrong)."""
    scored = [p for p in preds if p.gold is not None]
    return sum(p.label == p.gold for p in scored) / len(scored) if scored else 0.0
