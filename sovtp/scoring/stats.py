"""Uncertainty and paired comparison: confidence intervals and McNemar's test.

A benchmark of a few hundred clips gives accuracies that move by several points between
resamples, so every headline number in a report carries a 95 % interval, and every claim that
variant B beats variant A carries a paired test on the *same* samples.

Two methods, and every :class:`Interval` names its own (``method``):

- ``wilson``: a metric that is one proportion of samples (accuracy / WAR, the invalid rate) gets
  the Wilson score interval.  A percentile bootstrap of a proportion collapses to [1, 1] when
  every answer is right (every resample is 100 %) — as if 20 right answers made the accuracy
  certain; Wilson's interval at 20/20 is [83.9 %, 100 %].
- ``bootstrap``: every other metric (UAR, F1, AP, a paired difference …) — a percentile
  bootstrap over samples.  Its interval can still have zero width (all answers right, or two
  variants that agree on every sample); :func:`zero_width` finds those so a report can say
  that this is no certainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sovtp.scoring.metrics import war_uar_codes

WILSON = "wilson"
BOOTSTRAP = "bootstrap"

METHOD_TEXT = {
    WILSON: "Wilson score interval (a proportion of samples; it does not collapse at 0 % or 100 %)",
    BOOTSTRAP: "percentile bootstrap over samples",
}


@dataclass
class Interval:
    value: float
    low: float
    high: float
    method: str = BOOTSTRAP

    def to_dict(self) -> dict[str, float | str]:
        return {"value": self.value, "low": self.low, "high": self.high, "method": self.method}


def wilson(k: int, n: int, alpha: float = 0.05) -> Interval:
    """The Wilson score interval of the proportion ``k / n`` (no continuity correction; the
    same as ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``).  Unlike a
    bootstrap or the Wald interval it keeps a width at 0 and n successes."""
    from scipy.stats import norm

    if n <= 0:
        return Interval(0.0, 0.0, 1.0, WILSON)  # no samples: nothing is known
    p = k / n
    z = float(norm.ppf(1 - alpha / 2))
    d = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / d
    half = z / d * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if k == 0 else max(0.0, float(mid - half))
    hi = 1.0 if k == n else min(1.0, float(mid + half))
    return Interval(float(p), lo, hi, WILSON)


def zero_width(iv: dict[str, float | str] | Interval) -> bool:
    """A bootstrap interval with no width (every resample gave the same value)."""
    d = iv.to_dict() if isinstance(iv, Interval) else iv
    return d.get("method", BOOTSTRAP) == BOOTSTRAP and d["high"] - d["low"] < 1e-12


def bootstrap_war_uar(
    g: np.ndarray, p: np.ndarray, n_labels: int, n_boot: int = 1000, seed: int = 0, alpha=0.05
) -> dict[str, Interval]:
    """WAR (a proportion of samples): the Wilson score interval; UAR: a percentile bootstrap
    (resampling samples with replacement)."""
    _, uar = war_uar_codes(g, p, n_labels)
    n = len(g)
    if n == 0:
        return {"war": wilson(0, 0, alpha), "uar": Interval(0, 0, 0)}
    rng = np.random.default_rng(seed)
    uars = np.empty(n_boot)
    for b in range(n_boot):
        ix = rng.integers(0, n, n)
        uars[b] = war_uar_codes(g[ix], p[ix], n_labels)[1]
    lo_u, hi_u = np.percentile(uars, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    right = int((np.asarray(g) == np.asarray(p)).sum())
    return {
        "war": wilson(right, n, alpha),
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
