"""The presentation-attack-detection section of a report: one entry per system × variant, a
line per held-out attack (a leave-one-attack-out fold) and the mean over its folds.

A pure function of prediction rows.  For each fold the decision threshold is the EER point of
its dev rows (bona fide + the *seen* species; ISO/IEC 30107-3 practice) and is applied
unchanged to its test rows; without dev rows it is the test rows' own EER point, and the entry
says so (``threshold_source``) because that flatters every number.  On the test rows:

- APCER per attack species (the share of that species' attacks called bona fide) and its worst;
- BPCER (the share of bona fide presentations called attacks);
- ACER = (worst APCER + BPCER) / 2 — OULU-NPU's competition metric, *not* an ISO metric;
- EER (threshold-free, on the test rows) and BPCER20 (the BPCER where the worst APCER is at most
  5 %, found on the test rows).

A row's positive-class (attack) score is :func:`sovtp.scoring.summary.positive_score` — its
``scores['attack']``, else ``1 - scores['bona_fide']``, else its confidence in the label it chose
(``1 - confidence`` when it chose bona fide), else 1/0; an invalid answer has no score and is
ranked as wrong as possible, and its label counts as wrong: never as a detection.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sovtp.data.pad import attack_of
from sovtp.scoring.summary import positive_score
from sovtp.scoring.tasks import bpcer_at_apcer, eer, pad_rates

FOLD_METRICS = ("apcer", "bpcer", "acer", "eer", "bpcer20")  # the order of the table


def _field(r: dict[str, Any], k: str) -> Any:
    v = r.get(k)
    return v if v is not None else (r.get("meta") or {}).get(k)


def _score(r: dict[str, Any], positive: str, negative: str) -> float:
    """The row's attack score: :func:`positive_score` when it carries scores or a label; a
    bare ``score`` (a ``predictions.jsonl`` row cut down to its essentials) otherwise."""
    if r.get("scores") or r.get("label") is not None or "score" not in r:
        return positive_score(r, positive, negative)
    return float("nan") if r["score"] is None else float(r["score"])


def _arrays(rs: Sequence[dict[str, Any]], positive: str, negative: str):
    y = np.array([r["gold"] == positive for r in rs], dtype=bool)
    s = np.array([_score(r, positive, negative) for r in rs], dtype=float)
    types = [attack_of(r) or "attack" for r in rs]
    return y, s, types


def fold_metrics(
    test: Sequence[dict[str, Any]],
    dev: Sequence[dict[str, Any]] = (),
    *,
    positive: str = "attack",
    negative: str = "bona_fide",
) -> dict[str, Any]:
    """The error rates of one fold (see the module doc) as a JSON-able dict."""
    y, s, types = _arrays(test, positive, negative)
    if len(dev):
        dy, ds, _ = _arrays(dev, positive, negative)
        th = eer(dy, ds)[1]
        src = f"EER point of the dev rows ({len(dev)})"
    else:
        th = eer(y, s)[1]
        src = "EER point of the test rows themselves (no dev rows: optimistic)"
    r = pad_rates(y, s, types, th)
    return {
        "n": len(test),
        "n_attack": int(y.sum()),
        "n_bona_fide": int((~y).sum()),
        "n_invalid": int((~np.isfinite(s)).sum()),
        "threshold": th if np.isfinite(th) else None,
        "threshold_source": src,
        "apcer_per_type": r.apcer_per_type,
        "apcer": r.apcer,
        "bpcer": r.bpcer,
        "acer": r.acer,
        "eer": eer(y, s)[0],
        "bpcer20": bpcer_at_apcer(y, s, types, 0.05),
    }


def pad_section(
    rows: Iterable[dict[str, Any]] | Mapping[str, Any],
    *,
    positive: str = "attack",
    negative: str = "bona_fide",
    dev_split: str | None = "dev",
    fold_key: str = "held_out",
) -> dict[str, Any]:
    """``{"systems": [{system, variant, folds: [{held_out, ...fold_metrics}], mean, std}],
    "metrics", "note"}`` from prediction rows.  Rows name their fold in ``fold_key`` (top level
    or meta; else ``fold``; absent: one fold ``"all"``) and their split in ``split``; rows
    without gold are skipped.  A re-run row of the same sample replaces the earlier one.

    ``rows`` may also be a ``pad.json`` document (what ``sovtp pad`` writes): its ``rows`` are
    scored afresh with its ``positive`` / ``negative`` / ``dev_split``; a document that is
    already a section (``systems``, no ``rows``) comes back as it is."""
    if isinstance(rows, Mapping):
        doc = rows
        if "rows" not in doc:
            if "systems" not in doc:
                raise ValueError("pad_section: a mapping needs 'rows' (pad.json) or 'systems'")
            return dict(doc)
        positive = doc.get("positive", positive)
        negative = doc.get("negative", negative)
        dev_split = doc.get("dev_split", dev_split)
        rows = doc["rows"]
    groups: dict[tuple[str, str], dict[str, dict[str, dict[str, dict[str, Any]]]]] = defaultdict(
        lambda: defaultdict(lambda: {"dev": {}, "test": {}})
    )
    for r in rows:
        if r.get("gold") is None:
            continue
        fold = str(_field(r, fold_key) or _field(r, "fold") or "all")
        # a fold's own variant (``loao:<species>``, one threshold each in the summary) joins
        # its siblings here, so that the mean is over the folds of one detector
        variant = str(r.get("variant") or "").replace(f"loao:{fold}", "loao")
        key = (str(r.get("system") or ""), variant)
        part = "dev" if dev_split and _field(r, "split") == dev_split else "test"
        groups[key][fold][part][str(r["sample_id"])] = r
    systems = []
    for (system, variant), folds in sorted(groups.items()):
        entries = []
        for name, parts in sorted(folds.items()):
            test, dev = list(parts["test"].values()), list(parts["dev"].values())
            if not test:
                continue
            entries.append({"held_out": name, **fold_metrics(test, dev, positive=positive,
                                                             negative=negative)})  # fmt: skip
        vals = {k: np.array([e[k] for e in entries], dtype=float) for k in FOLD_METRICS}
        systems.append(
            {
                "system": system,
                "variant": variant,
                "folds": entries,
                "mean": {k: float(v.mean()) if len(v) else None for k, v in vals.items()},
                "std": {k: float(v.std(ddof=0)) if len(v) else None for k, v in vals.items()},
            }
        )
    return {
        "systems": systems,
        "metrics": list(FOLD_METRICS),
        "note": "threshold fixed at each fold's dev EER point; ACER is OULU-NPU's competition "
        "metric, not an ISO/IEC 30107-3 metric; BPCER20 is found on the test rows",
    }


def pad_markdown(section: dict[str, Any]) -> str:
    """The section as a markdown table: one line per fold, then the mean ± std."""

    def pct(x: Any) -> str:
        return "–" if x is None else f"{100 * x:.1f}"

    lines = [
        "| system | variant | held out | APCER (held out) | APCER worst | BPCER | ACER | EER | "
        "BPCER20 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in section["systems"]:
        for f in e["folds"]:
            held = f["apcer_per_type"].get(f["held_out"])
            lines.append(
                f"| {e['system']} | {e['variant']} | {f['held_out']} | {pct(held)} | "
                f"{pct(f['apcer'])} | {pct(f['bpcer'])} | {pct(f['acer'])} | {pct(f['eer'])} | "
                f"{pct(f['bpcer20'])} |"
            )
        m, s = e["mean"], e["std"]
        lines.append(
            f"| {e['system']} | {e['variant']} | mean ± std | | "
            + " | ".join(f"{pct(m[k])} ± {pct(s[k])}" for k in FOLD_METRICS)
            + " |"
        )
    return "\n".join(lines) + "\n\n% (" + section["note"] + ")\n"


def pad_html(section: dict[str, Any], title: str = "Presentation-attack detection",
             intro_md: str = "") -> str:  # fmt: skip
    """A standalone HTML page of the section: the table of :func:`pad_markdown` (percentages),
    every cell escaped; ``intro_md`` list lines (``- ...``) become a list above it."""
    from html import escape

    def pct(x: Any) -> str:
        return "–" if x is None else f"{100 * x:.1f}"

    head = ["system", "variant", "held out", "APCER (held out)", "APCER worst", "BPCER",
            "ACER", "EER", "BPCER20"]  # fmt: skip
    body = []
    for e in section["systems"]:
        for f in e["folds"]:
            held = f["apcer_per_type"].get(f["held_out"])
            body.append([e["system"], e["variant"], f["held_out"], pct(held),
                         *(pct(f[k]) for k in FOLD_METRICS)])  # fmt: skip
        m, s = e["mean"], e["std"]
        body.append([e["system"], e["variant"], "mean ± std", "",
                     *(f"{pct(m[k])} ± {pct(s[k])}" for k in FOLD_METRICS)])  # fmt: skip
    items = [ln[2:] for ln in intro_md.splitlines() if ln.startswith("- ")]
    parts = [
        "<!doctype html>",
        '<html><head><meta charset="utf-8"><title>' + escape(title) + "</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
        "td:nth-child(-n+3),th{text-align:left}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if items:
        parts.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>")
    parts.append('<table id="pad"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
                 + "</tr></thead><tbody>")  # fmt: skip
    for row in body:
        parts.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
    parts.append(f"</tbody></table><p><small>{escape(section['note'])}; rates in %.</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
