"""Training loop for the baselines: seeded, class-balanced, augmented on the device, mixed
precision on CUDA, a progress bar, a checkpoint every epoch, and ``resume``.

Why the loop looks like this: at GPU rates (thousands of images/s for MobileNetV2) the data path
is the work, not the model, so crops are cut once (:mod:`.data`), the whole uint8 crop tensor
moves to the device once, and a batch is an index, a cast and a few tensor ops (flip, a small
affine warp, colour jitter) on the device — no worker processes, no PIL per image.

Every random draw is seeded per epoch (``seed`` and the epoch number), so a run resumed from
its epoch-k checkpoint draws the same batches and augmentations a run that never stopped does.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sovtp.atomic import atomic_write
from sovtp.baselines.checkpoint import (
    LAST,
    CheckpointError,
    checkpoint_path,
    read_checkpoint,
    save_checkpoint,
)
from sovtp.baselines.data import CropSet
from sovtp.baselines.models import IMAGENET_MEAN, IMAGENET_STD, build_model, canonical
from sovtp.media.sampling import Sampling

log = logging.getLogger(__name__)

BALANCE = ("sampler", "loss", "none")


@dataclass
class TrainConfig:
    """Everything that decides a trained model (saved in its checkpoint)."""

    model: str = "mobilenet_v2"
    size: int = 224
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.05
    seed: int = 0
    balance: str = "sampler"  # sampler | loss | none
    augment: bool = True
    amp: bool | None = None  # None: bf16 autocast on CUDA only
    weights: str | None = None  # "imagenet", a state-dict path, or None (from scratch)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    steps_per_epoch: int | None = None  # None: one pass over the crops
    sampling: str = "uniform:8"
    subject: int | None = None
    device: str | None = None  # None: cuda when available
    # batches of un-augmented crops that re-estimate BatchNorm statistics after each epoch
    # ("precise BN"): a short run's running averages lag its weights and make eval mode guess
    precise_bn: int = 16
    freq: bool = False  # a 4th input channel: the crop's FFT high-pass (spoof detection)

    def __post_init__(self) -> None:
        self.model = canonical(self.model)
        Sampling.parse(self.sampling)  # refused before a run folder is claimed, not mid-crops
        if self.balance not in BALANCE:
            raise ValueError(f"balance must be one of {', '.join(BALANCE)}")
        for name, low in (("epochs", 1), ("batch_size", 1), ("size", 16), ("precise_bn", 0)):
            if int(getattr(self, name)) < low:
                raise ValueError(f"{name} must be at least {low}, not {getattr(self, name)}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be at least 1, not {self.steps_per_epoch}")
        for name in ("lr", "weight_decay"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0 or (name == "lr" and v == 0):
                raise ValueError(f"{name} must be a finite number above 0, not {v}")


def pick_device(device: str | None = None):
    import torch

    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def augment(x, gen):
    """Random flip, small affine warp (±10°, 0.9–1.1×, ±6 % shift), colour jitter (brightness,
    contrast, saturation ±20 %) on a float batch in [0, 1], on its device."""
    import torch
    import torch.nn.functional as F

    b, dev = x.shape[0], x.device

    def u(lo: float, hi: float):
        return lo + (hi - lo) * torch.rand(b, generator=gen, device=dev)

    flip = torch.rand(b, generator=gen, device=dev) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    ang = u(-10, 10) * math.pi / 180
    sc = u(0.9, 1.1)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack(
        [torch.stack([cos, -sin, u(-0.06, 0.06)], 1), torch.stack([sin, cos, u(-0.06, 0.06)], 1)],
        1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    x = x * u(0.8, 1.2)[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(0.8, 1.2)[:, None, None, None] + mean
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    x = (x - gray) * u(0.8, 1.2)[:, None, None, None] + gray
    return x.clamp_(0, 1)


def normalise(x):
    import torch

    m = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype)[None, :, None, None]
    s = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype)[None, :, None, None]
    return (x - m) / s


def class_counts(y, n_classes: int):
    import torch

    return torch.bincount(y[y >= 0], minlength=n_classes).float()


def _epoch_indices(y, cfg: TrainConfig, epoch: int, n_steps: int):
    """Crop indices of one epoch (n_steps × batch): class-balanced draws, or a shuffle."""
    import torch

    g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    n = n_steps * cfg.batch_size
    ok = (y >= 0).float()
    if cfg.balance == "sampler":
        counts = class_counts(y, int(y.max()) + 1)
        w = ok / counts.clamp(min=1)[y.clamp(min=0)]
        return torch.multinomial(w, n, replacement=True, generator=g)
    pool = torch.nonzero(ok, as_tuple=True)[0]
    reps = -(-n // len(pool))
    return torch.cat([pool[torch.randperm(len(pool), generator=g)] for _ in range(reps)])[:n]


def precise_bn(model, x, batch_size: int, n_batches: int, channels_last: bool = False) -> None:
    """Recompute every BatchNorm's running mean/var as the plain average over ``n_batches``
    batches of ``x`` (uint8 crops on the model's device), in train mode, without gradients."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or n_batches <= 0 or len(x) < 2:
        return  # BatchNorm cannot estimate from one image; keep the running averages
    moms = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was = model.training
    model.train()
    with torch.no_grad():
        for i in range(min(n_batches, math.ceil(len(x) / batch_size))):
            xb = x[i * batch_size : (i + 1) * batch_size]
            if len(xb) < 2:
                break
            xb = normalise(xb.float().div_(255))
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            model(xb)
    for m, mom in zip(bns, moms, strict=True):
        m.momentum = mom
    model.train(was)


def fit(
    train: CropSet,
    cfg: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    extra: dict[str, Any] | None = None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train on ``train``'s crops; a checkpoint folder ``out/last/`` (weights as safetensors,
    optimiser and scheduler state, and epoch, labels, config, weights provenance and history as
    JSON: :mod:`.checkpoint`) is written after every epoch.  With ``resume`` the loop continues
    after the checkpoint's epoch (an old ``out/last.pt`` is read weights-only); ``stop_after``
    ends the loop after that many epochs of ``cfg.epochs`` (a time-boxed job, resumed later —
    the schedule still spans ``cfg.epochs``).  Returns the last checkpoint dict."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / LAST
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    n_classes = len(train.labels)
    model, prov = build_model(cfg.model, n_classes, cfg.weights, size=cfg.size, **cfg.model_kwargs)
    if cfg.freq:
        from sovtp.baselines.freq import with_freq_channel

        model = with_freq_channel(model)
        prov["freq"] = True
    cuda = dev.type == "cuda"
    amp = cfg.amp if cfg.amp is not None else cuda
    model = model.to(dev, memory_format=torch.channels_last if cuda else torch.preserve_format)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    y = train.frame_y()
    n_lab = int((y >= 0).sum())
    if n_lab == 0:
        raise ValueError("no labelled crop to train on")
    steps = cfg.steps_per_epoch or max(1, math.ceil(n_lab / cfg.batch_size))
    total = steps * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total) / total))
    )
    start, history = 0, []
    if resume and checkpoint_path(out).exists():
        ckpt_p = checkpoint_path(out)  # out/last/checkpoint.json, or an old out/last.pt
        ck = read_checkpoint(ckpt_p, state=True)
        if ck["labels"] != train.labels or ck["config"]["model"] != cfg.model:
            raise ValueError(f"{ckpt_p}: trained on other labels or another model; not resumed")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start, history = ck["epoch"] + 1, list(ck["history"])
        log.info("resuming %s after epoch %d", ckpt_p, ck["epoch"] + 1)
    counts = class_counts(y, n_classes)
    cw = None
    if cfg.balance == "loss":
        cw = (counts.sum() / (n_classes * counts.clamp(min=1))).to(dev)
    x_dev = train.x.to(dev, non_blocking=True)  # once: batches are index + cast on the device
    y_dev = y.to(dev)
    ck: dict[str, Any] = {}
    end = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    for epoch in range(start, end):
        model.train()
        idx = _epoch_indices(y, cfg, epoch, steps).to(dev)
        gen = torch.Generator(device=dev).manual_seed(cfg.seed * 7919 + epoch)
        torch.manual_seed(cfg.seed * 7919 + epoch)  # dropout's draws: resumable too
        losses = []
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress)
        for k in bar:
            b = idx[k * cfg.batch_size : (k + 1) * cfg.batch_size]
            xb = x_dev[b].float().div_(255)
            if cfg.augment:
                xb = augment(xb, gen)
            xb = normalise(xb)
            if cuda:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(xb), y_dev[b], weight=cw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        # the BN pass reads a seeded shuffle of the crops, so its estimate is reproducible
        order = torch.randperm(len(x_dev), generator=torch.Generator().manual_seed(epoch))
        sel = order[: cfg.precise_bn * cfg.batch_size].to(dev)
        precise_bn(model, x_dev[sel], cfg.batch_size, cfg.precise_bn, cuda)
        history.append({"epoch": epoch + 1, "loss": sum(losses) / len(losses), "steps": steps})
        ck = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "epoch": epoch,
            "labels": list(train.labels),
            "config": asdict(cfg),
            "weights": prov,
            "history": history,
            "class_counts": counts.tolist(),
            "train_samples": len(train.ids),
            "train_crops": len(train),
            **(extra or {}),
        }
        save_checkpoint(ck, ckpt_dir)
        atomic_write(out / "config.json", (ckpt_dir / "checkpoint.json").read_text())
    if not ck and checkpoint_path(out).exists():  # resumed a finished run: nothing left to do
        ck = read_checkpoint(out, state=True)
    return ck


def training_samples(
    dataset_spec: str, evaluator: str | None, fold: int | None, split: str, limit: int | None
) -> tuple[list[Any], int | None]:
    """What a CNN trains on: the split (and fold) of a benchmark; under a cross-subject
    evaluator whose manifest has no fold column, every subject not dealt to test fold ``fold``
    (the bench run of ``--fold`` scores exactly the others: no subject on both sides).
    Returns the samples and the fold (the evaluator's default when none was given)."""
    from sovtp.data.sources import open_dataset, select

    opts: dict[str, Any] = {}
    if evaluator:
        from sovtp.evaluator import load_evaluator

        ev = load_evaluator(evaluator)
        opts = dict(ev.options)
        if fold is not None and ev.deals_folds(dataset_spec):
            from sovtp.data.manifest import manifest_columns

            has_split = "split" in set(manifest_columns(Path(dataset_spec)))
            every = list(open_dataset(dataset_spec, split=split if has_split else None, **opts))
            return list(select(ev.cross_subject_split(every, fold, train=True), limit)), fold
        if fold is None and ev.folds:
            fold = ev.fold
    return list(select(open_dataset(dataset_spec, split=split, fold=fold, **opts), limit)), fold


def train(
    dataset_spec: str,
    model_name: str = "mobilenet_v2",
    fold: int | None = None,
    out: str | Path = "ckpt",
    epochs: int = 10,
    *,
    evaluator: str | None = None,
    labels: str | list[str] | None = None,
    split: str = "train",
    limit: int | None = None,
    resume: bool = False,
    progress: bool = True,
    **config: Any,
) -> Path:
    """Train ``model_name`` on the training split (and fold) of a benchmark; returns the
    checkpoint path (``out/last/checkpoint.json``).  ``dataset_spec`` is any ``sovtp bench``
    source (a manifest, ``dfew:/data/DFEW``, ``hf:...``); crops are cut once into
    ``out/crops-<split>.safetensors`` and reused (by ``resume`` too) while the samples, size and
    sampling stay the same (a cache file that does not read as a crop set is cut again)."""
    from sovtp.baselines.data import build_cropset
    from sovtp.labels import load_label_set

    cfg = TrainConfig(model=model_name, epochs=epochs, **config)
    ls = None
    if evaluator:
        from sovtp.evaluator import load_evaluator

        ls = load_evaluator(evaluator).labels()
    elif labels:
        ls = load_label_set(labels)
    samples, fold = training_samples(dataset_spec, evaluator, fold, split, limit)
    if ls is not None:
        for s in samples:  # gold spelled as a synonym counts as its label
            if s.label is not None:
                s.label = ls.normalize(s.label) or s.label
        names = list(ls.labels)
    else:
        names = sorted({s.label for s in samples if s.label})
    present = sorted({s.label for s in samples if s.label in names})
    if len(present) < 2:
        raise ValueError(
            f"{dataset_spec}: the {split} split holds {len(samples)} samples of "
            f"{len(present)} class(es) {present}; a classifier needs at least two"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    crops_p = out / f"crops-{split}.safetensors"
    want = {"ids": [s.id for s in samples], "size": cfg.size, "sampling": cfg.sampling}
    crops = None
    if crops_p.exists():
        try:
            c = CropSet.load(crops_p)
        except CheckpointError as e:
            log.warning("crop cache not used, cutting the crops again: %s", e)
        else:
            if c.meta.get("key") == want and c.labels == names:
                crops = c
    if crops is None:
        crops = build_cropset(
            samples, names, cfg.size, cfg.sampling, subject=cfg.subject, progress=progress
        )
        crops.meta["key"] = want
        crops.save(crops_p)
    extra = {
        "data": {
            "source": dataset_spec,
            "split": split,
            "fold": fold,
            "limit": limit,
            "evaluator": evaluator,
            "no_face": crops.meta.get("no_face", []),
        }
    }
    fit(crops, cfg, out, resume=resume, progress=progress, extra=extra)
    return checkpoint_path(out)
