"""Valence / arousal regression metrics, registered in the metric registry on import.

A ``regression`` task: per sample, gold and predicted values on one or more dimensions
(``valence``, ``arousal``, ``dominance`` …).  A missing prediction (NaN: an invalid answer) is
never dropped: it becomes the scale's ``midpoint`` — the uninformative answer — so it can only
cost.  Metrics (all over the whole set, as AVEC/ABAW report them):

- ``ccc``: Lin's concordance correlation, ``2·cov / (var_y + var_p + (mean_y − mean_p)²)`` with
  population moments, averaged over dimensions; ``ccc_<dim>`` per dimension;
- ``pcc``: Pearson's r, averaged; ``rmse`` / ``rmse_<dim>`` (lower is better);
- ``high_low_accuracy`` / ``high_low_f1``: both sides binned at the midpoint (high when
  ``> midpoint``), accuracy and macro F1 of the two bins, averaged over dimensions — the
  DEAP/MAHNOB-style binary protocol.

The registry (:mod:`sovtp.scoring.registry`) knows three tasks; this module adds a fourth,
``regression``, to it at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sovtp.scoring import registry as R

TASK = "regression"
DIMS = ("valence", "arousal", "dominance")


@dataclass
class RegressionData:
    """Gold ``y`` and predicted ``p`` (N×D, NaN = missing), dimension names and midpoints."""

    y: np.ndarray
    p: np.ndarray
    dims: list[str] = field(default_factory=lambda: ["valence", "arousal"])
    midpoint: float | Sequence[float] = 0.0

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=float).reshape(len(self.y), -1)
        self.p = np.asarray(self.p, dtype=float).reshape(len(self.p), -1)
        if self.y.shape != self.p.shape or self.y.shape[1] != len(self.dims):
            raise ValueError(f"gold {self.y.shape}, prediction {self.p.shape}, dims {self.dims}")

    def __len__(self) -> int:
        return len(self.y)

    def take(self, ix: np.ndarray) -> RegressionData:
        return RegressionData(self.y[ix], self.p[ix], self.dims, self.midpoint)

    @property
    def mid(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.midpoint, dtype=float), (len(self.dims),))

    @property
    def filled(self) -> np.ndarray:
        """Predictions with each missing value replaced by its dimension's midpoint."""
        return np.where(np.isfinite(self.p), self.p, self.mid)


def ccc(y: Sequence[float], p: Sequence[float]) -> float:
    """Lin's concordance correlation coefficient (population moments); 0 when undefined."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) < 2:
        return 0.0
    my, mp = y.mean(), p.mean()
    cov = np.mean((y - my) * (p - mp))
    den = y.var() + p.var() + (my - mp) ** 2
    return float(2 * cov / den) if den > 0 else 0.0


def pcc(y: Sequence[float], p: Sequence[float]) -> float:
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) < 2 or y.std() == 0 or p.std() == 0:
        return 0.0
    return float(np.corrcoef(y, p)[0, 1])


def rmse(y: Sequence[float], p: Sequence[float]) -> float:
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return float(np.sqrt(np.mean((y - p) ** 2))) if len(y) else 0.0


def high_low_labels(values: Sequence[float], midpoint: float = 0.0) -> list[str]:
    """``high`` above the midpoint, else ``low`` (for the single-label/binary tasks)."""
    return ["high" if v > midpoint else "low" for v in values]


def _high_low(y: np.ndarray, p: np.ndarray, mid: float) -> tuple[float, float]:
    gy, gp = y > mid, p > mid
    acc = float((gy == gp).mean()) if len(y) else 0.0
    f1s = []
    for c in (True, False):
        if not (gy == c).any():
            continue  # macro over the gold classes present
        tp = float(((gy == c) & (gp == c)).sum())
        prec = tp / max(1.0, float((gp == c).sum()))
        rec = tp / float((gy == c).sum())
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return acc, float(np.mean(f1s)) if f1s else 0.0


def _per_dim(fn, d: RegressionData) -> list[float]:
    p = d.filled
    return [fn(d.y[:, j], p[:, j]) for j in range(len(d.dims))]


def _dim(fn, name: str):
    def f(d: RegressionData) -> float:
        if name not in d.dims:
            return float("nan")
        j = d.dims.index(name)
        return fn(d.y[:, j], d.filled[:, j])

    return f


def _register() -> None:
    R.REGISTRY.setdefault(TASK, {})
    R.register(TASK, "ccc", "concordance correlation, mean over dimensions")(
        lambda d: float(np.mean(_per_dim(ccc, d)))
    )
    R.register(TASK, "pcc", "Pearson correlation, mean over dimensions")(
        lambda d: float(np.mean(_per_dim(pcc, d)))
    )
    R.register(TASK, "rmse", "root mean squared error, mean over dimensions", False)(
        lambda d: float(np.mean(_per_dim(rmse, d)))
    )
    for dim in DIMS:
        R.register(TASK, f"ccc_{dim}", f"concordance correlation of {dim}")(_dim(ccc, dim))
        R.register(TASK, f"rmse_{dim}", f"RMSE of {dim}", False)(_dim(rmse, dim))

    def hl(d: RegressionData, k: int) -> float:
        p = d.filled
        return float(np.mean([_high_low(d.y[:, j], p[:, j], d.mid[j])[k]
                              for j in range(len(d.dims))]))  # fmt: skip

    R.register(TASK, "high_low_accuracy", "accuracy of high/low bins at the midpoint")(
        lambda d: hl(d, 0)
    )
    R.register(TASK, "high_low_f1", "macro F1 of high/low bins at the midpoint")(lambda d: hl(d, 1))


_register()
