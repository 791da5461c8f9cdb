"""Prediction rows → the numbers a report shows: per system × variant metrics with CIs, paired
comparisons against a base, difficulty tiers and per-face scores.

Rows are plain dicts as written to ``predictions.jsonl`` (``sample_id``, ``system``, ``variant``,
``gold``, ``label``, ``parse_status`` and any manifest columns such as ``n_faces``, ``split``,
``face_id``).  Rows without gold are skipped (nothing to score against).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sovtp.scoring.metrics import compute, encode
from sovtp.scoring.stats import bootstrap_delta, bootstrap_war_uar, mcnemar

_KEEP = ("system", "variant", "gold", "label", "parse_status", "error", "n_faces", "face_id")


def _key(r: dict[str, Any]) -> tuple[str, str]:
    return (str(r.get("system") or ""), str(r.get("variant") or ""))


def faces_tier(n: Any) -> str:
    try:
        k = int(n)
    except (TypeError, ValueError):
        return "unknown"
    return "0 faces" if k == 0 else "1 face" if k == 1 else "2 faces" if k == 2 else "3+ faces"


def summarise(
    rows: Iterable[dict[str, Any]],
    labels: Sequence[str],
    *,
    base: str | None = None,
    tier_by: str | None = "n_faces",
    n_boot: int = 1000,
    seed: int = 0,
    order: Sequence[str] = (),
) -> dict[str, Any]:
    """The scoring section of a report (a JSON-able dict); variants are listed in ``order``
    (an ablation's rungs) and then by name."""
    labels = list(labels)
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        if r.get("gold") is None:
            continue
        sid = str(r["sample_id"]) + (f"#face{r['face_id']}" if r.get("face_id") is not None else "")
        # keep only what scoring reads: a 10,000-sample run's rows never sit in memory whole
        slim = {k: r.get(k) for k in _KEEP}
        if tier_by and tier_by not in _KEEP:
            slim[tier_by] = r.get(tier_by, (r.get("meta") or {}).get(tier_by))
        groups[_key(r)][sid] = slim  # a re-run row of the same sample replaces the earlier one
    out: dict[str, Any] = {"labels": labels, "systems": [], "comparisons": [], "tiers": {}}
    right: dict[tuple[str, str], dict[str, bool]] = {}
    rank = {v: i for i, v in enumerate(order)}
    keys = sorted(groups, key=lambda k: (k[0], rank.get(k[1], len(rank)), k[1]))
    groups = {k: groups[k] for k in keys}
    for (system, variant), by_id in groups.items():
        rs = list(by_id.values())
        gold = [r["gold"] for r in rs]
        pred = [r.get("label") for r in rs]
        m = compute(gold, pred, labels)
        g, p = encode(gold, pred, labels)
        ci = bootstrap_war_uar(g, p, len(labels), n_boot=n_boot, seed=seed)
        right[(system, variant)] = dict(zip(by_id, (g == p).tolist(), strict=True))
        entry = {
            "system": system,
            "variant": variant,
            "n": m.n,
            "metrics": m.headline(),
            "ci": {k: v.to_dict() for k, v in ci.items()},
            "per_class": m.per_class,
            "confusion": m.confusion,
            "parse": _counts(r.get("parse_status") or "invalid" for r in rs),
            "errors": sum(1 for r in rs if r.get("error")),
        }
        if tier_by:
            entry["tiers"] = _tiers(rs, labels, tier_by)
        if any(r.get("face_id") is not None for r in rs):
            entry["per_face"] = _grouped(rs, labels, lambda r: f"face {r.get('face_id')}")
        out["systems"].append(entry)
    out["comparisons"] = _compare(right, base, n_boot, seed)
    return out


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
    right: dict[tuple[str, str], dict[str, bool]], base: str | None, n_boot: int, seed: int
) -> list[dict[str, Any]]:
    """Each variant against the base variant of its system (an ablation), and — when several
    systems ran the same variant — each system against the first; always on shared samples."""
    pairs: list[tuple[tuple[str, str], tuple[str, str]]] = []
    keys = list(right)  # already in report order
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
        shared = sorted(set(right[a]) & set(right[b]))
        ra = np.array([right[a][k] for k in shared], bool)
        rb = np.array([right[b][k] for k in shared], bool)
        out.append(
            {
                "a": {"system": a[0], "variant": a[1]},
                "b": {"system": b[0], "variant": b[1]},
                "n_shared": len(shared),
                "delta_war": bootstrap_delta(ra, rb, n_boot, seed).to_dict(),
                "mcnemar": mcnemar(ra, rb).to_dict(),
            }
        )
    return out
