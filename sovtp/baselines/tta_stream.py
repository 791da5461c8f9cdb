"""Test-time adaptation over a stream, measured: a crop set through an online adapter in a given
order (:func:`adapt_predict`), its scores before and after (:func:`evaluate_stream`), the record a
run keeps while its CNN systems adapt sample by sample (:class:`StreamRecord`), and the
corruptions a TTA study streams (:func:`corrupt`).  The adapters themselves are in
:mod:`sovtp.baselines.tta`."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sovtp.baselines.tta import Method, OnlineAdapter, parse_method

log = logging.getLogger(__name__)


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
    fm = compute(
        [labs[i] for i in frame_y[keep].tolist()], [labs[i] for i in fp[keep].tolist()], labs
    )
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
        self.adapter = OnlineAdapter(
            loaded.model, self.method, lr=lr, steps=steps, device=loaded.device, **kw
        )
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
        owner = torch.repeat_interleave(
            torch.arange(len(self._n)), torch.tensor(self._n, dtype=torch.long)
        )
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
