"""The test-time adaptation section: macro F1 (and accuracy) before and after TTA, and how
many parameters each method adapted, from :func:`sovtp.baselines.tta_stream.evaluate_stream` results.
Pure data → a table; no torch here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _get(block: dict[str, Any], level: str, metric: str) -> float | None:
    b = block.get(level)
    return None if b is None else b.get(metric)


def tta_section(
    results: Sequence[dict[str, Any]], level: str = "sample", metric: str = "macro_f1"
) -> dict[str, Any]:
    """``{"title", "level", "metric", "table": (header, rows)}`` — one row per method:
    the metric before (no adaptation) and after, their difference, accuracy before/after,
    parameters adapted (scalar elements; BN statistics for ``bn``), tensors, frames seen.
    Results that name their ``system`` (a run's ``tta.json``) get a system column first."""
    head = [
        "method",
        f"{metric} before",
        f"{metric} after",
        "delta",
        "accuracy before",
        "accuracy after",
        "params adapted",
        "of params",
        "tensors",
        "BN stats adapted",
        "frames",
        "updates",
    ]
    named = any("system" in r for r in results)
    if named:
        head = ["system", *head]
    rows = []
    for r in results:
        b = _get(r["before"], level, metric)
        a = _get(r["after"], level, metric)
        info = r.get("info", {})
        rows.append(
            [r.get("system", "")] * named
            + [
                r["method"],
                b,
                a,
                (a - b) if a is not None and b is not None else None,
                _get(r["before"], level, "accuracy"),
                _get(r["after"], level, "accuracy"),
                info.get("params_adapted"),
                info.get("params_total"),
                info.get("tensors_adapted"),
                info.get("stats_adapted"),
                info.get("frames"),
                info.get("updates"),
            ]
        )
    return {
        "title": f"Test-time adaptation ({level} level, {metric})",
        "level": level,
        "metric": metric,
        "table": (head, rows),
    }
