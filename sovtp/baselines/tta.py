"""Test-time adaptation (TTA) of a CNN baseline on the test stream, online, batch by batch.

Methods (``method`` strings, as ``--tta`` takes them):

- ``none`` — the checkpoint as trained (eval mode).
- ``bn`` — re-estimate every BatchNorm's statistics on the test stream (Schneider et al. 2020,
  online): the running mean/var become the cumulative average over the test batches seen so far
  (``bn_prior`` source batches of weight kept in the average; 0: test statistics only), and each
  batch is predicted in eval mode with the statistics updated by it and its predecessors.  No
  weight changes; ``info["params_adapted"]`` is 0 and ``info["stats_adapted"]`` counts the
  running mean/var entries.
- ``tent`` — Tent (Wang et al., ICLR 2021): normalise with each test batch's own statistics and
  minimise the mean softmax entropy of the batch's predictions, updating only the affine
  parameters (weight, bias) of the normalisation layers (BatchNorm, GroupNorm, LayerNorm) with
  Adam.  As in Tent's reference code, a batch's prediction is the output of the forward pass
  the update is computed from (the update helps the *next* batches); ``steps`` > 1 repeats the
  forward/update on the same batch and returns the last forward.
- ``fisher:K`` — Fisher-selective entropy minimisation: a diagonal empirical Fisher
  F_i = mean_n (d/dθ_i CE(f(x_n), ŷ_n))², with ŷ_n the model's own prediction (pseudo-label), is
  estimated once from the first ``fisher_frames`` frames of the stream with the source model
  (eval mode, one frame at a time, so each term is a per-frame gradient).  The **K scalar
  parameters** (elements, not tensors: a tensor may be partly selected) with the largest F_i are
  the only ones updated; then adaptation proceeds as ``tent`` (batch statistics, entropy loss,
  Adam) with every other element's gradient masked to zero, so unselected elements stay
  bit-identical (Adam's step on a zero gradient with zero moments is exactly zero; the tests
  check it).  Large-Fisher parameters are the ones the model's own predictions are most
  sensitive to on the test data — the cheap "which weights matter here" estimate that
  selective-update TTA methods use.

Online means no reset: the adapted weights and statistics carry from one batch to the next in
the order given, so order changes the result (``reset_every`` restores the source model every N
batches when asked).  A batch of one image cannot give BatchNorm statistics (a 1 × 1 feature map
of one image has no variance): it is predicted in eval mode with the current running statistics
and does not update anything.

The adapted model is a deep copy: the loaded checkpoint's model is never changed.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sovtp.baselines.train import normalise

log = logging.getLogger(__name__)

METHODS = ("none", "bn", "tent", "fisher:K")


@dataclass(frozen=True)
class Method:
    kind: str  # none | bn | tent | fisher
    k: int = 0  # fisher: parameters (scalar elements) to adapt

    def __str__(self) -> str:
        return f"fisher:{self.k}" if self.kind == "fisher" else self.kind


def parse_method(method: str | Method) -> Method:
    """``none``, ``bn``, ``tent`` or ``fisher:K`` (K ≥ 1 scalar parameters: fisher:0 would
    adapt nothing and report it as adaptation)."""
    if isinstance(method, Method):
        return method
    m = method.strip().lower()
    if m in ("none", "bn", "tent"):
        return Method(m)
    if m.startswith("fisher:"):
        try:
            k = int(m.split(":", 1)[1])
        except ValueError:
            k = -1
        if k >= 1:
            return Method("fisher", k)
    raise ValueError(f"unknown TTA method {method!r}: one of {', '.join(METHODS)}")


def _norm_layers(model: Any) -> list[Any]:
    import torch.nn as nn

    kinds = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    return [m for m in model.modules() if isinstance(m, kinds)]


def _bns(model: Any) -> list[Any]:
    import torch.nn as nn

    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _entropy(logits: Any) -> Any:
    """Mean Shannon entropy (nats) of the softmax of each row."""
    logp = logits.log_softmax(1)
    return -(logp.exp() * logp).sum(1).mean()


def _to_input(x: Any, device: Any) -> Any:
    """uint8 (N, 3, S, S) crops → the normalised float batch the model was trained on."""
    return normalise(x.to(device).float().div_(255))


def fisher_diagonal(model: Any, x: Any, device: Any = None) -> dict[str, Any]:
    """Diagonal empirical Fisher of each trainable parameter from uint8 crops ``x``, with the
    model's own arg-max as the label: mean over frames of the squared per-frame gradient of the
    cross-entropy.  Computed in eval mode (running statistics), one frame at a time."""
    import torch
    import torch.nn.functional as F

    dev = device or next(model.parameters()).device
    was = model.training
    model.eval()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    for i in range(len(x)):
        xb = _to_input(x[i : i + 1], dev)
        logits = model(xb)
        loss = F.cross_entropy(logits, logits.argmax(1).detach())
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for (n, _), g in zip(params.items(), grads, strict=True):
            if g is not None:
                fisher[n] += g.detach() ** 2
    model.train(was)
    return {n: f / max(1, len(x)) for n, f in fisher.items()}


def top_k_masks(fisher: dict[str, Any], k: int) -> dict[str, Any]:
    """Boolean masks selecting exactly ``min(k, total)`` elements with the largest Fisher values
    over all tensors (ties broken by position, deterministically)."""
    import torch

    names = list(fisher)
    flat = torch.cat([fisher[n].reshape(-1).float().cpu() for n in names])
    k = min(k, flat.numel())
    sel = torch.zeros(flat.numel(), dtype=torch.bool)
    if k > 0:
        # stable sort: among equal values the earlier element wins
        order = torch.sort(flat, descending=True, stable=True).indices[:k]
        sel[order] = True
    masks, at = {}, 0
    for n in names:
        t = fisher[n]
        masks[n] = sel[at : at + t.numel()].reshape(t.shape).to(t.device)
        at += t.numel()
    return masks


class OnlineAdapter:
    """A copy of a model that adapts to each batch it is shown, in order (see module doc).

    ``step(x)`` takes uint8 crops (N, 3, S, S) and returns their logits (N, C) on CPU."""

    def __init__(
        self,
        model: Any,
        method: str | Method,
        *,
        lr: float = 1e-3,
        steps: int = 1,
        device: Any = None,
        bn_prior: int = 0,
        fisher_frames: int = 32,
        reset_every: int | None = None,
        window: int = 16,
    ) -> None:
        import torch

        if window < 2:
            raise ValueError(f"window must be at least 2 crops, not {window}")
        self.method = parse_method(method)
        # Batches of one crop (a still, or a clip with one face crop) cannot give BatchNorm
        # statistics or a batch entropy: they are pooled, in order, until ``window`` crops are
        # there, and the update runs on the pool.  Until a first update the model answers with
        # its source statistics — never with reset ones (a still once got the same near-uniform
        # scores as every other still: macro F1 0.559 → 0.100 with "updates 0").
        self.window = int(window)
        self._pool: list[Any] = []
        self.lr, self.steps = float(lr), int(steps)
        self.bn_prior, self.fisher_frames = int(bn_prior), int(fisher_frames)
        self.reset_every = reset_every
        self.device = device or next(model.parameters()).device
        self.model = copy.deepcopy(model).to(self.device).eval()
        self._source = copy.deepcopy(self.model.state_dict())
        self.batches = self.frames = self.updates = 0
        self.masks: dict[str, Any] | None = None
        self.fisher_used = 0
        self._params: list[tuple[str, Any]] = []
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.opt: Any = None
        self._fresh = True
        if self.method.kind == "tent":
            for m in _norm_layers(self.model):
                for name in ("weight", "bias"):
                    p = getattr(m, name, None)
                    if p is not None:
                        self._params.append((name, p))
            self._make_opt()
        self._torch = torch

    # -- set-up ------------------------------------------------------------------------------
    def _make_opt(self) -> None:
        import torch

        ps = [p for _, p in self._params]
        for p in ps:
            p.requires_grad_(True)
        self.opt = torch.optim.Adam(ps, lr=self.lr, foreach=False) if ps else None
        self._opt_state0 = copy.deepcopy(self.opt.state_dict()) if self.opt else None

    def _select_fisher(self, x: Any) -> None:
        """Estimate the Fisher from the first frames and keep the top-K elements' tensors."""
        for p in self.model.parameters():
            p.requires_grad_(True)
        first = x[: self.fisher_frames]  # the first batch: up to fisher_frames of its frames
        self.fisher_used = len(first)
        fisher = fisher_diagonal(self.model, first, self.device)
        self.masks = top_k_masks(fisher, self.method.k)
        named = dict(self.model.named_parameters())
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._params = [(n, named[n]) for n, m in self.masks.items() if bool(m.any())]
        self._make_opt()

    def _reset(self) -> None:
        self._pool = []
        self.model.load_state_dict(self._source)
        if self.opt is not None:
            self.opt.load_state_dict(copy.deepcopy(self._opt_state0))

    # -- info --------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        total = sum(p.numel() for p in self.model.parameters())
        if self.method.kind == "fisher" and self.masks is not None:
            n_adapt = int(sum(int(m.sum()) for m in self.masks.values()))
        else:
            n_adapt = int(sum(p.numel() for _, p in self._params))
        stats = sum(m.running_mean.numel() * 2 for m in _bns(self.model) if m.running_mean is not None)  # fmt: skip
        return {
            "method": str(self.method),
            "params_adapted": n_adapt,  # scalar parameters (elements) the updates may change
            "tensors_adapted": len(self._params),
            "params_total": int(total),
            "stats_adapted": int(stats) if self.method.kind == "bn" else 0,
            "batches": self.batches,
            "frames": self.frames,
            "updates": self.updates,
            "lr": self.lr if self.method.kind in ("tent", "fisher") else None,
            "steps": self.steps if self.method.kind in ("tent", "fisher") else None,
            "bn_prior": self.bn_prior if self.method.kind == "bn" else None,
            # the frames the Fisher was estimated from (the first batch, capped): as used
            "fisher_frames": self.fisher_used if self.method.kind == "fisher" else None,
            "selection": "top-K scalar elements by diagonal empirical Fisher (pseudo-labels)"
            if self.method.kind == "fisher"
            else None,
            "reset_every": self.reset_every,
            "window": self.window,  # single crops are pooled this many at a time
            "pooled_waiting": sum(len(t) for t in self._pool),  # crops seen, no update yet
        }

    # -- the stream --------------------------------------------------------------------------
    def _eval_logits(self, xb: Any) -> Any:
        self.model.eval()
        with self._torch.no_grad():
            return self.model(xb).float()

    def _stats_batch(self, xb: Any) -> Any:
        """The batch an update runs on: ``xb`` itself when it holds two crops or more, else the
        pool of single crops once it holds ``window`` of them (then emptied), else None."""
        if len(xb) > 1:
            return xb
        self._pool.append(xb)
        if sum(len(t) for t in self._pool) < self.window:
            return None
        pooled = self._torch.cat(self._pool)
        self._pool = []
        return pooled

    def _bn_step(self, xb: Any) -> Any:
        bns = _bns(self.model)
        batch = self._stats_batch(xb)
        if batch is None:  # nothing to estimate from yet: the statistics as they are
            return self._eval_logits(xb)
        if self._fresh:
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the stream
                if self.bn_prior > 0:  # keep the source statistics with this many batches' weight
                    m.num_batches_tracked.fill_(self.bn_prior)
            if self.bn_prior > 0:
                src = self._source
                for name, m in self.model.named_modules():
                    if m in bns:
                        m.running_mean.copy_(src[f"{name}.running_mean"])
                        m.running_var.copy_(src[f"{name}.running_var"])
            self._fresh = False
        self.model.eval()
        for m in bns:
            m.train()  # only BN in train mode: dropout stays off
        with self._torch.no_grad():
            self.model(batch)
        self.updates += 1
        return self._eval_logits(xb)

    def _entropy_step(self, xb: Any) -> Any:
        if self.opt is None:
            if len(xb) > 1:  # fisher:0 — batch statistics, no update
                return self._batch_stat_logits(xb)
            return self._eval_logits(xb)
        batch = self._stats_batch(xb)
        if batch is None:
            return self._eval_logits(xb)
        pooled = batch is not xb  # the update ran on the pool: this crop is answered after it
        out = None
        for _ in range(self.steps):
            self._bn_batch_mode()
            out = self.model(batch)
            loss = _entropy(out.float())
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.masks is not None:
                for n, p in self._params:
                    if p.grad is not None:
                        p.grad.mul_(self.masks[n])
            self.opt.step()
            self.updates += 1
        self.model.eval()
        assert out is not None
        return self._eval_logits(xb) if pooled else out.detach().float()

    def _bn_batch_mode(self) -> None:
        """BatchNorm normalises with the batch's own statistics; its running ones stay frozen."""
        self.model.eval()
        for m in _bns(self.model):
            m.train()
            m.momentum = 0.0  # running = 1 * running + 0 * batch: unchanged

    def _batch_stat_logits(self, xb: Any) -> Any:
        self._bn_batch_mode()
        with self._torch.no_grad():
            out = self.model(xb).float()
        self.model.eval()
        return out

    def step(self, x: Any) -> Any:
        """Adapt on one batch of uint8 crops (in stream order) and return its logits (CPU)."""
        if self.reset_every and self.batches and self.batches % self.reset_every == 0:
            self._reset()
            self._fresh = True
        xb = _to_input(x, self.device)
        kind = self.method.kind
        if kind == "fisher" and self.masks is None:
            self._select_fisher(x)
        if kind == "none":
            out = self._eval_logits(xb)
        elif kind == "bn":
            out = self._bn_step(xb)
        else:
            out = self._entropy_step(xb)
        self.batches += 1
        self.frames += len(x)
        return out.cpu()


def _model_of(loaded: Any) -> tuple[Any, Any]:
    """(module, device) of a :class:`~sovtp.baselines.predict.Loaded` or a bare module."""
    model = getattr(loaded, "model", loaded)
    dev = getattr(loaded, "device", None) or next(model.parameters()).device
    return model, dev


def adapt_predict(
    loaded: Any,
    crop_batches_in_order: Iterable[Any],
    method: str | Method,
    lr: float = 1e-3,
    steps: int = 1,
    **kw: Any,
) -> tuple[Any, dict[str, Any]]:
    """Logits (N, C) of every crop of the stream (batches of uint8 (n, 3, S, S) crops, in
    order), adapting online with ``method``; ``info`` says what was adapted
    (``params_adapted``: scalar parameters; ``tensors_adapted``; ``stats_adapted`` for ``bn``).
    ``kw``: ``bn_prior``, ``fisher_frames``, ``reset_every`` (see :class:`OnlineAdapter`)."""
    import torch

    model, dev = _model_of(loaded)
    ad = OnlineAdapter(model, method, lr=lr, steps=steps, device=dev, **kw)
    outs = [ad.step(xb) for xb in crop_batches_in_order if len(xb)]
    n_cls = outs[0].shape[1] if outs else len(getattr(loaded, "labels", []))
    logits = torch.cat(outs) if outs else torch.zeros(0, n_cls)
    return logits, ad.info()


def batches(x: Any, batch_size: int, order: Sequence[int] | None = None) -> list[Any]:
    """The stream: ``x`` (in ``order`` when given) cut into consecutive batches."""
    if order is not None:
        x = x[list(order)]
    return [x[i : i + batch_size] for i in range(0, len(x), batch_size)]


def _scores(logits: Any, frame_y: Any, owner: Any, y: Any, labels: Sequence[str]) -> dict:
    """Frame-level and sample-level (mean logits per sample) macro F1 / accuracy / UAR."""
    from sovtp.scoring.metrics import compute

    labs = list(labels)
    keep = frame_y >= 0
    fp = logits.argmax(1)
    fm = compute([labs[i] for i in frame_y[keep].tolist()],
                 [labs[i] for i in fp[keep].tolist()], labs)  # fmt: skip
    gold, pred = [], []
    for i in range(len(y)):
        sel = owner == i
        if int(y[i]) < 0 or not bool(sel.any()):
            continue
        gold.append(labs[int(y[i])])
        pred.append(labs[int(logits[sel].mean(0).argmax())])
    sm = compute(gold, pred, labs) if gold else None

    def pick(m: Any) -> dict[str, float] | None:
        if m is None:
            return None
        return {"macro_f1": m.macro_f1, "accuracy": m.accuracy, "uar": m.uar, "n": m.n}

    return {"frame": pick(fm), "sample": pick(sm)}


def evaluate_stream(
    loaded: Any,
    crops: Any,
    method: str | Method,
    *,
    batch_size: int = 64,
    order: Sequence[int] | None = None,
    lr: float = 1e-3,
    steps: int = 1,
    **kw: Any,
) -> dict[str, Any]:
    """F1 before/after TTA on a labelled crop stream (a :class:`~sovtp.baselines.data.CropSet`,
    its crops in stream order, or ``order``): macro F1 over the label set (the AffWild2 EXPR
    measure: frame level — each crop scored against its sample's label — and sample level, the
    mean of a sample's frame logits), accuracy and UAR, for ``none`` and ``method``, plus the
    adaptation info.  JSON-able; :func:`sovtp.report.tta.tta_section` tabulates a list of them."""
    import torch

    stream = batches(crops.x, batch_size, order)
    idx = torch.as_tensor(list(order)) if order is not None else torch.arange(len(crops))
    fy, owner = crops.frame_y()[idx], crops.owner[idx]
    before, _ = adapt_predict(loaded, stream, "none")
    after, info = adapt_predict(loaded, stream, method, lr=lr, steps=steps, **kw)
    return {
        "method": str(parse_method(method)),
        "labels": list(crops.labels),
        "batch_size": batch_size,
        "before": _scores(before, fy, owner, crops.y, crops.labels),
        "after": _scores(after, fy, owner, crops.y, crops.labels),
        "info": info,
    }


class StreamRecord:
    """Online TTA over a run's samples, in the order given, that keeps its own before/after
    record: each sample's crops (one batch) go through the source model (eval mode, the very
    logits a ``--tta none`` run answers with) and through the adapter, which answers.  At the
    end :meth:`result` scores both on the same stream as :func:`evaluate_stream` does (frame and
    sample level macro F1, accuracy, UAR), so a run reports F1 before/after TTA without a
    second pass.  Stateful: one thread, sample order (the bench runner guarantees it)."""

    def __init__(
        self, loaded: Any, method: str | Method, *, lr: float = 1e-3, steps: int = 1, **kw: Any
    ) -> None:
        self.loaded = loaded
        self.method = parse_method(method)
        self.adapter = OnlineAdapter(loaded.model, self.method, lr=lr, steps=steps,
                                     device=loaded.device, **kw)  # fmt: skip
        self.labels = list(loaded.labels)
        self.ids: list[str] = []
        self._before: list[Any] = []
        self._after: list[Any] = []
        self._y: list[int] = []  # gold as an index into the model's labels (-1: not scored)
        self._n: list[int] = []  # crops per sample

    def step(self, x: Any, gold: str | None = None, sample_id: str = "") -> Any:
        """uint8 crops (N, 3, S, S) of one sample → the adapted logits (N, C), recorded with the
        un-adapted ones and the sample's gold (a label the model does not have: not scored)."""
        from sovtp.baselines.predict import crop_logits

        before = crop_logits(self.loaded, x)
        after = self.adapter.step(x)
        self.ids.append(sample_id)
        self._before.append(before)
        self._after.append(after)
        self._y.append(self.labels.index(gold) if gold in self.labels else -1)
        self._n.append(len(x))
        return after

    def result(self) -> dict[str, Any]:
        """JSON-able: method, labels, ``before``/``after`` scores (``frame`` and ``sample``
        level), the adapter's ``info`` (``params_adapted``, ...), samples seen and scored."""
        import torch

        c = len(self.labels)
        owner = torch.repeat_interleave(torch.arange(len(self._n)), torch.tensor(self._n, dtype=torch.long))  # fmt: skip
        y = torch.tensor(self._y, dtype=torch.long)
        fy = y[owner] if len(owner) else torch.zeros(0, dtype=torch.long)

        def cat(xs: list[Any]) -> Any:
            return torch.cat(xs) if xs else torch.zeros(0, c)

        scored = len(fy) and bool((fy >= 0).any())
        none = {"frame": None, "sample": None}
        return {
            "method": str(self.method),
            "labels": self.labels,
            "batch": "one sample's crops, in sample order",
            "samples": len(self._n),
            "samples_scored": int((y >= 0).sum()),
            "before": _scores(cat(self._before), fy, owner, y, self.labels) if scored else none,
            "after": _scores(cat(self._after), fy, owner, y, self.labels) if scored else none,
            "info": self.adapter.info(),
        }


def corrupt(x: Any, kind: str, severity: float = 1.0, seed: int = 0) -> Any:
    """A distribution shift for TTA tests and demos, on uint8 crops (N, 3, S, S) → uint8:
    ``dark`` (brightness × (1 - 0.6 s)), ``contrast`` (towards grey by 0.7 s), ``noise``
    (Gaussian, σ = 40 s grey levels, seeded), ``blur`` (box blur of radius ⌈2 s⌉)."""
    import torch
    import torch.nn.functional as F

    f = x.float()
    if kind == "dark":
        f = f * (1 - 0.6 * severity)
    elif kind == "contrast":
        m = f.mean(dim=(1, 2, 3), keepdim=True)
        f = (f - m) * (1 - 0.7 * severity) + m
    elif kind == "noise":
        g = torch.Generator().manual_seed(seed)
        f = f + torch.randn(f.shape, generator=g) * 40 * severity
    elif kind == "blur":
        r = max(1, math.ceil(2 * severity))
        k = torch.ones(3, 1, 2 * r + 1, 2 * r + 1) / (2 * r + 1) ** 2
        f = F.conv2d(F.pad(f, (r, r, r, r), mode="replicate"), k, groups=3)
    else:
        raise ValueError(f"unknown corruption {kind!r}: dark | contrast | noise | blur")
    return f.round().clamp(0, 255).to(torch.uint8)
