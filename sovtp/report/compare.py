"""Runs side by side: one table row per (run, system, variant) with each run's headline
metrics (its evaluator's declaration: WAR/UAR for recognition, e.g. ACER/BPCER20 for a binary
PAD task) and their 95 % CIs, plus macro F1 and the invalid rate where the task has them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sovtp.errors import SovtpError

EXTRA = ("macro_f1", "invalid_rate")


def compare_rows(runs: list[str | Path]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        p = Path(run) / "report.json"
        if not p.exists():
            if not (Path(run) / "predictions.jsonl").exists():
                raise SovtpError(f"{run} is not a run folder")
            from sovtp.report.build import write_report

            write_report(run)
        rep = json.loads(p.read_text())
        s = rep["scoring"]
        names = list(dict.fromkeys([*(s.get("headline") or ["war", "uar"]), *EXTRA]))
        for e in s["systems"]:
            vals: dict[str, Any] = {}
            for m in names:
                if m in (e.get("ci") or {}):
                    vals[m] = e["ci"][m]
                elif m in (e.get("metrics") or {}):
                    vals[m] = e["metrics"][m]
            out.append(
                {
                    "run": str(run),
                    "system": e["system"],
                    "variant": e["variant"],
                    "n": e["n"],
                    "metrics": vals,
                }
            )
    return out


def compare_markdown(rows: list[dict[str, Any]]) -> str:
    from sovtp.report.tables import md_table

    def cell(v: Any) -> str:
        if isinstance(v, dict):
            return f"{100 * v['value']:.2f} [{100 * v['low']:.2f}, {100 * v['high']:.2f}]"
        return "" if v is None else f"{100 * v:.2f}"

    names = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
    head = ["run", "system", "variant", "n"] + [
        f"{m.upper() if m in ('war', 'uar') else m} [95% CI]" for m in names
    ]
    body = [
        [r["run"], r["system"], r["variant"], r["n"], *[cell(r["metrics"].get(m)) for m in names]]
        for r in rows
    ]
    return "\n".join(md_table((head, body))) + "\n"
