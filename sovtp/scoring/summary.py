"""Prediction rows → the numbers a report shows: per system × variant metrics with CIs, paired
comparisons against a base, difficulty tiers and per-face scores.

Rows are plain dicts as written to ``predictions.jsonl`` (``sample_id``, ``system``, ``variant``,
``gold``, ``label``, ``parse_status`` and any manifest columns such as ``n_faces``, ``split``,
``face_id``).  Rows without gold are skipped (nothing to score against).

What is scored follows the evaluator's declared task (:mod:`sovtp.scoring.tasks`):
``single_label`` reads ``label``; ``binary`` also ``scores`` (or ``confidence``), ``split`` and
``attack_type``; ``intervals`` reads ``intervals`` and ``gold_intervals`` (one row per video);
``regression`` reads the gold value of each dimension from the row's (or its manifest ``meta``'s)
column of that name (``valence``, ``arousal`` …) and the prediction as described in
:func:`predicted_value`.  Metrics are looked up by name in :mod:`sovtp.scoring.registry`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sovtp.scoring import registry as R
from sovtp.scoring.metrics import compute, encode
from sovtp.scoring.stats import bootstrap_delta, mcnemar
from sovtp.scoring.tasks import eer, hard_score

_KEEP = ("system", "variant", "gold", "label", "parse_status", "error", "n_faces", "face_id")
# what each task reads beyond the label columns
_TASK_KEEP = {
    "single_label": (),
    "binary": ("scores", "confidence", "split", "attack_type", "attack"),
    "intervals": ("intervals", "gold_intervals"),
    "regression": ("scores", "confidence"),  # and the dimension columns (options.dims)
}
DEFAULT_METRICS = {
    "single_label": ["war", "uar", "macro_f1", "weighted_f1"],
    "binary": ["ap", "roc_auc", "macro_f1", "eer", "war", "uar"],
    "intervals": ["spot_f1", "spot_precision", "spot_recall", "recog_f1", "strs"],
    "regression": ["ccc", "pcc", "rmse", "high_low_accuracy", "high_low_f1", "invalid_rate"],
}
DEFAULT_HEADLINE = {
    "single_label": ["war", "uar"],
    "binary": ["ap", "macro_f1"],
    "intervals": ["spot_f1", "strs"],
    "regression": ["ccc", "high_low_f1"],
}
_PAD = {"apcer", "bpcer", "acer", "hter", "bpcer20", "bpcer100"}
_SOFT = ("votes", "confidence", "scores")  # soft labels (DFEW's votes) and the answer's confidence


def _key(r: dict[str, Any]) -> tuple[str, str]:
    return (str(r.get("system") or ""), str(r.get("variant") or ""))


def faces_tier(n: Any) -> str:
    try:
        k = int(n)
    except (TypeError, ValueError):
        return "unknown"
    return "0 faces" if k == 0 else "1 face" if k == 1 else "2 faces" if k == 2 else "3+ faces"


def _has_gold(r: dict[str, Any], task: str, dims: Sequence[str] = ()) -> bool:
    if task == "regression":
        return all(np.isfinite(_value(_field(r, d))) for d in dims)
    return r.get("gold_intervals" if task == "intervals" else "gold") is not None


def _field(r: dict[str, Any], k: str) -> Any:
    v = r.get(k)
    return v if v is not None else (r.get("meta") or {}).get(k)


def _value(x: Any) -> float:
    """A number from a row cell (a CSV gives strings); NaN when it is none."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v if np.isfinite(v) else float("nan")


def regression_options(opt: Mapping[str, Any]) -> tuple[list[str], float, float, list[float]]:
    """(dims, scale low, scale high, midpoint per dimension) of a regression task's options:
    ``dims`` (default ``[valence]``), ``scale`` (default ``[-1, 1]``) and ``midpoint``
    (default the scale's centre; one number or one per dimension)."""
    dims = list(opt.get("dims") or ["valence"])
    lo, hi = (float(x) for x in (opt.get("scale") or (-1.0, 1.0)))
    mid = opt.get("midpoint")
    mid = (lo + hi) / 2 if mid is None else mid
    mids = [float(m) for m in mid] if isinstance(mid, (list, tuple)) else [float(mid)] * len(dims)
    if len(mids) != len(dims):
        raise ValueError(f"{len(mids)} midpoints for {len(dims)} dimensions {dims}")
    return dims, lo, hi, mids


def predicted_value(r: dict[str, Any], dim: str, first: bool, lo: float, hi: float) -> float:
    """A row's predicted value on ``dim``: its ``scores[dim]`` when it gave a number (a
    regressor, or a JSON answer with ``scores``); else — for the first dimension only, which a
    ``high``/``low`` answer is about — the answer's probability of ``high`` on the scale:
    ``lo + P(high)·(hi − lo)``, P(high) being its confidence (1 without one; a percentage read
    as such) when it said ``high`` and 1 − that when ``low``; NaN when it has neither (an
    invalid answer, scored as the midpoint)."""
    sc = r.get("scores") or {}
    if isinstance(sc, Mapping) and np.isfinite(_value(sc.get(dim))):
        return _value(sc.get(dim))
    lab = r.get("label")
    if not first or lab not in ("high", "low"):
        return float("nan")
    c = _value(r.get("confidence"))
    return lo + hard_score(lab, c if np.isfinite(c) else None, "high", "low") * (hi - lo)


TIE = 1e-6  # how far a label moves a tied score: below any real score's resolution


def positive_score(r: dict[str, Any], positive: str, negative: str | None) -> float:
    """A row's score for the positive class: its ``scores[positive]``; else
    ``1 - scores[negative]``; else a hard decision from its label (its confidence when it gave
    one, else 1/0 — a label-only system is one point on the ROC); NaN when it has no answer
    (ranked as wrong as possible, see :mod:`sovtp.scoring.tasks`)."""
    sc = r.get("scores") or {}
    lab = r.get("label")
    if positive in sc and sc[positive] is not None:
        p = float(sc[positive])
        if negative is not None and sc.get(negative) is not None and float(sc[negative]) == p:
            # a tie (e.g. 0.5/0.5 from a reasoner with no evidence): the answer's own label
            # breaks it, so a threshold never reads "bona_fide, 0.5/0.5" as an attack
            return p + (TIE if lab == positive else -TIE if lab == negative else 0.0)
        return p
    if negative is not None and sc.get(negative) is not None:
        return 1.0 - float(sc[negative])
    if lab is None or lab not in (positive, negative):
        return float("nan")
    return hard_score(lab, r.get("confidence"), positive, negative)


def _spans(x: Any) -> list[tuple[float, float, str | None]]:
    return [(float(i[0]), float(i[1]), i[2] if len(i) > 2 else None) for i in (x or [])]


def task_data(
    task: str,
    rs: Sequence[dict[str, Any]],
    labels: Sequence[str],
    options: Mapping[str, Any] | None = None,
    threshold: float = 0.5,
) -> Any:
    """The per-sample arrays the registry's metrics read, from slim rows (one per sample)."""
    opt = dict(options or {})
    labels = list(labels)
    if task == "regression":
        return regression_data(rs, opt)
    if task == "intervals":
        return R.IntervalData(
            [(_spans(r.get("intervals")), _spans(r.get("gold_intervals"))) for r in rs],
            labels or None,
            float(opt.get("iou", 0.5)),
            opt.get("unit", "frames") == "frames",
        )
    g, p = encode([r["gold"] for r in rs], [r.get("label") for r in rs], labels)
    if task == "single_label":
        return R.LabelData(g, p, labels)
    pos, neg = binary_labels(labels, opt)
    y = np.array([r["gold"] == pos for r in rs], dtype=bool)
    s = np.array([positive_score(r, pos, neg) for r in rs], dtype=float)
    # one reading of the attack species everywhere (manifest ``attack`` or a run's
    # ``attack_type``, normalised), so the summary's APCER keys match the PAD section's
    from sovtp.data.pad import attack_of

    types = np.array([attack_of(r) or "attack" for r in rs], dtype=object)
    return R.BinaryData(g, p, labels, y, s, types, threshold)


def regression_data(rs: Sequence[dict[str, Any]], opt: Mapping[str, Any]) -> R.RegressionData:
    """Gold and predicted values (see :func:`predicted_value`) and the answers' high/low
    labels of the first dimension (a label outside high/low is invalid; a row without a label
    but with a value is binned at the midpoint)."""
    dims, lo, hi, mids = regression_options(opt)
    y = np.array([[_value(_field(r, d)) for d in dims] for r in rs], dtype=float)
    p = np.array(
        [[predicted_value(r, d, j == 0, lo, hi) for j, d in enumerate(dims)] for r in rs],
        dtype=float,
    ).reshape(len(rs), len(dims))
    codes = {lab: i for i, lab in enumerate(R.HIGH_LOW)}
    lab = []
    for r, v in zip(rs, p[:, 0] if len(dims) else [], strict=True):
        if r.get("label") is not None:
            lab.append(codes.get(r["label"], len(codes)))
        else:
            lab.append(len(codes) if not np.isfinite(v) else 0 if v > mids[0] else 1)
    return R.RegressionData(y.reshape(len(rs), len(dims)), p, dims, mids, np.array(lab, int))


def binary_labels(labels: Sequence[str], opt: Mapping[str, Any]) -> tuple[str, str | None]:
    """(positive, negative) of a binary task: ``options.positive`` or the first label."""
    pos = opt.get("positive") or labels[0]
    if pos not in labels:
        raise ValueError(f"positive class {pos!r} is not in the label set {list(labels)}")
    rest = [x for x in labels if x != pos]
    return pos, (rest[0] if len(rest) == 1 else None)


def summarise(
    rows: Iterable[dict[str, Any]],
    labels: Sequence[str],
    *,
    base: str | None = None,
    tier_by: str | None = "n_faces",
    n_boot: int = 1000,
    seed: int = 0,
    order: Sequence[str] = (),
    task: str = "single_label",
    metrics: Sequence[str] | None = None,
    headline: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The scoring section of a report (a JSON-able dict); variants are listed in ``order``
    (an ablation's rungs) and then by name.

    ``task``, ``metrics`` and ``headline`` come from the evaluator spec (defaults per task in
    ``DEFAULT_METRICS`` / ``DEFAULT_HEADLINE``); every named metric gets a bootstrap CI and every
    comparison a paired-bootstrap delta of each headline metric.  A binary task with
    ``options.dev_split`` fixes its decision threshold on that split's rows (its EER point) and
    scores the other rows; without one the threshold is the EER point of the scored rows
    themselves (said in ``threshold_source``; optimistic)."""
    labels = list(R.HIGH_LOW) if task == "regression" else list(labels)
    opt = dict(options or {})
    names = list(dict.fromkeys(metrics or DEFAULT_METRICS[task]))
    head = list(dict.fromkeys(headline or DEFAULT_HEADLINE[task]))
    for n in [*names, *head]:
        R.get(task, n)  # an unknown name fails before any work
    ci_names = list(dict.fromkeys([*head, *names]))
    if task != "intervals":
        ci_names = list(dict.fromkeys(["war", "uar", *ci_names]))  # the report's table reads them
    keep = _KEEP + _TASK_KEEP[task] + (_SOFT if task == "single_label" else ())
    dims: list[str] = regression_options(opt)[0] if task == "regression" else []
    keep = keep + tuple(dims)
    dev_split = opt.get("dev_split") if task == "binary" else None
    test_split = opt.get("test_split") if dev_split else None
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    dev: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        if not _has_gold(r, task, dims):
            continue
        sid = str(r["sample_id"]) + (f"#face{r['face_id']}" if r.get("face_id") is not None else "")
        # keep only what scoring reads: a 10,000-sample run's rows never sit in memory whole
        slim = {k: r.get(k, (r.get("meta") or {}).get(k)) for k in keep}
        if tier_by and tier_by not in keep:
            slim[tier_by] = r.get(tier_by, (r.get("meta") or {}).get(tier_by))
        if test_split and slim.get("split") not in (None, dev_split, test_split):
            continue  # e.g. train rows of a `--split all` run: neither scored nor threshold
        # a re-run row of the same sample replaces the earlier one
        (dev if dev_split and slim.get("split") == dev_split else groups)[_key(r)][sid] = slim
    out: dict[str, Any] = {
        "labels": labels,
        "task": task,
        "metric_names": names,
        "headline": head,
        "systems": [],
        "comparisons": [],
        "tiers": {},
    }
    rank = {v: i for i, v in enumerate(order)}
    keys = sorted(groups, key=lambda k: (k[0], rank.get(k[1], len(rank)), k[1]))
    thresholds: dict[tuple[str, str], float] = {}
    for key in keys:
        rs = list(groups[key].values())
        system, variant = key
        th, th_src = 0.5, ""
        if task == "binary":
            th, th_src = _threshold(key, rs, dev, labels, opt, dev_split)
            thresholds[key] = th
        data = task_data(task, rs, labels, opt, th)
        point = R.evaluate(task, names, data)
        ci = R.bootstrap(task, ci_names, data, n_boot=n_boot, seed=seed)
        entry: dict[str, Any] = {"system": system, "variant": variant, "n": len(rs)}
        if task == "intervals":
            sc = data.scores()
            entry["metrics"] = {**point, **{k: sc[k] for k in ("tp", "fp", "fn")}}
        else:
            m = data.confusion_metrics
            entry["metrics"] = {**m.headline(), **point}
            entry["n"] = m.n
        entry["ci"] = {k: v.to_dict() for k, v in ci.items()}
        if task != "intervals":
            entry["per_class"] = m.per_class
            entry["confusion"] = m.confusion
        if task == "binary":
            entry["binary"] = _binary_details(data, th, th_src, names)
        entry["parse"] = _counts(r.get("parse_status") or "invalid" for r in rs)
        entry["errors"] = sum(1 for r in rs if r.get("error"))
        if task == "single_label" and (soft := soft_label_scores(rs, labels)):
            entry["soft_labels"] = soft
        if tier_by and task not in ("intervals", "regression"):
            entry["tiers"] = _tiers(rs, labels, tier_by)
        if task != "regression" and any(r.get("face_id") is not None for r in rs):
            entry["per_face"] = _grouped(rs, labels, lambda r: f"face {r.get('face_id')}")
        out["systems"].append(entry)
    ordered = {k: groups[k] for k in keys}
    out["comparisons"] = _compare(ordered, base, n_boot, seed, task, labels, opt, head, thresholds)
    return out


def _threshold(
    key: tuple[str, str],
    rs: list[dict[str, Any]],
    dev: Mapping[tuple[str, str], Mapping[str, dict[str, Any]]],
    labels: list[str],
    opt: Mapping[str, Any],
    dev_split: str | None,
) -> tuple[float, str]:
    """The decision threshold of a binary system: its dev split's EER point."""
    d_rows = list(dev.get(key, {}).values())
    src = d_rows if d_rows else rs
    d = task_data("binary", src, labels, opt)
    th = eer(d.y, d.s)[1]
    if d_rows:
        return th, f"EER point of split {dev_split!r} ({len(d_rows)} samples)"
    return th, "EER point of the scored samples themselves (no dev split: optimistic)"


def _binary_details(d: R.BinaryData, th: float, src: str, names: Sequence[str]) -> dict[str, Any]:
    from sovtp.scoring.tasks import pad_rates

    det: dict[str, Any] = {
        "threshold": th if np.isfinite(th) else None,
        "threshold_source": src,
        "n_positive": int(d.y.sum()),
        "n_missing_scores": int((~np.isfinite(d.s)).sum()),
    }
    if _PAD & set(names):
        r = pad_rates(d.y, d.s, d.types, th)
        det["apcer_per_type"] = r.apcer_per_type
        det["apcer_pooled"] = r.apcer_all
        det["note"] = "ACER is a competition metric (OULU-NPU), not an ISO/IEC 30107-3 metric"
    return det


def _counts(items: Iterable[str]) -> dict[str, int]:
    d: dict[str, int] = defaultdict(int)
    for x in items:
        d[x] += 1
    return dict(d)


def _grouped(rs: list[dict[str, Any]], labels: list[str], key) -> dict[str, dict[str, Any]]:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rs:
        by[key(r)].append(r)
    res = {}
    for k, sub in sorted(by.items()):
        m = compute([r["gold"] for r in sub], [r.get("label") for r in sub], labels)
        res[k] = {"n": m.n, "war": m.war, "uar": m.uar}
    return res


def _tiers(rs: list[dict[str, Any]], labels: list[str], tier_by: str) -> dict[str, Any]:
    if tier_by == "n_faces":
        return _grouped(rs, labels, lambda r: faces_tier(r.get("n_faces")))
    return _grouped(rs, labels, lambda r: str(r.get(tier_by)))  # resolved into the slim row


def _compare(
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]],
    base: str | None,
    n_boot: int,
    seed: int,
    task: str,
    labels: list[str],
    opt: Mapping[str, Any],
    head: Sequence[str],
    thresholds: Mapping[tuple[str, str], float],
) -> list[dict[str, Any]]:
    """Each variant against the base variant of its system (an ablation), and — when several
    systems ran the same variant — each system against the first; always on shared samples.
    ``delta`` holds a paired-bootstrap CI of B − A for each headline metric; label tasks also
    get ``delta_war`` and McNemar's test on per-sample correctness."""
    pairs: list[tuple[tuple[str, str], tuple[str, str]]] = []
    keys = list(groups)  # already in report order
    systems = list(dict.fromkeys(s for s, _ in keys))
    for s in systems:
        variants = [v for ss, v in keys if ss == s]
        b = base if base in variants else (variants[0] if variants else None)
        pairs += [((s, b), (s, v)) for v in variants if v != b]
    for v in dict.fromkeys(v for _, v in keys):
        syst = [s for s, vv in keys if vv == v]
        pairs += [((syst[0], v), (s, v)) for s in syst[1:]]
    out = []
    for a, b in pairs:
        shared = sorted(set(groups[a]) & set(groups[b]))
        da = task_data(task, [groups[a][k] for k in shared], labels, opt, thresholds.get(a, 0.5))
        db = task_data(task, [groups[b][k] for k in shared], labels, opt, thresholds.get(b, 0.5))
        c: dict[str, Any] = {
            "a": {"system": a[0], "variant": a[1]},
            "b": {"system": b[0], "variant": b[1]},
            "n_shared": len(shared),
        }
        if task != "intervals":
            la, lb = (da.label_data, db.label_data) if task == "regression" else (da, db)
            ra, rb = la.g == la.p, lb.g == lb.p
            c["delta_war"] = bootstrap_delta(ra, rb, n_boot, seed).to_dict()
            c["mcnemar"] = mcnemar(ra, rb).to_dict()
        delta = R.paired_bootstrap(task, head, da, db, n_boot=n_boot, seed=seed)
        c["delta"] = {k: v.to_dict() for k, v in delta.items()}
        out.append(c)
    return out


def soft_label_scores(
    rs: Sequence[dict[str, Any]], labels: Sequence[str], bins: int = 10
) -> dict[str, Any] | None:
    """How a system's answers sit with the annotators' votes (soft labels, ``votes``: label →
    count, e.g. DFEW's seven counts) and how well its confidence is calibrated; None when the
    rows have neither votes nor confidences.

    - ``vote_agreement``: the mean share of annotators who chose the system's answer (an invalid
      answer shares 0) — 1.0 only when every answer is every annotator's choice;
      ``vote_ceiling`` is what always answering the plurality would get.
    - ``ece``: expected calibration error over ``bins`` equal-width confidence bins, confidence
      (``confidence``, else ``scores[label]``) against being right about the gold label;
      ``ece_votes`` against the annotators' share for the answer instead.  Rows without a
      confidence (or with an invalid answer) are not in either; ``n_confidence`` counts those
      that are."""
    agree, ceiling, conf, hit, vshare = [], [], [], [], []
    for r in rs:
        votes = r.get("votes") if isinstance(r.get("votes"), dict) else {}
        counts = {k: float(v) for k, v in votes.items() if k in labels}
        total = sum(counts.values())
        lab = r.get("label") if r.get("parse_status") != "invalid" else None
        share = counts.get(lab, 0.0) / total if total else None
        if share is not None:
            agree.append(share)
            ceiling.append(max(counts.values()) / total)
        c = r.get("confidence")
        if c is None and lab is not None:
            c = (r.get("scores") or {}).get(lab)
        c = _value(c)
        if lab is not None and 0.0 <= c <= 1.0:
            conf.append(c)
            hit.append(float(lab == r.get("gold")))
            vshare.append(share)
    if not agree and not conf:
        return None

    def ece(c: list[float], y: list[float]) -> float | None:
        if not c:
            return None
        cb, yb = np.asarray(c), np.asarray(y)
        idx = np.minimum((cb * bins).astype(int), bins - 1)
        return float(
            sum(
                abs(yb[idx == b].mean() - cb[idx == b].mean()) * (idx == b).sum()
                for b in np.unique(idx)
            )
            / len(cb)
        )

    with_votes = [(c, s) for c, s in zip(conf, vshare, strict=True) if s is not None]
    return {
        "n_votes": len(agree),
        "vote_agreement": float(np.mean(agree)) if agree else None,
        "vote_ceiling": float(np.mean(ceiling)) if agree else None,
        "n_confidence": len(conf),
        "ece": ece(conf, hit),
        "ece_votes": ece([c for c, _ in with_votes], [s for _, s in with_votes]),
    }
