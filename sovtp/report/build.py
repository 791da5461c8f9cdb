"""Run folder → report.json, report.md, report.html (self-contained: inline SVG figures and
JPEG data URLs; nothing fetched when opened).

The HTML shows the metric table with 95 % CIs, the ablation / comparison table (delta to the
base with its CI and McNemar's p), a bar chart with error bars, each system × variant's
confusion matrix and per-class table, reasoning scores where they were computed, and a gallery
of samples: the annotated frame as sent, the prompt, the answer, the gold label and the parse
status.  User text (prompts, answers) is HTML-escaped: a model's answer is data, never markup.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import yaml

from sovtp.bench.store import iter_jsonl
from sovtp.report.figures import bars_svg, confusion_svg
from sovtp.scoring.summary import summarise


def _labels(run: Path) -> list[str]:
    m = json.loads((run / "manifest.json").read_text()) if (run / "manifest.json").exists() else {}
    labs = (m.get("labels") or {}).get("labels")
    if labs:
        return list(labs)
    golds = {r["gold"] for r in iter_jsonl(run / "predictions.jsonl") if r.get("gold")}
    return sorted(golds)


def build_report(run: str | Path, n_boot: int = 1000) -> dict[str, Any]:
    run = Path(run)
    cfg = (
        yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").exists() else {}
    )
    labels = _labels(run)
    rows = iter_jsonl(run / "predictions.jsonl")  # streamed into the summary
    man = (
        json.loads((run / "manifest.json").read_text()) if (run / "manifest.json").exists() else {}
    )
    order = man.get("variants") or []
    base = cfg.get("base_variant") or (order[0] if order else None)
    tier_by = "n_faces"
    headline = ["war", "uar"]
    if cfg.get("evaluator"):
        from sovtp.evaluator import load_evaluator

        ev = load_evaluator(cfg["evaluator"])
        tier_by, headline = ev.tier_by or "n_faces", ev.headline
    tier_by = cfg.get("tier_by") or tier_by
    n_rows = 0

    def counted():
        nonlocal n_rows
        for r in rows:
            n_rows += 1
            yield r

    summary = summarise(counted(), labels, base=base, tier_by=tier_by, n_boot=n_boot, order=order)
    rep: dict[str, Any] = {
        "run": str(run),
        "data": cfg.get("data"),
        "evaluator": cfg.get("evaluator"),
        "rows": n_rows,
        "headline": headline,
        "scoring": summary,
    }
    reasoning = run / "reasoning.json"
    if reasoning.exists():
        rep["reasoning"] = json.loads(reasoning.read_text())
    return rep


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _ci(e: dict[str, Any], m: str) -> str:
    c = e["ci"][m]
    return f"{_pct(c['value'])} [{_pct(c['low'])}, {_pct(c['high'])}]"


def markdown(rep: dict[str, Any]) -> str:
    s = rep["scoring"]
    out = [f"# sovtp report — {rep.get('data') or rep['run']}", ""]
    out += ["| system | variant | n | WAR [95% CI] | UAR [95% CI] | macro F1 | weighted F1 | invalid |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for e in s["systems"]:
        m = e["metrics"]
        out.append(
            f"| {e['system']} | {e['variant']} | {e['n']} | {_ci(e, 'war')} | {_ci(e, 'uar')} | "
            f"{_pct(m['macro_f1'])} | {_pct(m['weighted_f1'])} | {_pct(m['invalid_rate'])} |"
        )
    if s["comparisons"]:
        out += ["", "## Paired comparisons (B vs A on shared samples)", "",
                "| A | B | n | ΔWAR [95% CI] | McNemar b/c | p |", "|---|---|---|---|---|---|"]  # fmt: skip
        for c in s["comparisons"]:
            d, mc = c["delta_war"], c["mcnemar"]
            out.append(
                f"| {c['a']['system']} · {c['a']['variant']} | {c['b']['system']} · {c['b']['variant']} "
                f"| {c['n_shared']} | {100 * d['value']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}] "
                f"| {mc['b']}/{mc['c']} | {mc['p_value']:.4f} |"
            )
    for e in s["systems"]:
        out += ["", f"## {e['system']} · {e['variant']}: per class", "",
                "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]  # fmt: skip
        for lab, pc in e["per_class"].items():
            out.append(
                f"| {lab} | {_pct(pc['precision'])} | {_pct(pc['recall'])} | {_pct(pc['f1'])} | {pc['support']} |"
            )
        if e.get("tiers"):
            out += ["", "| tier | n | WAR | UAR |", "|---|---|---|---|"]
            out += [
                f"| {k} | {v['n']} | {_pct(v['war'])} | {_pct(v['uar'])} |"
                for k, v in e["tiers"].items()
            ]
    if rep.get("reasoning"):
        r = rep["reasoning"]
        out += ["", f"## Reasoning ({r.get('method')})", ""]
        for k, v in (r.get("scores") or {}).items():
            out.append(f"- {k}: {v}")
    return "\n".join(out) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:right}
th{background:#f4f6f8}td:first-child,td:nth-child(2),th:first-child,th:nth-child(2){text-align:left}
.fig{display:inline-block;margin:.5rem;vertical-align:top}.fig svg{max-width:100%;height:auto}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem;font-size:.85rem}.card img{width:100%}
.ok{color:#1a7f37}.bad{color:#cf222e}.rep{color:#9a6700}pre{white-space:pre-wrap;max-height:12rem;overflow:auto;background:#f6f8fa;padding:.4rem}
"""

CHECK = """
window.addEventListener('load',function(){
  var imgs=document.querySelectorAll('img'),svgs=document.querySelectorAll('.fig svg'),ok=0,bad=0;
  imgs.forEach(function(i){(i.complete&&i.naturalWidth>0)?ok++:bad++;});
  svgs.forEach(function(s){var b=s.getBoundingClientRect();(b.width>0&&b.height>0)?ok++:bad++;});
  document.body.setAttribute('data-rendered',ok);document.body.setAttribute('data-broken',bad);
  console.log('sovtp-report rendered='+ok+' broken='+bad);
});
"""


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def html_page(rep: dict[str, Any], run: Path) -> str:
    s = rep["scoring"]
    parts = [
        f"<h1>sovtp report</h1><p>{_esc(rep.get('data'))} · {rep['rows']} rows · run <code>{_esc(run)}</code></p>"
    ]
    parts.append("<h2>Metrics</h2><table><tr><th>system</th><th>variant</th><th>n</th><th>WAR [95% CI]</th>"
                 "<th>UAR [95% CI]</th><th>macro F1</th><th>weighted F1</th><th>invalid</th><th>errors</th></tr>")  # fmt: skip
    for e in s["systems"]:
        m = e["metrics"]
        parts.append(
            f"<tr><td>{_esc(e['system'])}</td><td>{_esc(e['variant'])}</td><td>{e['n']}</td><td>{_ci(e, 'war')}</td>"
            f"<td>{_ci(e, 'uar')}</td><td>{_pct(m['macro_f1'])}</td><td>{_pct(m['weighted_f1'])}</td>"
            f"<td>{_pct(m['invalid_rate'])}</td><td>{e['errors']}</td></tr>"
        )
    parts.append("</table>")
    if s["systems"]:
        parts.append(f"<div class='fig'>{bars_svg(s['systems'], 'war')}</div>")
        parts.append(f"<div class='fig'>{bars_svg(s['systems'], 'uar')}</div>")
    if s["comparisons"]:
        parts.append("<h2>Ablation / comparison</h2><table><tr><th>A</th><th>B</th><th>n</th><th>ΔWAR [95% CI]</th>"
                     "<th>McNemar b/c</th><th>p</th></tr>")  # fmt: skip
        for c in s["comparisons"]:
            d, mc = c["delta_war"], c["mcnemar"]
            parts.append(
                f"<tr><td>{_esc(c['a']['system'])} · {_esc(c['a']['variant'])}</td><td>{_esc(c['b']['system'])} · "
                f"{_esc(c['b']['variant'])}</td><td>{c['n_shared']}</td><td>{100 * d['value']:+.2f} "
                f"[{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]</td><td>{mc['b']}/{mc['c']}</td><td>{mc['p_value']:.4f}</td></tr>"
            )
        parts.append("</table>")
    for e in s["systems"]:
        title = f"{e['system']} · {e['variant']}"
        parts.append(
            f"<h2>{_esc(title)}</h2><div class='fig'>{confusion_svg(e['confusion'], title)}</div>"
        )
        parts.append(
            "<div class='fig'><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
        )
        for lab, pc in e["per_class"].items():
            parts.append(f"<tr><td>{_esc(lab)}</td><td>{_pct(pc['precision'])}</td><td>{_pct(pc['recall'])}</td>"
                         f"<td>{_pct(pc['f1'])}</td><td>{pc['support']}</td></tr>")  # fmt: skip
        parts.append("</table>")
        for name, block in (("tier", e.get("tiers")), ("face", e.get("per_face"))):
            if block:
                parts.append(f"<table><tr><th>{name}</th><th>n</th><th>WAR</th><th>UAR</th></tr>")
                parts += [f"<tr><td>{_esc(k)}</td><td>{v['n']}</td><td>{_pct(v['war'])}</td><td>{_pct(v['uar'])}</td></tr>"
                          for k, v in block.items()]  # fmt: skip
                parts.append("</table>")
        parts.append("</div>")
    if rep.get("reasoning"):
        r = rep["reasoning"]
        parts.append(
            f"<h2>Reasoning scores</h2><p>method: <b>{_esc(r.get('method'))}</b></p><table>"
        )
        parts += [
            f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>"
            for k, v in (r.get("scores") or {}).items()
        ]
        parts.append("</table>")
    gal = list(iter_jsonl(run / "gallery.jsonl"))
    if gal:
        parts.append("<h2>Gallery</h2><div class='gallery'>")
        for g in gal[:48]:
            img = run / g["image"] if g.get("image") else None
            src = (
                ("data:image/jpeg;base64," + base64.b64encode(img.read_bytes()).decode())
                if img and img.exists()
                else None
            )
            status = g.get("parse_status")
            cls = "ok" if g.get("label") and g.get("label") == g.get("gold") else "bad"
            parts.append(
                "<div class='card'>"
                + (f"<img alt='annotated frame' src='{src}'>" if src else "")
                + f"<div><b>{_esc(g['sample_id'])}</b> · {_esc(g['system'])} · {_esc(g['variant'])}</div>"
                f"<div>gold <b>{_esc(g.get('gold'))}</b> · answer <b class='{cls}'>{_esc(g.get('label'))}</b>"
                f" · parse <span class='{'rep' if status == 'repaired' else cls}'>{_esc(status)}</span></div>"
                f"<details><summary>prompt</summary><pre>{_esc(g.get('prompt'))}</pre></details>"
                f"<details><summary>answer</summary><pre>{_esc(g.get('error') or g.get('answer'))}</pre></details></div>"
            )
        parts.append("</div>")
    body = "\n".join(parts)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>sovtp report</title>"
            f"<style>{CSS}</style></head><body>{body}<script>{CHECK}</script></body></html>")  # fmt: skip


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
