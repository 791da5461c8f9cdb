"""Run folder → report.json, report.md, report.html (self-contained: inline SVG figures and
JPEG data URLs; nothing fetched when opened).

The HTML shows the metric table with 95 % CIs, the ablation / comparison table (delta to the
base with its CI and McNemar's p), the ablation section (each rung against the one below it, or
a grid's main effects and interactions; rungs a backend cannot test are marked so — see
:mod:`sovtp.report.ablation`), a bar chart with error bars, each system × variant's
confusion matrix and per-class table, reasoning scores where they were computed, and a gallery
of samples: the annotated frame as sent, the prompt, the answer, the gold label and the parse
status.  User text (prompts, answers) is HTML-escaped: a model's answer is data, never markup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from sovtp.jsonl import iter_jsonl
from sovtp.report.ablation import NOT_TESTABLE, analyse
from sovtp.report.figures import bars_svg, confusion_svg
from sovtp.report.gallery import card_html, gallery_entries
from sovtp.report.tables import CHECK, CSS, Table, _esc, html_table, md_escape, md_table
from sovtp.scoring.stats import BOOTSTRAP, METHOD_TEXT, WILSON, zero_width
from sovtp.scoring.summary import summarise


def _read(path: Path, load) -> dict[str, Any]:
    return (load(path.read_text()) or {}) if path.exists() else {}


def build_report(run: str | Path, n_boot: int = 1000) -> dict[str, Any]:
    run = Path(run)
    cfg = _read(run / "config.yaml", yaml.safe_load)
    man = _read(run / "manifest.json", json.loads)
    labels = (man.get("labels") or {}).get("labels") or sorted(
        {r["gold"] for r in iter_jsonl(run / "predictions.jsonl") if r.get("gold")}
    )
    from sovtp.jsonl import latest_rows

    rows = latest_rows(run / "predictions.jsonl")  # one row per key (older folders may repeat)
    order = man.get("variants") or []
    base = cfg.get("base_variant") or (order[0] if order else None)
    tier_by = "n_faces"
    headline = ["war", "uar"]
    task_kw: dict[str, Any] = {}
    if cfg.get("evaluator"):
        from sovtp.evaluator import load_evaluator

        ev = load_evaluator(cfg["evaluator"])
        tier_by, headline = ev.tier_by or "n_faces", ev.headline
        task_kw = ev.scoring()  # the declared task, metrics, headline and options decide
    tier_by = cfg.get("tier_by") or tier_by
    n_rows = 0

    def counted():
        nonlocal n_rows
        for r in rows:
            n_rows += 1
            yield r

    summary = summarise(
        counted(), labels, base=base, tier_by=tier_by, n_boot=n_boot, order=order, **task_kw
    )
    rep: dict[str, Any] = {
        "run": str(run),
        "data": cfg.get("data"),
        "evaluator": cfg.get("evaluator"),
        "rows": n_rows,
        "headline": headline,
        "n_boot": n_boot,
        "scoring": summary,
    }
    variants = list(dict.fromkeys(e["variant"] for e in summary["systems"]))
    rep["ablation"] = analyse(
        run, iter_jsonl(run / "predictions.jsonl"), labels, variants, cfg, man, n_boot
    )
    reasoning = run / "reasoning.json"
    if reasoning.exists():
        rep["reasoning"] = json.loads(reasoning.read_text())
    from sovtp.report.sections import collect

    rep["sections"] = collect(run)  # tta.json, robust.json, pad.json, ... when present
    return rep


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


# metrics on the data's own scale (regression: correlation, agreement, error), not fractions
PLAIN = ("ccc", "pcc", "rmse")


def _plain(m: str) -> bool:
    return m.split("_")[0] in PLAIN


def _num(m: str, x: float) -> str:
    return f"{x:.3f}" if _plain(m) else _pct(x)


ZERO = "†"  # marks a bootstrap interval of zero width (see interval_notes)


def _ci(e: dict[str, Any], m: str) -> str:
    c = e["ci"][m]
    mark = ZERO if zero_width(c) and e.get("n") else ""
    return f"{_num(m, c['value'])} [{_num(m, c['low'])}, {_num(m, c['high'])}]{mark}"


def _name(m: str) -> str:
    return m.upper() if m in ("war", "uar") else m


def interval_notes(s: dict[str, Any], n_boot: int | None = None) -> list[str]:
    """Which method gave each interval of the metrics and comparison tables, and why an
    interval of zero width (marked †) is no certainty."""
    by: dict[str, list[str]] = {}
    zero = False
    beside: list[str] | None = None  # the Wilson intervals every row with a † also shows
    for e in s["systems"]:
        ci = e.get("ci") or {}
        for m, c in ci.items():
            meth = c.get("method", BOOTSTRAP)
            if _name(m) not in by.setdefault(meth, []):
                by[meth].append(_name(m))
        if e.get("n") and any(zero_width(c) for c in ci.values()):
            zero = True
            here = [_name(m) for m, c in ci.items() if c.get("method") == WILSON]
            beside = here if beside is None else [m for m in beside if m in here]
    deltas = [c["delta_war"] for c in s.get("comparisons") or [] if c.get("delta_war")]
    if deltas:
        by.setdefault(BOOTSTRAP, []).append("ΔWAR (paired: both answers of a sample together)")
    zero_delta = any(zero_width(d) for d in deltas)
    boot = METHOD_TEXT[BOOTSTRAP] + (f" ({n_boot} resamples)" if n_boot else "")
    text = {WILSON: METHOD_TEXT[WILSON], BOOTSTRAP: boot}
    notes = [
        "95 % intervals — "
        + "; ".join(f"{', '.join(ms)}: {text.get(meth, meth)}" for meth, ms in by.items())
    ]
    if zero:  # point to a Wilson interval only where the row has one (a spot row has none)
        look = (
            f"the {'WAR' if 'WAR' in beside else beside[0]} interval (Wilson) of the same row "
            "shows how much a sample of this size leaves open"
            if beside
            else "read it with the row's n, the number of samples it rests on"
        )
        notes.append(
            f"{ZERO} zero width: every bootstrap resample gave the same value (every answer right, "
            f"or every answer wrong), so the bootstrap shows no spread; that is no certainty — {look}"
        )
    if zero_delta:
        notes.append(
            f"{ZERO} a ΔWAR interval of zero width: the two variants agree on every shared sample "
            "(McNemar b = c = 0), so no resample can differ; it is no proof that they are equal"
        )
    return notes


def bar_metrics(s: dict[str, Any]) -> list[str]:
    """The metrics drawn as bars: WAR and UAR for a label task; else the headline fractions
    that have a CI (regression's CCC/RMSE are not percentages)."""
    if s.get("task", "single_label") == "single_label":
        return ["war", "uar"]
    have = (
        set.intersection(*(set(e.get("ci") or {}) for e in s["systems"])) if s["systems"] else set()
    )
    return [m for m in s.get("headline") or [] if m in have and not _plain(m)][:2]


def _task_metrics_table(s: dict[str, Any]) -> Table:
    """Binary / interval tasks: the evaluator's declared metrics (headline first), with CIs."""
    names = list(dict.fromkeys([*(s.get("headline") or []), *(s.get("metric_names") or [])]))
    head = ["system", "variant", "n", *[f"{m} [95% CI]" for m in names], "errors"]
    rows = []
    for e in s["systems"]:
        cells: list[Any] = [e["system"], e["variant"], e["n"]]
        for m in names:
            v = (e.get("metrics") or {}).get(m)
            if m in (e.get("ci") or {}):
                cells.append(_ci(e, m))
            else:
                cells.append("n/a" if v is None else _num(m, v))
        cells.append(e.get("errors", 0))
        rows.append(cells)
    return head, rows


def metrics_table(s: dict[str, Any]) -> Table:
    if s.get("task", "single_label") != "single_label":
        return _task_metrics_table(s)
    head = [
        "system",
        "variant",
        "n",
        "WAR [95% CI]",
        "UAR [95% CI]",
        "macro F1",
        "weighted F1",
        "invalid",
        "errors",
    ]
    rows = [
        [
            e["system"],
            e["variant"],
            e["n"],
            _ci(e, "war"),
            _ci(e, "uar"),
            _pct(e["metrics"]["macro_f1"]),
            _pct(e["metrics"]["weighted_f1"]),
            _pct(e["metrics"]["invalid_rate"]),
            e["errors"],
        ]
        for e in s["systems"]
    ]
    return head, rows


def _delta(d: dict[str, float]) -> str:
    mark = ZERO if zero_width(d) else ""
    return f"{100 * d['value']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]{mark}"


def untestable_pairs(rep: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {tuple(x) for x in (rep.get("ablation") or {}).get("untestable_pairs") or []}


def comparisons_table(
    s: dict[str, Any], untestable: set[tuple[str, str, str]] = frozenset()
) -> Table:
    """Each variant against the base; a pair the backend cannot tell apart shows no delta."""

    def row(c: dict[str, Any]) -> list[Any]:
        a, b = c["a"], c["b"]
        off = a["system"] == b["system"] and (a["system"], a["variant"], b["variant"]) in untestable
        # an interval task (spotting) pairs rows without a per-sample right/wrong: no McNemar
        m, delta = c.get("mcnemar"), c.get("delta_war")
        return [
            f"{a['system']} · {a['variant']}",
            f"{b['system']} · {b['variant']}",
            c["n_shared"],
            "n/a" if off or delta is None else _delta(delta),
            f"{m['b']}/{m['c']}" if m else "n/a",
            "n/a" if off or not m else f"{m['p_value']:.4f}",
            NOT_TESTABLE if off else "",
        ]

    rows = [row(c) for c in s["comparisons"]]
    return ["A", "B", "n", "ΔWAR [95% CI]", "McNemar b/c", "p", "note"], rows


def steps_table(ab: dict[str, Any]) -> Table:
    """Each rung against the rung below it."""
    rows = [
        [
            d["system"],
            d["a"],
            d["b"],
            d["n_shared"],
            _delta(d["delta_war"]) if d["testable"] else "n/a",
            f"{d['mcnemar']['b']}/{d['mcnemar']['c']}",
            f"{d['mcnemar']['p_value']:.4f}" if d["testable"] else "n/a",
            "" if d["testable"] else NOT_TESTABLE,
        ]
        for d in ab.get("steps") or []
    ]
    return ["system", "from", "to", "n", "ΔWAR [95% CI]", "McNemar b/c", "p", "note"], rows


def _level(f: str, v: Any) -> str:
    return f"{f}={v}" if not isinstance(v, bool) else (f if v else f"no {f}")


def _contrast_row(c: dict[str, Any], what: str, estimate: str) -> list[Any]:
    """One row of a grid contrast table (a main effect or an interaction): the system, the
    contrast in words, n, the estimate with its interval, and why not when it is not testable."""
    testable = c["testable"]
    return [
        c["system"],
        what,
        c["n"],
        _delta(c[estimate]) if testable else "n/a",
        "" if testable else NOT_TESTABLE,
    ]


def effects_table(ab: dict[str, Any]) -> Table:
    """A grid's main effects: accuracy at a level minus at the reference, over the other
    factors."""
    rows = [
        _contrast_row(
            e,
            f"{_level(e['factor'], e['level'])} vs {_level(e['factor'], e['reference'])}",
            "effect",
        )
        for e in ab.get("effects") or []
    ]
    return ["system", "main effect", "n", "ΔWAR [95% CI]", "note"], rows


def interactions_table(ab: dict[str, Any]) -> Table:
    """A×B: how much A's effect changes when B moves off its reference level."""
    rows = [
        _contrast_row(
            i,
            " × ".join(_level(f, v) for f, v in zip(i["factors"], i["levels"], strict=True)),
            "interaction",
        )
        for i in ab.get("interactions") or []
    ]
    return ["system", "interaction", "n", "Δ of ΔWAR [95% CI]", "note"], rows


def ablation_tables(rep: dict[str, Any]) -> list[tuple[str, Table]]:
    """The ablation section's titled tables (empty when the run is no ablation)."""
    ab = rep.get("ablation") or {}
    out = []
    if ab.get("steps"):
        out.append(("Ablation ladder: each rung against the one below it", steps_table(ab)))
    if ab.get("effects"):
        out.append(("Grid: main effects", effects_table(ab)))
    if ab.get("interactions"):
        out.append(("Grid: two-way interactions", interactions_table(ab)))
    return out


def per_class_table(e: dict[str, Any]) -> Table:
    rows = [
        [lab, _pct(pc["precision"]), _pct(pc["recall"]), _pct(pc["f1"]), pc["support"]]
        for lab, pc in e["per_class"].items()
    ]
    return ["class", "precision", "recall", "F1", "support"], rows


def group_table(name: str, block: dict[str, Any]) -> Table:
    rows = [[k, v["n"], _pct(v["war"]), _pct(v["uar"])] for k, v in block.items()]
    return [name, "n", "WAR", "UAR"], rows


def reasoning_table(r: dict[str, Any]) -> Table:
    rows = [[g, k, v] for g, scores in (r.get("scores") or {}).items() for k, v in scores.items()]
    return ["system · variant", "score (0-10)", "value"], rows


def _groups(e: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(n, b) for n, b in (("tier", e.get("tiers")), ("face", e.get("per_face"))) if b]


def markdown(rep: dict[str, Any]) -> str:
    s = rep["scoring"]
    out = [f"# sovtp report — {md_escape(rep.get('data') or rep['run'])}", ""]
    out += md_table(metrics_table(s))
    if s["comparisons"]:
        out += ["", "## Paired comparisons (B vs A on shared samples)", ""]
        out += md_table(comparisons_table(s, untestable_pairs(rep)))
    out += [f"\n> {md_escape(n)}" for n in interval_notes(s, rep.get("n_boot"))]
    for title, table in ablation_tables(rep):
        out += ["", f"## {title}", "", *md_table(table)]
    for note in (rep.get("ablation") or {}).get("notes") or []:
        out += ["", f"> **Note:** {md_escape(note)}"]
    for e in s["systems"]:
        if e.get("per_class"):  # label tasks; intervals and regression have none
            out += [
                "",
                f"## {md_escape(e['system'])} · {md_escape(e['variant'])}: per class",
                "",
                *md_table(per_class_table(e)),
            ]
        for name, block in _groups(e):
            out += ["", *md_table(group_table(name, block))]
    if rep.get("reasoning"):
        out += ["", f"## Reasoning ({md_escape(rep['reasoning'].get('method'))})", ""]
        out += md_table(reasoning_table(rep["reasoning"]))
    for sec in rep.get("sections") or []:
        out += ["", f"## {md_escape(sec['title'])}"]
        if sec.get("table"):
            out += ["", *md_table(sec["table"])]
        if sec.get("svg"):
            out += ["", f"(figure: report.html, section “{md_escape(sec['title'])}”)"]
        out += [f"\n> {md_escape(n)}" for n in sec.get("notes") or []]
    return "\n".join(out) + "\n"


def html_page(rep: dict[str, Any], run: Path) -> str:
    s = rep["scoring"]
    parts = [
        f"<h1>sovtp report</h1><p>{_esc(rep.get('data'))} · {rep['rows']} rows · run <code>{_esc(run)}</code></p>"
    ]
    parts.append("<h2>Metrics</h2>" + html_table(metrics_table(s)))
    if s["systems"]:
        for m in bar_metrics(s):
            parts.append(f"<div class='fig'>{bars_svg(s['systems'], m)}</div>")
    if s["comparisons"]:
        parts.append(
            "<h2>Ablation / comparison</h2>"
            + html_table(comparisons_table(s, untestable_pairs(rep)))
        )
    parts += [f"<p class='note'>{_esc(n)}</p>" for n in interval_notes(s, rep.get("n_boot"))]
    for title, table in ablation_tables(rep):
        parts.append(f"<h2>{_esc(title)}</h2>" + html_table(table))
    for note in (rep.get("ablation") or {}).get("notes") or []:
        parts.append(f"<p class='note'><b>Note:</b> {_esc(note)}</p>")
    for e in s["systems"]:
        title = f"{e['system']} · {e['variant']}"
        if not (e.get("confusion") or e.get("per_class") or _groups(e)):
            continue  # intervals / regression: the metrics table says it all
        conf = (
            f"<div class='fig'>{confusion_svg(e['confusion'], title)}</div>"
            if e.get("confusion")
            else ""
        )
        parts.append(
            f"<h2>{_esc(title)}</h2>{conf}<div class='fig'>"
            + (html_table(per_class_table(e)) if e.get("per_class") else "")
            + "".join(html_table(group_table(n, b)) for n, b in _groups(e))
            + "</div>"
        )
    if rep.get("reasoning"):
        r = rep["reasoning"]
        parts.append(
            f"<h2>Reasoning scores</h2><p>method: <b>{_esc(r.get('method'))}</b></p>"
            + html_table(reasoning_table(r))
        )
    for sec in rep.get("sections") or []:
        parts.append(section_html(sec))
    gal = gallery_entries(run, rep)
    if gal:
        parts.append("<h2>Gallery</h2>")
        for (system, variant), cards in gal:
            parts.append(f"<h3>{_esc(system)} · {_esc(variant)}</h3><div class='gallery'>")
            parts += [card_html(run, g) for g in cards]
            parts.append("</div>")
    body = "\n".join(parts)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>sovtp report</title>"
        f"<style>{CSS}</style></head><body>{body}<script>{CHECK}</script></body></html>"
    )


def section_html(sec: dict[str, Any]) -> str:
    """A sidecar section (:mod:`sovtp.report.sections`): title, figure, table, notes.  The SVG
    is our own matplotlib output (names in it are text, math parsing off); the rest escaped."""
    html_parts = [f"<h2>{_esc(sec['title'])}</h2>"]
    if sec.get("svg"):
        html_parts.append(f"<div class='fig'>{sec['svg']}</div>")
    if sec.get("table"):
        html_parts.append(html_table(sec["table"]))
    html_parts += [f"<p class='note'>{_esc(n)}</p>" for n in sec.get("notes") or []]
    return "".join(html_parts)


def write_report(run: str | Path, n_boot: int = 1000) -> dict[str, Any]:
    """Write report.json, report.md and report.html into the run folder; returns the report."""
    run = Path(run)
    if not (run / "predictions.jsonl").exists():
        from sovtp.errors import SovtpError

        raise SovtpError(f"{run} is not a run folder (no predictions.jsonl)")
    rep = build_report(run, n_boot)
    (run / "report.json").write_text(json.dumps(rep, indent=1))
    (run / "report.md").write_text(markdown(rep))
    (run / "report.html").write_text(html_page(rep, run))
    return rep
