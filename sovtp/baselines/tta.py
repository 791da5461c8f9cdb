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
        stats = sum(
            m.running_mean.numel() * 2 for m in _bns(self.model) if m.running_mean is not None
        )
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
