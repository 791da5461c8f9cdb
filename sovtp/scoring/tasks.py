"""Task types beyond single-label recognition: binary detection (with presentation-attack
detection's error rates) and interval spotting.  Plain numpy, no scikit-learn in the core.

Conventions, stated once because published tables differ on them:

**Binary.** ``y`` is 1 for the positive class, ``s`` the system's score for it (higher = more
positive).  A sample with no score (an invalid answer, a failed request) is never dropped: it is
ranked as wrong as it can be — below every score when its gold is positive, above every score
when negative — so a missing answer can only cost.
AP is scikit-learn's step-wise ``average_precision_score`` (precision at each distinct
threshold weighted by the recall gained); ROC-AUC is the Mann–Whitney statistic with ties
counted one half; EER is the mean of the two error rates at the ROC point where they are
closest, with that point's threshold.

**Presentation-attack detection** (ISO/IEC 30107-3 vocabulary).  The positive class is the
*attack*; a presentation is called an attack when ``s >= threshold``.  APCER (per attack
instrument species, and its worst) is the share of attacks called bona fide; BPCER the share of
bona fide presentations called attacks.  The threshold is fixed on a development split at its
EER point and applied unchanged to the test split (ISO/IEC 30107-3 practice; a threshold
chosen on test would flatter every number).  ACER = (worst APCER + BPCER) / 2 is the
competition metric of OULU-NPU and CASIA-SURF — it is **not** an ISO metric (ISO/IEC
30107-3:2023 advises against averaging APCER and BPCER).  HTER = (APCER over all attacks +
BPCER) / 2 at the fixed threshold.  BPCER20 / BPCER100 are the BPCER at the threshold where the
worst APCER is at most 5 % / 1 % (the ISO operating points), found on the scored split itself.

**Intervals** (micro-expression spotting, MEGC protocol).  A spotted interval is a true
positive when its IoU with a ground-truth interval of the same video is at least 0.5; matching
is greedy by IoU, each ground truth and each spotted interval matched at most once.  TP, FP and
FN are summed over the whole dataset before precision, recall and F1 (not averaged per video).
STRS = spotting F1 × recognition F1, the latter the macro F1 of the emotion labels on the
correctly spotted intervals (gold classes present among them).  Frame intervals are inclusive
(``[10, 19]`` is 10 frames); second intervals are continuous.

**Regression** (valence / arousal / dominance, AVEC/ABAW style).  Metrics over the whole set:
Lin's CCC ``2·cov / (var_y + var_p + (mean_y − mean_p)²)`` with population moments (0 when
undefined), Pearson's r (0 when a side is constant) and RMSE.  A missing prediction (NaN: an
invalid answer) is never dropped: it becomes the scale's midpoint — the uninformative answer — so
it can only cost.  ``high``/``low`` bins are ``> midpoint`` / the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sovtp.types import Span

TASKS = ("single_label", "binary", "intervals", "regression")

# ---------------------------------------------------------------------------------- binary


def fill_missing(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Scores with each NaN replaced by the worst value for its sample (see module doc)."""
    s = np.asarray(s, dtype=float).copy()
    y = np.asarray(y, dtype=bool)
    miss = ~np.isfinite(s)
    if not miss.any():
        return s
    ok = s[~miss]
    lo, hi = (float(ok.min()), float(ok.max())) if ok.size else (0.0, 1.0)
    s[miss & y] = lo - 1.0
    s[miss & ~y] = hi + 1.0
    return s


def _distinct(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (tp, fp) at each distinct score, high to low, and those scores."""
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last].astype(float)
    fp = (last + 1 - tp).astype(float)
    return tp, fp, s[last]


def average_precision(y: Sequence[int], s: Sequence[float]) -> float:
    """AP of the positive class (scikit-learn's definition)."""
    y = np.asarray(y, dtype=bool)
    s = fill_missing(y, np.asarray(s, dtype=float))
    if not y.any():
        return 0.0
    tp, fp, _ = _distinct(y, s)
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(y: Sequence[int], s: Sequence[float]) -> float:
    """Area under the ROC curve (ties count one half); 0.5 when a class is absent."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    s = fill_missing(y, np.asarray(s, dtype=float))
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    r = rankdata(s)
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def eer(y: Sequence[int], s: Sequence[float]) -> tuple[float, float]:
    """(equal error rate, its threshold): at the threshold where the miss rate (positives below
    it) and the false-alarm rate (negatives at or above it) are closest, their mean."""
    y = np.asarray(y, dtype=bool)
    s = fill_missing(y, np.asarray(s, dtype=float))
    if not y.any() or y.all():
        return 0.0, float("inf")
    tp, fp, th = _distinct(y, s)
    fnr = 1.0 - tp / y.sum()
    fpr = fp / (~y).sum()
    # the threshold above every score: nothing called positive
    fnr, fpr, th = np.r_[1.0, fnr], np.r_[0.0, fpr], np.r_[np.inf, th]
    i = int(np.argmin(np.abs(fnr - fpr)))
    return float((fnr[i] + fpr[i]) / 2), float(th[i])


@dataclass
class PadRates:
    """Error rates of a presentation-attack detector at one threshold."""

    threshold: float
    apcer_per_type: dict[str, float]
    apcer: float  # worst over attack types (ISO reports the maximum over species)
    apcer_all: float  # over all attacks pooled (what HTER uses)
    bpcer: float
    acer: float  # (worst APCER + BPCER) / 2 — not an ISO metric
    hter: float  # (pooled APCER + BPCER) / 2

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def pad_rates(
    attack: Sequence[int], s: Sequence[float], types: Sequence[str | None], threshold: float
) -> PadRates:
    """APCER per attack type / worst / pooled, BPCER, ACER and HTER at ``threshold``
    (attack called when ``s >= threshold``)."""
    y = np.asarray(attack, dtype=bool)
    s = fill_missing(y, np.asarray(s, dtype=float))
    called = s >= threshold
    tarr = np.array([t or "attack" for t in types], dtype=object)
    per = {}
    for t in sorted({str(x) for x in tarr[y]}):
        m = y & (tarr == t)
        per[t] = float((~called[m]).mean())
    worst = max(per.values()) if per else 0.0
    pooled = float((~called[y]).mean()) if y.any() else 0.0
    bpcer = float(called[~y].mean()) if (~y).any() else 0.0
    return PadRates(threshold, per, worst, pooled, bpcer, (worst + bpcer) / 2, (pooled + bpcer) / 2)


def bpcer_at_apcer(
    attack: Sequence[int], s: Sequence[float], types: Sequence[str | None], target: float
) -> float:
    """The lowest BPCER over thresholds at which the worst APCER is at most ``target``
    (BPCER20: ``target=0.05``; BPCER100: ``0.01``)."""
    y = np.asarray(attack, dtype=bool)
    s = fill_missing(y, np.asarray(s, dtype=float))
    if not y.any():
        return 0.0
    if (~y).sum() == 0:
        return 0.0
    tarr = np.array([t or "attack" for t in types], dtype=object)
    # APCER grows and BPCER falls with the threshold: the best admissible threshold is the
    # highest one (a score value, or -inf) at which every species still has APCER <= target
    cands = np.r_[-np.inf, np.unique(s)]
    worst = np.zeros(len(cands))
    for t in {str(x) for x in tarr[y]}:
        g = np.sort(s[y & (tarr == t)])
        worst = np.maximum(worst, np.searchsorted(g, cands, "left") / len(g))
    neg = np.sort(s[~y])
    bpcer = 1.0 - np.searchsorted(neg, cands, "left") / len(neg)
    ok = worst <= target + 1e-12
    return float(bpcer[ok].min()) if ok.any() else 1.0


# ------------------------------------------------------------------------------- intervals


def iou(a: Sequence[float], b: Sequence[float], frames: bool = True) -> float:
    """Intersection over union of two intervals; ``frames``: inclusive frame indices."""
    one = 1.0 if frames else 0.0
    inter = min(a[1], b[1]) - max(a[0], b[0]) + one
    if inter <= 0:
        return 0.0
    union = (a[1] - a[0] + one) + (b[1] - b[0] + one) - inter
    return float(inter / union) if union > 0 else 0.0


def match_intervals(
    pred: Sequence[Span], gold: Sequence[Span], threshold: float = 0.5, frames: bool = True
) -> list[tuple[int, int]]:
    """(pred index, gold index) pairs with IoU >= threshold, greedy by IoU, each used once."""
    cand = []
    for i, p in enumerate(pred):
        for j, g in enumerate(gold):
            v = iou(p, g, frames)
            if v >= threshold:
                cand.append((-v, i, j))
    cand.sort()
    used_p: set[int] = set()
    used_g: set[int] = set()
    out = []
    for _, i, j in cand:
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
            out.append((i, j))
    return out


@dataclass
class SpotCounts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    pairs: list[tuple[str | None, str | None]] = field(default_factory=list)  # (gold, pred)

    def add(self, other: SpotCounts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.pairs += other.pairs


def spot_video(
    pred: Sequence[Span], gold: Sequence[Span], threshold: float = 0.5, frames: bool = True
) -> SpotCounts:
    """TP/FP/FN of one video, and the (gold, predicted) labels of its true positives."""
    m = match_intervals(pred, gold, threshold, frames)
    pairs = [(_lab(gold[j]), _lab(pred[i])) for i, j in m]
    return SpotCounts(len(m), len(pred) - len(m), len(gold) - len(m), pairs)


def _lab(x: Sequence) -> str | None:
    return x[2] if len(x) > 2 else None


def spotting_scores(c: SpotCounts, labels: Sequence[str] | None = None) -> dict[str, float]:
    """Precision, recall, F1 from dataset-summed counts; recognition F1 and STRS."""
    from sovtp.scoring.metrics import compute

    prec = c.tp / (c.tp + c.fp) if c.tp + c.fp else 0.0
    rec = c.tp / (c.tp + c.fn) if c.tp + c.fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    labelled = [(g, p) for g, p in c.pairs if g is not None]
    if labelled:
        labs = list(labels) if labels else sorted({g for g, _ in labelled})
        rf1 = compute([g for g, _ in labelled], [p for _, p in labelled], labs).macro_f1
    else:
        rf1 = 0.0
    return {
        "spot_precision": prec,
        "spot_recall": rec,
        "spot_f1": f1,
        "recog_f1": rf1,
        "strs": f1 * rf1,
        "tp": float(c.tp),
        "fp": float(c.fp),
        "fn": float(c.fn),
    }


# ------------------------------------------------------------------------------ regression


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
    """Pearson's r; 0 when either side is constant (or fewer than two samples)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) < 2 or y.std() == 0 or p.std() == 0:
        return 0.0
    return float(np.corrcoef(y, p)[0, 1])


def rmse(y: Sequence[float], p: Sequence[float]) -> float:
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return float(np.sqrt(np.mean((y - p) ** 2))) if len(y) else 0.0


def high_low_labels(values: Sequence[float], midpoint: float = 0.0) -> list[str]:
    """``high`` above the midpoint, else ``low`` (the DEAP/MAHNOB-style binary protocol)."""
    return ["high" if v > midpoint else "low" for v in values]


def high_low_scores(y: np.ndarray, p: np.ndarray, mid: float) -> tuple[float, float]:
    """(accuracy, macro F1 over the gold bins present) of the high/low bins of ``p`` vs ``y``."""
    gy, gp = np.asarray(y) > mid, np.asarray(p) > mid
    acc = float((gy == gp).mean()) if len(gy) else 0.0
    f1s = []
    for c in (True, False):
        if not (gy == c).any():
            continue
        tp = float(((gy == c) & (gp == c)).sum())
        prec = tp / max(1.0, float((gp == c).sum()))
        rec = tp / float((gy == c).sum())
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return acc, float(np.mean(f1s)) if f1s else 0.0


def hard_score(
    label: str | None,
    confidence: float | None,
    positive: str,
    negative: str | None,
) -> float:
    """A positive-class score from an answer: its confidence when it chose the positive
    class, 1 − confidence when it chose ``negative``, 1/0 without a confidence; NaN when
    invalid — no label, or one that is neither class (``negative`` None: any other label).
    A confidence written as a percentage (1 < c ≤ 100) is read as c / 100."""
    if label is None or (negative is not None and label not in (positive, negative)):
        return float("nan")
    c = 1.0 if confidence is None else float(confidence)
    if 1.0 < c <= 100.0:
        c /= 100.0
    c = min(max(c, 0.0), 1.0)
    return c if label == positive else 1.0 - c
