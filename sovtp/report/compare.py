"""Runs side by side: one table row per (run, system, variant) with WAR/UAR and their CIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sovtp.errors import SovtpError


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
        for e in rep["scoring"]["systems"]:
            out.append(
                {
                    "run": str(run),
                    "system": e["system"],
                    "variant": e["variant"],
                    "n": e["n"],
                    "war": e["ci"]["war"],
                    "uar": e["ci"]["uar"],
                    "macro_f1": e["metrics"]["macro_f1"],
                    "invalid_rate": e["metrics"]["invalid_rate"],
                }
            )
    return out


def compare_markdown(rows: list[dict[str, Any]]) -> str:
    from sovtp.report.build import md_table

    def ci(c: dict[str, float]) -> str:
        return f"{100 * c['value']:.2f} [{100 * c['low']:.2f}, {100 * c['high']:.2f}]"

    table = (
        ["run", "system", "variant", "n", "WAR [95% CI]", "UAR [95% CI]", "macro F1", "invalid"],
        [
            [
                r["run"],
                r["system"],
                r["variant"],
                r["n"],
                ci(r["war"]),
                ci(r["uar"]),
                f"{100 * r['macro_f1']:.2f}",
                f"{100 * r['invalid_rate']:.2f}",
            ]
            for r in rows
        ],  # fmt: skip
    )
    return "\n".join(md_table(table)) + "\n"
