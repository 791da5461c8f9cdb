"""Uncertainty and paired comparison: bootstrap confidence intervals and McNemar's test.

A benchmark of a few hundred clips gives accuracies that move by several points between
resamples, so every headline number in a report carries a 95 % interval, and every claim that
variant B beats variant A carries a paired test on the *same* samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sovtp.scoring.metrics import war_uar_codes


@dataclass
class Interval:
    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def bootstrap_war_uar(
    g: np.ndarray, p: np.ndarray, n_labels: int, n_boot: int = 1000, seed: int = 0, alpha=0.05
) -> dict[str, Interval]:
    """Percentile bootstrap (resampling samples with replacement) for WAR and UAR."""
    war, uar = war_uar_codes(g, p, n_labels)
    n = len(g)
    if n == 0:
        return {"war": Interval(0, 0, 0), "uar": Interval(0, 0, 0)}
    rng = np.random.default_rng(seed)
    wars = np.empty(n_boot)
    uars = np.empty(n_boot)
    for b in range(n_boot):
        ix = rng.integers(0, n, n)
        wars[b], uars[b] = war_uar_codes(g[ix], p[ix], n_labels)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    lo_w, hi_w = np.percentile(wars, q)
    lo_u, hi_u = np.percentile(uars, q)
    return {
        "war": Interval(war, float(lo_w), float(hi_w)),
        "uar": Interval(uar, float(lo_u), float(hi_u)),
    }


def bootstrap_mean(
    d: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> Interval:
    """Percentile bootstrap CI of the mean of per-sample values ``d``, resampling samples.

    Any paired contrast of accuracies is such a mean: B − A (a rung's delta), or a factorial
    effect — each sample's signed sum of its correctness under several variants — so the CI of
    one effect resamples the *samples*, keeping every variant of a sample together."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return Interval(0.0, 0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = np.array([d[rng.integers(0, n, n)].mean() for _ in range(n_boot)])
    lo, hi = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Interval(float(d.mean()), float(lo), float(hi))


def bootstrap_delta(
    right_a: np.ndarray, right_b: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha=0.05
) -> Interval:
    """Paired bootstrap CI of accuracy(B) − accuracy(A) over the same samples."""
    return bootstrap_mean(right_b.astype(float) - right_a.astype(float), n_boot, seed, alpha)


@dataclass
class McNemar:
    b: int  # A right, B wrong
    c: int  # A wrong, B right
    statistic: float
    p_value: float
    method: str

    def to_dict(self) -> dict[str, float | int | str]:
        return dict(self.__dict__)


def mcnemar(right_a: np.ndarray, right_b: np.ndarray) -> McNemar:
    """McNemar's test on paired correctness: exact binomial when the discordant pairs are few
    (b + c < 25), else χ² with continuity correction — the usual textbook switch."""
    from scipy import stats

    a = np.asarray(right_a, bool)
    bb = np.asarray(right_b, bool)
    b = int((a & ~bb).sum())
    c = int((~a & bb).sum())
    if b + c == 0:
        return McNemar(b, c, 0.0, 1.0, "exact")
    if b + c < 25:
        p = stats.binomtest(min(b, c), b + c, 0.5).pvalue
        return McNemar(b, c, float(min(b, c)), float(min(1.0, p)), "exact")
    chi2 = (abs(b - c) - 1) ** 2 / (b + c)
    return McNemar(b, c, float(chi2), float(stats.chi2.sf(chi2, 1)), "chi2-cc")
