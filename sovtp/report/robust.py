"""The robustness section: accuracy against ε (a figure and a table) from ``robust.json``
(:func:`sovtp.baselines.robust.accuracy_vs_eps`), and answer flip rates of vision-LLM systems
on the transferred frames.  Pure data → SVG/table; no torch here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sovtp.report.figures import RC, _plt, _svg
from sovtp.report.tables import Table


def _curves(results: dict[str, Any] | Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [results] if isinstance(results, dict) else list(results)


def robust_svg(
    results: dict[str, Any] | Sequence[dict[str, Any]], metric: str = "accuracy", title: str = ""
) -> str:
    """Accuracy (or another per-ε metric) against ε, one line per result (its ``name``, else
    its system and attack), as an inline SVG string with math parsing off."""
    plt = _plt()
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(4.6, 3.2))
        for r in _curves(results):
            rows = sorted(r["rows"], key=lambda x: x["eps"])
            xs = [x["eps"] for x in rows]
            ys = [
                100 * (x.get(metric) if x.get(metric) is not None else float("nan")) for x in rows
            ]
            name = r.get("name") or f"{r.get('system', 'cnn')} {r.get('attack', '')}".strip()
            ax.plot(xs, ys, marker="o", label=name)
        ax.set_xlabel("epsilon (grey levels, L-inf)")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if title:
            ax.set_title(title, fontsize=9)
        return _svg(fig)


def robust_table(results: dict[str, Any] | Sequence[dict[str, Any]]) -> Table:
    """One row per result × ε: accuracy and macro F1 (sample and frame level), measured L∞."""
    head = [
        "system",
        "attack",
        "eps",
        "accuracy",
        "macro F1",
        "frame acc.",
        "frame macro F1",
        "L-inf",
    ]
    rows = []
    for r in _curves(results):
        for x in sorted(r["rows"], key=lambda x: x["eps"]):
            rows.append(
                [
                    r.get("system", ""),
                    r.get("attack", ""),
                    x["eps"],
                    x.get("accuracy"),
                    x.get("macro_f1"),
                    x.get("frame_accuracy"),
                    x.get("frame_macro_f1"),
                    x.get("linf"),
                ]
            )
    return head, rows


def flip_table(flips: dict[str, dict[str, Any]], eps: float | None = None) -> Table:
    """One row per system · variant of :func:`sovtp.baselines.robust.flip_rate_runs`."""
    head = [
        "system · variant",
        "eps",
        "n",
        "flip rate",
        "correct→wrong",
        "wrong→correct",
        "→invalid",
        "acc. clean",
        "acc. perturbed",
    ]
    rows = [
        [
            k,
            eps,
            f["n"],
            f["flip_rate"],
            f["correct_to_wrong"],
            f["wrong_to_correct"],
            f["to_invalid"],
            f["accuracy_clean"],
            f["accuracy_perturbed"],
        ]
        for k, f in flips.items()
    ]
    return head, rows
