"""Metrics by name, per task type, and one paired bootstrap for any of them.

An evaluator names its metrics (``metrics: [ap, roc_auc, macro_f1]``); the summary, ``sovtp
score`` and the report look each name up here.  A metric is a function of a *task data* object
— the per-sample arrays one system × variant produced — so the bootstrap is written once:
resample sample indices with replacement, ``take`` them, recompute.  A paired bootstrap takes
the *same* indices from two systems aligned on their shared samples, so the interval of a
difference keeps every sample's two answers together.  (For intervals, the sample is a video.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from sovtp.errors import SovtpError
from sovtp.scoring import tasks as T
from sovtp.scoring.metrics import Confusion, Headline, Metrics, from_confusion, headline_from_matrix
from sovtp.scoring.stats import Interval, wilson


class TaskData(Protocol):
    def __len__(self) -> int: ...

    def take(self, ix: np.ndarray) -> TaskData: ...


@dataclass
class LabelData:
    """Single-label (and a binary task's labels): integer codes, ``n_labels`` means invalid."""

    g: np.ndarray
    p: np.ndarray
    labels: list[str]

    def __len__(self) -> int:
        return len(self.g)

    def take(self, ix: np.ndarray) -> LabelData:
        return LabelData(self.g[ix], self.p[ix], self.labels)

    @cached_property
    def headline_metrics(self) -> Headline:
        """The scalar label metrics only: a bootstrap resample builds no per-class tables."""
        n = len(self.labels)
        m = np.bincount(self.g * (n + 1) + self.p, minlength=n * (n + 1)).reshape(n, n + 1)
        return headline_from_matrix(m, n)

    @cached_property
    def confusion_metrics(self) -> Metrics:
        """All label metrics at once (each registered label metric reads one field)."""
        n = len(self.labels)
        m = np.bincount(self.g * (n + 1) + self.p, minlength=n * (n + 1)).reshape(n, n + 1)
        return from_confusion(Confusion(self.labels, m))


@dataclass
class BinaryData(LabelData):
    """A binary task: labels (as codes) plus the positive-class score ``s`` (NaN: missing),
    ``y`` (1 = positive), attack ``types`` and the threshold fixed on a dev split."""

    y: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    types: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    threshold: float = 0.5

    def take(self, ix: np.ndarray) -> BinaryData:
        return BinaryData(
            self.g[ix],
            self.p[ix],
            self.labels,
            self.y[ix],
            self.s[ix],
            self.types[ix],
            self.threshold,
        )


@dataclass
class IntervalData:
    """Spotting: one entry per video, (spotted, ground-truth) intervals."""

    videos: list[tuple[list[T.Span], list[T.Span]]]
    labels: list[str] | None = None
    iou: float = 0.5
    frames: bool = True
    _counts: list[T.SpotCounts] | None = None

    def __len__(self) -> int:
        return len(self.videos)

    def counts(self) -> list[T.SpotCounts]:
        if self._counts is None:
            self._counts = [T.spot_video(p, g, self.iou, self.frames) for p, g in self.videos]
        return self._counts

    def take(self, ix: np.ndarray) -> IntervalData:
        c = self.counts()
        return IntervalData(
            [self.videos[i] for i in ix], self.labels, self.iou, self.frames, [c[i] for i in ix]
        )

    def scores(self) -> dict[str, float]:
        total = T.SpotCounts()
        for c in self.counts():
            total.add(c)
        return T.spotting_scores(total, self.labels)


HIGH_LOW = ("high", "low")  # a regression task's label bins, in code order


@dataclass
class RegressionData:
    """Regression (valence / arousal …): gold ``y`` and predicted ``p`` values (N×D, NaN =
    missing), the dimension names, each dimension's scale midpoint, and — optionally — the
    answers' own ``high``/``low`` labels for the first dimension (``label_p``: codes against
    ``HIGH_LOW``, 2 = invalid).  The label metrics (war, macro_f1, invalid_rate …) score the
    first dimension's bins: gold ``y > midpoint``, predicted ``label_p`` — or, without labels,
    the bin of ``p`` (a missing value is then invalid, not ``low``)."""

    y: np.ndarray
    p: np.ndarray
    dims: list[str] = field(default_factory=lambda: ["valence", "arousal"])
    midpoint: float | Sequence[float] = 0.0
    label_p: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=float).reshape(len(self.y), -1)
        self.p = np.asarray(self.p, dtype=float).reshape(len(self.p), -1)
        if self.y.shape != self.p.shape or self.y.shape[1] != len(self.dims):
            raise ValueError(f"gold {self.y.shape}, prediction {self.p.shape}, dims {self.dims}")
        if self.label_p is not None:
            self.label_p = np.asarray(self.label_p, dtype=int)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, ix: np.ndarray) -> RegressionData:
        lab = None if self.label_p is None else self.label_p[ix]
        return RegressionData(self.y[ix], self.p[ix], self.dims, self.midpoint, lab)

    @property
    def mid(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.midpoint, dtype=float), (len(self.dims),))

    @property
    def filled(self) -> np.ndarray:
        """Predictions with each missing value replaced by its dimension's midpoint."""
        return np.where(np.isfinite(self.p), self.p, self.mid)

    @cached_property
    def label_data(self) -> LabelData:
        """The first dimension's high/low bins as a single-label task."""
        m = self.mid[0]
        g = np.where(self.y[:, 0] > m, 0, 1)
        if self.label_p is not None:
            p = self.label_p
        else:
            v = self.p[:, 0]
            p = np.where(~np.isfinite(v), 2, np.where(v > m, 0, 1))
        return LabelData(g.astype(int), np.asarray(p, dtype=int), list(HIGH_LOW))

    @property
    def headline_metrics(self) -> Headline:
        return self.label_data.headline_metrics

    @property
    def confusion_metrics(self) -> Metrics:
        return self.label_data.confusion_metrics


@dataclass(frozen=True)
class Metric:
    name: str
    task: str
    fn: Callable[[Any], float]
    doc: str
    higher_is_better: bool = True
    # a metric that is one proportion of samples: (successes, samples) of the data; its
    # interval is Wilson's (never a zero-width bootstrap at 0 % or 100 %)
    proportion: Callable[[Any], tuple[int, int]] | None = None


REGISTRY: dict[str, dict[str, Metric]] = {t: {} for t in T.TASKS}


def register(
    tasks: str | Sequence[str],
    name: str,
    doc: str,
    higher: bool = True,
    proportion: Callable[[Any], tuple[int, int]] | None = None,
):
    """Decorator: add ``fn(data) -> float`` under ``name`` for each of ``tasks``.  A metric
    that is one proportion of samples names its ``(successes, samples)`` in ``proportion``."""

    def deco(fn: Callable[[Any], float]) -> Callable[[Any], float]:
        for t in [tasks] if isinstance(tasks, str) else tasks:
            REGISTRY[t][name] = Metric(name, t, fn, doc, higher, proportion)
        return fn

    return deco


def get(task: str, name: str) -> Metric:
    if task not in REGISTRY:
        raise SovtpError(f"unknown task {task!r}; known: {', '.join(T.TASKS)}")
    try:
        return REGISTRY[task][name]
    except KeyError:
        known = ", ".join(REGISTRY[task])
        raise SovtpError(f"unknown metric {name!r} for task {task}; known: {known}") from None


def metric_names(task: str) -> list[str]:
    return list(REGISTRY[task])


def evaluate(task: str, names: Sequence[str], data: Any) -> dict[str, float]:
    return {n: float(get(task, n).fn(data)) for n in names}


# --- single_label (and the label side of binary) ---------------------------------------------
_LABEL_TASKS = ("single_label", "binary", "regression")


def _labels(d: Any) -> LabelData:
    return d.label_data if isinstance(d, RegressionData) else d


def _right(d: Any) -> tuple[int, int]:
    x = _labels(d)
    return int((x.g == x.p).sum()), len(x)


def _invalid(d: Any) -> tuple[int, int]:
    x = _labels(d)
    return int((x.p == len(x.labels)).sum()), len(x)


register(
    _LABEL_TASKS, "war", "weighted average recall (accuracy; invalid is wrong)", proportion=_right
)(lambda d: d.headline_metrics.war)
register(_LABEL_TASKS, "accuracy", "accuracy (= WAR)", proportion=_right)(
    lambda d: d.headline_metrics.war
)
register(_LABEL_TASKS, "uar", "unweighted average recall over gold classes")(
    lambda d: d.headline_metrics.uar
)
register(_LABEL_TASKS, "macro_f1", "macro F1 over gold classes (BAH's AVGF1)")(
    lambda d: d.headline_metrics.macro_f1
)
register(_LABEL_TASKS, "weighted_f1", "F1 weighted by gold support")(
    lambda d: d.headline_metrics.weighted_f1
)
register(_LABEL_TASKS, "invalid_rate", "share of invalid answers", False, _invalid)(
    lambda d: d.headline_metrics.invalid_rate
)

# --- binary -----------------------------------------------------------------------------------
register("binary", "ap", "average precision of the positive class")(
    lambda d: T.average_precision(d.y, d.s)
)
register("binary", "roc_auc", "area under the ROC curve")(lambda d: T.roc_auc(d.y, d.s))
register("binary", "eer", "equal error rate", higher=False)(lambda d: T.eer(d.y, d.s)[0])


def _pad(d: BinaryData) -> T.PadRates:
    return T.pad_rates(d.y, d.s, d.types, d.threshold)


register("binary", "apcer", "worst APCER over attack types at the dev threshold", False)(
    lambda d: _pad(d).apcer
)
register("binary", "bpcer", "BPCER at the dev threshold", False)(lambda d: _pad(d).bpcer)
register("binary", "acer", "(worst APCER + BPCER)/2 at the dev threshold; not ISO", False)(
    lambda d: _pad(d).acer
)
register("binary", "hter", "(pooled APCER + BPCER)/2 at the dev threshold", False)(
    lambda d: _pad(d).hter
)
register("binary", "bpcer20", "BPCER where worst APCER <= 5 %", False)(
    lambda d: T.bpcer_at_apcer(d.y, d.s, d.types, 0.05)
)
register("binary", "bpcer100", "BPCER where worst APCER <= 1 %", False)(
    lambda d: T.bpcer_at_apcer(d.y, d.s, d.types, 0.01)
)

# --- intervals --------------------------------------------------------------------------------
for _k, _doc in (
    ("spot_f1", "spotting F1 (IoU >= 0.5, TP/FP/FN summed over videos)"),
    ("spot_precision", "spotting precision"),
    ("spot_recall", "spotting recall"),
    ("recog_f1", "macro F1 of the labels on correctly spotted intervals"),
    ("strs", "spot-then-recognise score = spot_f1 x recog_f1"),
):
    register("intervals", _k, _doc)(lambda d, _k=_k: d.scores()[_k])


# --- regression ---------------------------------------------------------------------------------
REGRESSION_DIMS = ("valence", "arousal", "dominance")


def _per_dim(fn: Callable[[Any, Any], float], d: RegressionData) -> float:
    p = d.filled
    return float(np.mean([fn(d.y[:, j], p[:, j]) for j in range(len(d.dims))]))


def _one_dim(fn: Callable[[Any, Any], float], name: str) -> Callable[[RegressionData], float]:
    def f(d: RegressionData) -> float:
        if name not in d.dims:
            return float("nan")
        j = d.dims.index(name)
        return fn(d.y[:, j], d.filled[:, j])

    return f


def _high_low(d: RegressionData, k: int) -> float:
    p = d.filled
    return float(
        np.mean([T.high_low_scores(d.y[:, j], p[:, j], d.mid[j])[k] for j in range(len(d.dims))])
    )


register("regression", "ccc", "concordance correlation, mean over dimensions")(
    lambda d: _per_dim(T.ccc, d)
)
register("regression", "pcc", "Pearson correlation, mean over dimensions")(
    lambda d: _per_dim(T.pcc, d)
)
register("regression", "rmse", "root mean squared error, mean over dimensions", False)(
    lambda d: _per_dim(T.rmse, d)
)
for _dim in REGRESSION_DIMS:
    register("regression", f"ccc_{_dim}", f"concordance correlation of {_dim}")(
        _one_dim(T.ccc, _dim)
    )
    register("regression", f"pcc_{_dim}", f"Pearson correlation of {_dim}")(_one_dim(T.pcc, _dim))
    register("regression", f"rmse_{_dim}", f"RMSE of {_dim}", False)(_one_dim(T.rmse, _dim))
register("regression", "high_low_accuracy", "accuracy of high/low bins, mean over dimensions")(
    lambda d: _high_low(d, 0)
)
register("regression", "high_low_f1", "macro F1 of high/low bins, mean over dimensions")(
    lambda d: _high_low(d, 1)
)


# --- the bootstrap -----------------------------------------------------------------------------


def _percentile(vals: np.ndarray, point: float, alpha: float) -> Interval:
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Interval(point, float(lo), float(hi))


def bootstrap(
    task: str,
    names: Sequence[str],
    data: Any,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Interval]:
    """A 95 % interval for each named metric: Wilson's score interval for a metric that is one
    proportion of samples (``Metric.proportion``: WAR, accuracy, the invalid rate), else a
    percentile bootstrap over samples, one set of resamples for all (the same index draws as
    :func:`sovtp.scoring.stats.bootstrap_war_uar`, so WAR/UAR intervals agree with it for the
    same seed).  Each interval names its ``method``."""
    ms = [get(task, n) for n in names]
    n = len(data)
    out = {m.name: wilson(*m.proportion(data), alpha) for m in ms if m.proportion}
    boot = [m for m in ms if not m.proportion]
    if n == 0:
        return {**out, **{m.name: Interval(0.0, 0.0, 0.0) for m in boot}}
    point = {m.name: float(m.fn(data)) for m in boot}
    rng = np.random.default_rng(seed)
    vals = np.empty((len(boot), n_boot))
    for b in range(n_boot):
        sub = data.take(rng.integers(0, n, n))
        for k, m in enumerate(boot):
            vals[k, b] = m.fn(sub)
    out.update({m.name: _percentile(vals[k], point[m.name], alpha) for k, m in enumerate(boot)})
    return {m.name: out[m.name] for m in ms}


def paired_bootstrap(
    task: str,
    names: Sequence[str],
    a: Any,
    b: Any,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Interval]:
    """CI of metric(B) − metric(A) for each name; ``a`` and ``b`` hold the same samples in the
    same order, and each resample takes the same indices from both."""
    if len(a) != len(b):
        raise ValueError("paired bootstrap needs the same samples in both systems")
    ms = [get(task, n) for n in names]
    n = len(a)
    if n == 0:
        return {m.name: Interval(0.0, 0.0, 0.0) for m in ms}
    point = {m.name: float(m.fn(b) - m.fn(a)) for m in ms}
    rng = np.random.default_rng(seed)
    vals = np.empty((len(ms), n_boot))
    for k_b in range(n_boot):
        ix = rng.integers(0, n, n)
        sa, sb = a.take(ix), b.take(ix)
        for k, m in enumerate(ms):
            vals[k, k_b] = m.fn(sb) - m.fn(sa)
    return {m.name: _percentile(vals[k], point[m.name], alpha) for k, m in enumerate(ms)}


def _bah_ap(d: BinaryData) -> float:
    from sovtp.scoring.bah import release_ap  # BAH's own AP, kept beside its task's code

    return release_ap(d.y, d.s)


register("binary", "bah_ap", "AP of the positive class as the BAH release computes it")(_bah_ap)
