"""Recognition metrics over (gold, predicted) pairs — plain numpy, one confusion matrix.

Conventions that published tables rely on, stated once:

- **WAR** (weighted average recall) is accuracy over all scored samples; **UAR** is the mean of
  per-class recalls over the classes that occur in the gold labels.
- An invalid answer (no label, a refusal, a failed request) stays in the denominator and is never
  right: it is counted in the ``invalid`` column of the confusion matrix, never dropped, never
  guessed.
- Macro F1 averages over gold classes; weighted F1 weights each class by its gold support.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

INVALID = "<invalid>"


@dataclass
class Confusion:
    """Counts ``matrix[gold, pred]`` over ``labels`` + one trailing column for invalid answers."""

    labels: list[str]
    matrix: np.ndarray  # (n, n+1) int

    @classmethod
    def build(
        cls, gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None = None
    ) -> Confusion:
        labs = list(labels) if labels else sorted(set(gold))
        idx = {lab: i for i, lab in enumerate(labs)}
        n = len(labs)
        m = np.zeros((n, n + 1), dtype=np.int64)
        for g, p in zip(gold, pred, strict=True):
            if g not in idx:
                raise ValueError(f"gold label {g!r} is not in the label set {labs}")
            j = idx.get(p, n) if p is not None else n  # outside the set counts as invalid
            m[idx[g], j] += 1
        return cls(labs, m)

    @property
    def support(self) -> np.ndarray:
        return self.matrix.sum(axis=1)

    @property
    def total(self) -> int:
        return int(self.matrix.sum())


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


@dataclass
class Metrics:
    n: int
    accuracy: float
    war: float
    uar: float
    macro_f1: float
    weighted_f1: float
    invalid_rate: float
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, Any] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        return {
            "war": self.war,
            "uar": self.uar,
            "macro_f1": self.macro_f1,
            "weighted_f1": self.weighted_f1,
            "invalid_rate": self.invalid_rate,
        }

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _per_class(m: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Per-class (precision, recall, f1, support) from an (n, n+1) count matrix (the last
    column is the invalid answers: never a hit, always a miss)."""
    tp = np.diag(m[:, :n]).astype(float)
    support = m.sum(axis=1).astype(float)
    predicted = m[:, :n].sum(axis=0).astype(float)
    recall = _safe_div(tp, support)
    precision = _safe_div(tp, predicted)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return precision, recall, f1, support


def from_confusion(c: Confusion) -> Metrics:
    m = c.matrix
    n = len(c.labels)
    h = headline_from_matrix(m, n)
    precision, recall, f1, support = _per_class(m, n)
    per_class = {
        lab: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, lab in enumerate(c.labels)
    }
    return Metrics(
        n=int(support.sum()),
        accuracy=h.war,
        war=h.war,
        uar=h.uar,
        macro_f1=h.macro_f1,
        weighted_f1=h.weighted_f1,
        invalid_rate=h.invalid_rate,
        per_class=per_class,
        confusion={"labels": c.labels, "columns": [*c.labels, INVALID], "matrix": m.tolist()},
    )


@dataclass(frozen=True)
class Headline:
    """The scalar label metrics alone (what a bootstrap resample needs: no per-class tables)."""

    war: float
    uar: float
    macro_f1: float
    weighted_f1: float
    invalid_rate: float


def headline_from_matrix(m: np.ndarray, n: int) -> Headline:
    """The scalar label metrics from an (n, n+1) count matrix (what a bootstrap resample needs;
    :func:`from_confusion` adds the per-class tables)."""
    _, recall, f1, support = _per_class(m, n)
    tp = np.diag(m[:, :n]).astype(float)
    present = support > 0
    total = float(support.sum())
    if not total:
        return Headline(0.0, 0.0, 0.0, 0.0, 0.0)
    return Headline(
        war=float(tp.sum() / total),
        uar=float(recall[present].mean()) if present.any() else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        weighted_f1=float((f1 * support).sum() / total),
        invalid_rate=float(m[:, n].sum() / total),
    )


def compute(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None = None
) -> Metrics:
    """All recognition metrics for one system × variant."""
    return from_confusion(Confusion.build(gold, pred, labels))


def encode(
    gold: Iterable[str], pred: Iterable[str | None], labels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (gold, pred) with ``len(labels)`` for invalid — what resampling works on."""
    idx = {lab: i for i, lab in enumerate(labels)}
    n = len(labels)
    g = np.fromiter((idx[x] for x in gold), dtype=np.int64)
    p = np.fromiter((idx.get(x, n) if x is not None else n for x in pred), dtype=np.int64)
    return g, p


def war_uar_codes(g: np.ndarray, p: np.ndarray, n_labels: int) -> tuple[float, float]:
    """WAR and UAR from integer codes (vectorised; used inside the bootstrap)."""
    right = g == p
    support = np.bincount(g, minlength=n_labels)
    hits = np.bincount(g[right], minlength=n_labels)
    present = support > 0
    return float(right.mean()) if len(g) else 0.0, float(
        (hits[present] / support[present]).mean()
    ) if present.any() else 0.0
