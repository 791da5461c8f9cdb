"""BAH (ambivalence/hesitancy) scores as the BAH release computes them, at video and frame
level, with the invalid-answer rate beside them.

The release (``bah_metrics.py`` of its zero-shot code) reports, with class 1 = A/H present:

- **AVGF1**: the mean of the two classes' F1 (scikit-learn ``f1_score(average=None)``);
- **AP** of class 1: precision and recall at the thresholds 0, 0.001, ..., 0.999 on the
  class-1 probability (precision 0 where nothing is called positive), and the trapezoidal area
  under that precision–recall curve (``sklearn.metrics.auc``) — not scikit-learn's step-wise
  ``average_precision_score``, which sovtp's ``ap`` metric is; both are given;
- and frame-level versions of both over all frames of all test videos pooled.

One deliberate difference: the release's zero-shot script maps every answer that is not the
string "Non-Ambivalent" to class 1, so a refusal or a garbled answer counts as A/H.  Here an
answer that names neither class is *invalid*: it is wrong whatever the gold is (a miss for an
A/H video, a miss — not a false alarm — for a video without), it never adds a true or false
positive, and the share of such answers is reported as ``invalid_rate``.  For AP a missing
score is ranked as wrong as possible (:func:`sovtp.scoring.tasks.fill_missing`).

The registry (:mod:`sovtp.scoring.registry`) offers :func:`release_ap` as the ``binary`` metric
``bah_ap``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sovtp.scoring import tasks
from sovtp.scoring.metrics import compute
from sovtp.scoring.tasks import average_precision, fill_missing

POSITIVE = "ambivalence"
NEGATIVE = "none"
GRID = np.arange(0.0, 1.0, 0.001)


def release_ap(y: Sequence[int], p1: Sequence[float]) -> float:
    """AP of the positive class as the BAH release computes it (see the module doc); 0.0 when
    there is no positive sample (the release asserts there is one)."""
    y = np.asarray(y, dtype=bool)
    s = fill_missing(y, np.asarray(p1, dtype=float))
    n_pos = int(y.sum())
    if n_pos == 0:
        return 0.0
    called = s[None, :] >= GRID[:, None]  # (thresholds, samples)
    tp = (called & y).sum(1)
    fp = (called & ~y).sum(1)
    prec = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    rec = tp / n_pos
    # recall falls as the threshold rises: the area over increasing recall
    return float(-np.trapezoid(prec, rec))


def scores(
    gold: Sequence[str],
    pred: Sequence[str | None],
    p_pos: Sequence[float] | None = None,
    labels: Sequence[str] = (POSITIVE, NEGATIVE),
) -> dict[str, Any]:
    """AVGF1, each class's F1, AP (release and scikit-learn's) and the invalid-answer rate of
    one set of (gold, predicted label, positive-class score) triples; ``labels[0]`` is the
    positive class.  A prediction outside ``labels`` (None included) is invalid."""
    labs = list(labels)
    m = compute(list(gold), list(pred), labs)
    y = np.array([g == labs[0] for g in gold], dtype=bool)
    out: dict[str, Any] = {
        "n": m.n,
        "avgf1": m.macro_f1,
        "f1_pos": m.per_class[labs[0]]["f1"],
        "f1_neg": m.per_class[labs[1]]["f1"],
        "accuracy": m.war,
        "invalid_rate": m.invalid_rate,
        "n_invalid": int(round(m.invalid_rate * m.n)),
    }
    if p_pos is not None:
        s = np.asarray(p_pos, dtype=float)
        out["ap"] = release_ap(y, s)
        out["ap_sklearn"] = average_precision(y, s)
    return out


def hard_score(
    label: str | None,
    confidence: float | None,
    positive: str = POSITIVE,
    negative: str | None = NEGATIVE,
) -> float:
    """:func:`sovtp.scoring.tasks.hard_score` with BAH's two classes by default."""
    return tasks.hard_score(label, confidence, positive, negative)


def answer_score(r: dict[str, Any], positive: str = POSITIVE) -> float:
    """A prediction row's positive-class score: its ``scores[positive]`` when it gave one, else
    :func:`hard_score` of its label and confidence (NaN for an invalid answer)."""
    sc = r.get("scores") or {}
    if sc.get(positive) is not None:
        return float(sc[positive])
    neg = NEGATIVE if positive == POSITIVE else POSITIVE
    return hard_score(r.get("label"), r.get("confidence"), positive, neg)


def video_scores(rows: Sequence[dict[str, Any]], positive: str = POSITIVE) -> dict[str, Any]:
    """:func:`scores` over prediction rows (``gold``, ``label``, ``confidence`` or
    ``scores``); rows without gold are skipped."""
    rs = [r for r in rows if r.get("gold") is not None]
    neg = NEGATIVE if positive == POSITIVE else POSITIVE
    s = [answer_score(r, positive) for r in rs]
    return scores([r["gold"] for r in rs], [r.get("label") for r in rs], s, (positive, neg))


def frame_predictions(
    label: str | None,
    n_frames: int,
    score: float = float("nan"),
    intervals: Sequence[tuple[float, float]] | None = None,
    fps: float | None = None,
) -> tuple[list[str | None], np.ndarray]:
    """Per-frame (labels, positive scores) from one video-level answer: the answer broadcast to
    every frame, or — when the system answered with A/H ``intervals`` (seconds, with ``fps``) —
    A/H inside them and ``none`` elsewhere.  An invalid answer stays invalid on every frame."""
    if label is None and not intervals:
        return [None] * n_frames, np.full(n_frames, np.nan)
    if intervals:
        if fps is None:
            raise ValueError("intervals need the video's fps")
        from sovtp.data.bah_frames import frames_from_segments

        on = frames_from_segments(list(intervals), n_frames, fps).astype(bool)
        return [POSITIVE if x else NEGATIVE for x in on], on.astype(float)
    return [label] * n_frames, np.full(n_frames, score)


def frame_scores(
    videos: Sequence[tuple[np.ndarray, Sequence[str | None], np.ndarray]],
) -> dict[str, Any]:
    """Frame-level :func:`scores` over all frames of all videos pooled, as the release does;
    each video is (gold frames 1/0/−1, predicted labels per frame, positive scores per frame);
    frames whose gold is −1 (not annotated) are left out."""
    gold: list[str] = []
    pred: list[str | None] = []
    s: list[float] = []
    for g, p, sc in videos:
        g = np.asarray(g)
        if len(p) != len(g) or len(sc) != len(g):
            raise ValueError(f"a video has {len(g)} gold frames but {len(p)}/{len(sc)} predicted")
        keep = g >= 0
        gold += [POSITIVE if x == 1 else NEGATIVE for x in g[keep]]
        pred += [x for x, k in zip(p, keep, strict=True) if k]
        s += list(np.asarray(sc, dtype=float)[keep])
    return {**scores(gold, pred, s), "n_videos": len(videos)}
