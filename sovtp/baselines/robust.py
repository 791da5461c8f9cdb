"""Adversarial robustness of a CNN baseline: FGSM and PGD (L∞) on its face crops, accuracy
against ε, and the same perturbation carried into full frames for a vision-LLM system.

Conventions:

- ε is given in grey levels (units of 1/255), the usual 0, 1, 2, 4, 8 scale, and applies to
  the uint8 pixels the model reads (before its ImageNet normalisation).  Every perturbed image
  is returned as uint8: after rounding, each pixel is clipped to [x − ε, x + ε] ∩ [0, 255], so
  the perturbation stays within ε *after* the uint8 round trip (ε is whole grey levels, so
  rounding inside that box never leaves it).  ε = 0 returns the input unchanged, so its
  accuracy equals the clean accuracy exactly.
- FGSM (Goodfellow et al. 2015): one step x + ε·sign(∇ₓ CE).
- PGD (Madry et al. 2018): a uniform random start in the ε-ball (seeded), then ``steps``
  (default 10) steps of size ``alpha`` (default 2.5·ε/steps, Madry's choice), each followed by
  projection onto the ε-ball and [0, 1].
- The loss is the cross-entropy against the gold label (the model's own prediction for an
  unlabelled crop), in float32, model in eval mode (BatchNorm uses its running statistics).

Full frames (:func:`perturb_frames`): the alignment (rotate about the face box, cut square,
resize — :func:`sovtp.baselines.data.align_crop`) is rebuilt as a differentiable map from the
frame to the crop (``grid_sample`` at native resolution, then antialiased bilinear resize as
PIL does), and the attack runs on the frame pixels of the face region through it.  The
perturbation therefore lives in frame pixels, is within ε there, and re-cropping the perturbed
frame with the ordinary pipeline gives (up to interpolation differences) the attacked crop — no
approximate "paste back" of a crop-space perturbation is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovtp.baselines.train import normalise

EPS_DEFAULT = (0, 1, 2, 4, 8)
ATTACKS = ("fgsm", "pgd")


def parse_eps(spec: str | Sequence[float]) -> list[float]:
    """``"0,1,2,4,8"`` → [0, 1, 2, 4, 8]: whole grey levels ≥ 0, each once, ascending.  The
    perturbed frames are 8-bit, so a fractional budget could only be floored (ε 0.5 would be
    the clean image under another name): it is refused instead."""
    vals = [
        float(v) for v in (spec.split(",") if isinstance(spec, str) else spec) if str(v).strip()
    ]
    if not vals or any(v < 0 or not math.isfinite(v) or v != int(v) for v in vals):
        raise ValueError(f"ε must be whole non-negative grey levels (8-bit frames), got {spec!r}")
    return sorted(set(vals))


def default_alpha(eps: float, steps: int) -> float:
    """Madry et al.'s PGD step: 2.5 ε / steps (in the same units as ε)."""
    return 2.5 * eps / max(1, steps)


@dataclass(frozen=True)
class Attack:
    """One attack's settings, passed whole through every path that perturbs (crops, full
    frames, the robust recipe) so each reads them one way: ``kind`` fgsm or pgd; PGD takes
    ``steps`` steps of ``alpha`` grey levels (None: :func:`default_alpha` of each ε) from a
    random start drawn from ``seed``.  An unknown kind is refused when the settings are made."""

    kind: str = "pgd"
    steps: int = 10
    alpha: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ATTACKS:
            raise ValueError(f"unknown attack {self.kind!r}: {' | '.join(ATTACKS)}")

    def step(self, eps: float) -> float:
        """The PGD step at budget ``eps``, in grey levels."""
        return default_alpha(eps, self.steps) if self.alpha is None else self.alpha

    def facts(self) -> dict[str, Any]:
        """The settings as ``robust.json`` records them (FGSM is one step, from no random
        start)."""
        pgd = self.kind == "pgd"
        return {
            "attack": self.kind,
            "steps": self.steps if pgd else 1,
            "alpha": (self.alpha if self.alpha is not None else "2.5*eps/steps") if pgd else None,
            "random_start": pgd,
            "seed": self.seed,
        }


def _quantise(x_adv01: Any, x_u8: Any, eps: float) -> Any:
    """uint8 image within ε grey levels of ``x_u8``: round, then clip to the ε-box."""
    import torch

    q = (x_adv01 * 255).round()
    lo = (x_u8.float() - math.floor(eps)).clamp(min=0)
    hi = (x_u8.float() + math.floor(eps)).clamp(max=255)
    return torch.minimum(torch.maximum(q, lo), hi).to(torch.uint8)


def _grad(model: Any, fn: Any, x01: Any, y: Any) -> Any:
    import torch
    import torch.nn.functional as F

    x01 = x01.detach().requires_grad_(True)
    loss = F.cross_entropy(model(normalise(fn(x01))), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, x01)
    return g


def _attack01(
    model: Any,
    x01: Any,
    y: Any,
    eps: float,
    attack: Attack,
    gen: Any,
    fn: Any = None,
    region: Any = None,
) -> Any:
    """The attack in [0, 1] pixel space (``eps`` in grey levels); ``fn`` maps the attacked
    tensor to the model's input (identity for crops; the differentiable crop for frames);
    ``region`` (bool, broadcastable) limits where the perturbation may be non-zero."""
    import torch

    eps01, alpha01 = eps / 255, attack.step(eps) / 255
    fn = fn or (lambda t: t)
    mask = region.to(x01.dtype) if region is not None else 1.0
    if attack.kind == "fgsm":
        g = _grad(model, fn, x01, y)
        return (x01 + eps01 * g.sign() * mask).clamp(0, 1).detach()
    u = torch.rand(x01.shape, generator=gen, device="cpu").to(x01.device)
    xa = (x01 + (2 * u - 1) * eps01 * mask).clamp(0, 1)
    for _ in range(attack.steps):
        g = _grad(model, fn, xa, y)
        xa = xa.detach() + alpha01 * g.sign() * mask
        xa = torch.min(torch.max(xa, x01 - eps01), x01 + eps01).clamp(0, 1)
    return xa.detach()


def attack_crops(
    model: Any,
    x_u8: Any,
    y: Any,
    eps: float,
    attack: Attack = Attack(),
    *,
    batch_size: int = 64,
    device: Any = None,
) -> Any:
    """Perturbed uint8 crops (N, 3, S, S) within ``eps`` grey levels of ``x_u8`` (on CPU).
    ``y`` (N,) gold class indices; a negative entry is replaced by the model's prediction."""
    import torch

    if eps <= 0 or len(x_u8) == 0:
        return x_u8.clone()
    model = getattr(model, "model", model)
    dev = device or next(model.parameters()).device
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(attack.seed)
    out = []
    try:
        for i in range(0, len(x_u8), batch_size):
            xb = x_u8[i : i + batch_size]
            x01 = xb.to(dev).float() / 255
            yb = y[i : i + batch_size].to(dev).clone()
            if bool((yb < 0).any()):
                with torch.no_grad():
                    yb = torch.where(yb < 0, model(normalise(x01)).argmax(1), yb)
            xa = _attack01(model, x01, yb, eps, attack, gen)
            out.append(_quantise(xa.cpu(), xb, eps))
    finally:
        model.train(was)
    return torch.cat(out)


def _frame_scores(logits: Any, fy: Any, owner: Any, y: Any, labels: Sequence[str]) -> dict:
    from sovtp.baselines.tta_stream import _scores

    s = _scores(logits, fy, owner, y, labels)
    return {
        "frame_accuracy": s["frame"]["accuracy"],
        "frame_macro_f1": s["frame"]["macro_f1"],
        "accuracy": s["sample"]["accuracy"] if s["sample"] else None,
        "macro_f1": s["sample"]["macro_f1"] if s["sample"] else None,
        "n_frames": s["frame"]["n"],
        "n_samples": s["sample"]["n"] if s["sample"] else 0,
    }


def accuracy_vs_eps(
    loaded: Any,
    crops: Any,
    eps: Sequence[float] = EPS_DEFAULT,
    attack: Attack = Attack(),
    *,
    batch_size: int = 64,
    keep: bool = False,
) -> dict[str, Any]:
    """Accuracy and macro F1 of a checkpoint on a labelled crop set at each ε: frame level
    (each crop against its sample's label) and sample level (mean of a sample's frame logits,
    as :mod:`sovtp.baselines.predict` decides).  Each row also has the measured L∞ of the
    uint8 perturbation.  ``keep`` adds ``"crops"``: ε → the perturbed uint8 tensor (not
    JSON-able; the CLI saves them)."""
    from sovtp.baselines.predict import crop_logits

    fy = crops.frame_y()
    kept: dict[float, Any] = {}
    rows = []
    for e in eps:
        xa = attack_crops(
            loaded,
            crops.x,
            fy,
            e,
            attack,
            batch_size=batch_size,
            device=getattr(loaded, "device", None),
        )
        logits = crop_logits(loaded, xa, batch_size)
        linf = int((xa.int() - crops.x.int()).abs().max()) if len(xa) else 0
        rows.append(
            {
                "eps": e,
                **_frame_scores(logits, fy, crops.owner, crops.y, crops.labels),
                "linf": linf,
            }
        )
        if keep:
            kept[e] = xa
    out: dict[str, Any] = {
        **attack.facts(),
        "eps_units": "grey levels (1/255)",
        "labels": list(crops.labels),
        "rows": rows,
    }
    if keep:
        out["crops"] = kept
    return out


# --- full frames ---------------------------------------------------------------------------


def _key(p: Any) -> tuple[str, int | None]:
    return (p.sample_id, p.face_id)


def flip_rate(clean: Sequence[Any], perturbed: Sequence[Any]) -> dict[str, Any]:
    """How often a system's answer changes when its input is perturbed, over the samples
    (sample ID × face) both lists hold.  A flip is any change of the answered label, an
    invalid answer (label None) counting as an answer of its own; ``to_invalid`` counts the
    valid answers that became invalid, ``correct_to_wrong`` the flips away from the gold."""
    a = {_key(p): p for p in clean}
    b = {_key(p): p for p in perturbed}
    keys = [k for k in a if k in b]
    flips = [k for k in keys if a[k].label != b[k].label]
    c2w = [k for k in flips if a[k].gold is not None and a[k].label == a[k].gold]
    w2c = [k for k in flips if b[k].gold is not None and b[k].label == b[k].gold]
    inv = [k for k in flips if a[k].label is not None and b[k].label is None]

    def acc(d: dict) -> float | None:
        g = [k for k in keys if d[k].gold is not None]
        return sum(d[k].label == d[k].gold for k in g) / len(g) if g else None

    n = len(keys)
    return {
        "n": n,
        "flips": len(flips),
        "flip_rate": len(flips) / n if n else None,
        "correct_to_wrong": len(c2w),
        "wrong_to_correct": len(w2c),
        "to_invalid": len(inv),
        "accuracy_clean": acc(a),
        "accuracy_perturbed": acc(b),
        "only_clean": len(a) - n,
        "only_perturbed": len(b) - n,
        "flipped": [k[0] for k in flips],
    }


def _run_predictions(run: str | Path) -> list[Any]:
    from sovtp.jsonl import latest_rows
    from sovtp.records import Prediction

    fields = set(Prediction.model_fields)
    return [
        Prediction(**{k: v for k, v in r.items() if k in fields})
        for r in latest_rows(Path(run) / "predictions.jsonl")
        if "sample_id" in r
    ]


def flip_rate_runs(clean_run: str | Path, perturbed_run: str | Path) -> dict[str, Any]:
    """Flip rate of each system × variant between two run folders (a clean run and a run on
    a :func:`write_perturbed_set` manifest): ``{"<system> · <variant>": flip_rate(...)}``."""
    groups: dict[str, tuple[list[Any], list[Any]]] = {}
    for i, run in enumerate((clean_run, perturbed_run)):
        for p in _run_predictions(run):
            groups.setdefault(f"{p.system} · {p.variant}", ([], []))[i].append(p)
    return {k: flip_rate(c, q) for k, (c, q) in groups.items() if c and q}


# --- the command's work --------------------------------------------------------------------
def open_samples(
    source: str,
    *,
    split: str | None = None,
    fold: int | None = None,
    evaluator: str | None = None,
    limit: int | None = None,
) -> tuple[list[Any], dict[str, Any]]:
    """The samples of a dataset source, or of a run folder (its ``config.yaml``: data, root,
    split, fold, evaluator, limit, shuffle, seed — the same samples the run scored)."""
    import yaml

    from sovtp.data.sources import open_dataset, select

    p = Path(source)
    opts: dict[str, Any] = {}
    shuffle, seed, root = False, 0, None
    if p.is_dir() and (p / "config.yaml").exists():
        cfg = yaml.safe_load((p / "config.yaml").read_text()) or {}
        source, root = cfg["data"], cfg.get("root")
        split = split or cfg.get("split")
        fold = fold if fold is not None else cfg.get("fold")
        evaluator = evaluator or cfg.get("evaluator")
        limit = limit if limit is not None else cfg.get("limit")
        shuffle, seed = bool(cfg.get("shuffle")), int(cfg.get("seed") or 0)
    ev = None
    if evaluator:
        from sovtp.evaluator import load_evaluator

        ev = load_evaluator(evaluator)
        opts = dict(ev.options)
        split = split or ev.split
        if fold is None and ev.folds:
            fold = ev.fold
    ds = open_dataset(source, root=root, split=split, fold=fold, **opts)
    samples = list(select(ds, limit, shuffle, seed))
    if ev is not None:
        ls = ev.labels()
        for s in samples:
            if s.label is not None:
                s.label = ls.normalize(s.label) or s.label
    facts = {"data": source, "split": split, "fold": fold, "evaluator": evaluator, "limit": limit}
    return samples, facts
