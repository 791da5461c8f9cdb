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

Each fold also keeps its DET curve (``det``: APCER and BPCER at every distinct threshold of its
test rows), drawn by :func:`det_svg` on normal-deviate axes.  The section is drawn with the
report's own table functions (:mod:`sovtp.report.build`): plain cells, no dict reprs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sovtp.data.pad import attack_of
from sovtp.scoring.summary import positive_score
from sovtp.scoring.tasks import bpcer_at_apcer, eer, fill_missing, pad_rates

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
        "det": _det(y, s),
    }


def _det(y: np.ndarray, s: np.ndarray) -> dict[str, list[float]]:
    """APCER (attacks called bona fide: ``s < t``) and BPCER (bona fide called attacks:
    ``s >= t``) at each threshold from above every score down to the lowest score (an invalid
    answer ranked as wrong as possible), pooled over the attack species of the rows."""
    t, ap, bp = _det_arrays(y, s)
    return {"apcer": [round(float(x), 6) for x in ap], "bpcer": [round(float(x), 6) for x in bp]}


def _det_arrays(y: np.ndarray, s: np.ndarray):
    y = np.asarray(y, dtype=bool)
    s = fill_missing(y, np.asarray(s, dtype=float))
    t = np.r_[np.inf, np.unique(s)[::-1]]
    att, bona = np.sort(s[y]), np.sort(s[~y])
    ap = np.searchsorted(att, t, "left") / len(att) if len(att) else np.zeros(len(t))
    bp = 1.0 - np.searchsorted(bona, t, "left") / len(bona) if len(bona) else np.zeros(len(t))
    return t, ap, bp


def det_points(
    rows: Sequence[dict[str, Any]], positive: str = "attack", negative: str = "bona_fide"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, APCER, BPCER) of the rows, thresholds from +inf down (see :func:`_det`)."""
    y, s, _ = _arrays(rows, positive, negative)
    return _det_arrays(y, s)


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
            entries.append(
                {"held_out": name, **fold_metrics(test, dev, positive=positive, negative=negative)}
            )
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


HEAD = [
    "system",
    "variant",
    "held out",
    "APCER (held out)",
    "APCER worst",
    "BPCER",
    "ACER",
    "EER",
    "BPCER20",
]


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def pad_table(section: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """One line per fold (rates in %), then each system's mean ± std over its folds."""
    rows: list[list[Any]] = []
    for e in section["systems"]:
        for f in e["folds"]:
            held = (f.get("apcer_per_type") or {}).get(f["held_out"])
            rows.append(
                [
                    e["system"],
                    e["variant"],
                    f["held_out"],
                    _pct(held),
                    *(_pct(f.get(k)) for k in FOLD_METRICS),
                ]
            )
        m, sd = e.get("mean") or {}, e.get("std") or {}
        rows.append(
            [
                e["system"],
                e["variant"],
                "mean ± std",
                "",
                *(f"{_pct(m.get(k))} ± {_pct(sd.get(k))}" for k in FOLD_METRICS),
            ]
        )
    return list(HEAD), rows


def counts_table(doc: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]] | None:
    """Samples per fold and split: bona fide, then each attack species, one column each —
    from a ``pad.json``'s ``folds`` (what was trained on too), else counted from its rows."""
    tally: dict[tuple[str, str], dict[str, int]] = {}
    for f in doc.get("folds") or []:
        for split in ("train", "dev", "test"):
            if isinstance(f.get(split), Mapping):
                tally[(str(f["held_out"]), split)] = {str(k): int(v) for k, v in f[split].items()}
    if not tally:
        neg, dev = doc.get("negative", "bona_fide"), doc.get("dev_split", "dev")
        seen: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
        for r in doc.get("rows") or []:
            if r.get("gold") is None:
                continue
            fold = str(_field(r, "held_out") or _field(r, "fold") or "all")
            split = "dev" if dev and _field(r, "split") == dev else "test"
            seen[(fold, split)][str(r["sample_id"])] = r
        for key, rs in seen.items():
            c: dict[str, int] = defaultdict(int)
            for r in rs.values():
                c[neg if r["gold"] == neg else (attack_of(r) or "attack")] += 1
            tally[key] = dict(c)
    if not tally:
        return None
    neg = str(doc.get("negative", "bona_fide"))
    kinds = sorted({k for c in tally.values() for k in c if k != neg})
    order = {"train": 0, "dev": 1, "test": 2}
    rows = [
        [fold, split, c.get(neg, 0), *(c.get(k, 0) for k in kinds)]
        for (fold, split), c in sorted(
            tally.items(), key=lambda x: (x[0][0], order.get(x[0][1], 3))
        )
    ]
    return ["held out", "split", neg.replace("_", " "), *kinds], rows


def det_svg(section: Mapping[str, Any], title: str = "") -> str:
    """The DET curves of every fold (APCER against BPCER over thresholds, both on normal-deviate
    axes: ``scipy.stats.norm.ppf`` of the rate, rates clipped to [0.1 %, 99.9 %]), each fold's
    operating point (its dev threshold) marked; an inline SVG string, or "" when no fold kept
    its curve (a ``pad.json`` written before the curves were)."""
    curves = [(e, f) for e in section.get("systems") or [] for f in e["folds"] if f.get("det")]
    if not curves:
        return ""
    from scipy.stats import norm

    from sovtp.report.figures import RC, _plt, _svg

    lo = 0.001
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 0.999]
    names = [f"{t * 100:g}" for t in ticks]

    def z(x: Any) -> np.ndarray:
        return norm.ppf(np.clip(np.asarray(x, dtype=float), lo, 1 - lo))

    plt = _plt()
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(4.8, 4.2))
        many = len({(e["system"], e["variant"]) for e, _ in curves}) > 1
        for e, f in curves:
            name = f"held out {f['held_out']}"
            if many:
                name = f"{e['system']} · {e['variant']} · {name}"
            (line,) = ax.plot(
                z(f["det"]["apcer"]), z(f["det"]["bpcer"]), drawstyle="steps-post", label=name
            )
            if f.get("apcer") is not None and f.get("bpcer") is not None:
                ax.plot(z(f["apcer"]), z(f["bpcer"]), "o", color=line.get_color(), ms=5)
        ax.plot(z([lo, 1 - lo]), z([lo, 1 - lo]), ":", color="#888", lw=1, label="EER line")
        ax.set_xticks(z(ticks), names)
        ax.set_yticks(z(ticks), names)
        ax.set_xlim(z(lo), z(1 - lo))
        ax.set_ylim(z(lo), z(1 - lo))
        ax.set_xlabel("APCER (%) — attacks accepted as bona fide")
        ax.set_ylabel("BPCER (%) — bona fide rejected as attacks")
        ax.set_title(title or "DET curve per held-out attack (dot: the dev threshold)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
        return _svg(fig)


def pad_notes(section: Mapping[str, Any]) -> list[str]:
    notes = [n for n in [section.get("note")] if n] + ["rates in %"]
    if section.get("systems") and not det_svg_possible(section):
        notes.append("no DET curve: this pad.json keeps no scores per fold (re-score its rows)")
    return notes


def det_svg_possible(section: Mapping[str, Any]) -> bool:
    return any(f.get("det") for e in section.get("systems") or [] for f in e["folds"])


def _intro(doc: Mapping[str, Any]) -> list[str]:
    """The run's settings as list lines (plain text: the sample counts go to a table)."""
    lines = []
    if doc.get("evaluator"):
        p = doc.get("protocol") or {}
        lines.append(
            f"evaluator: {doc['evaluator']}; leave one attack out: train on "
            f"{p.get('train_split')}, threshold at the EER point of "
            f"{p.get('dev_split') or 'test itself (no dev split)'}, test on "
            f"{p.get('test_split')}"
        )
    c = doc.get("config") or {}
    if c:
        lines.append(
            f"model: {c.get('model')}{' + FFT high-pass channel' if c.get('freq') else ''}"
            f", {c.get('size')} px, {c.get('epochs')} epoch(s), crops: {c.get('crops')}"
        )
    lines += [
        f"zero-shot answers scored under the same folds: {p}" for p in doc.get("zero_shot") or []
    ]
    return lines


def pad_report(
    doc: Mapping[str, Any], title: str = "Presentation-attack detection"
) -> tuple[str, str]:
    """``(report.md, report.html)`` of a ``pad.json`` document, drawn with the report kit: the
    settings, the rates table, the DET curve, the samples per fold and split as a table, the
    notes — no dict reprs anywhere (what ``sovtp pad`` writes)."""
    from sovtp.report.tables import CSS, _esc, html_table, md_table

    sec = pad_section(doc)
    intro, counts, notes = _intro(doc), counts_table(doc), pad_notes(sec)
    md = [f"# {title}", "", *(f"- {x}" for x in intro), "", *md_table(pad_table(sec))]
    if det_svg_possible(sec):
        md += ["", "(figure: report.html, the DET curve per held-out attack)"]
    if counts:
        md += ["", "## Samples per fold", "", *md_table(counts)]
    md += [f"\n> {n}" for n in notes]
    parts = [f"<h1>{_esc(title)}</h1>"]
    if intro:
        parts.append("<ul>" + "".join(f"<li>{_esc(x)}</li>" for x in intro) + "</ul>")
    parts.append(html_table(pad_table(sec)))
    svg = det_svg(sec)
    if svg:
        parts.append(f"<div class='fig'>{svg}</div>")
    if counts:
        parts.append("<h2>Samples per fold</h2>" + html_table(counts))
    parts += [f"<p class='note'>{_esc(n)}</p>" for n in notes]
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}"
        f"</title><style>{CSS}</style></head><body>{chr(10).join(parts)}</body></html>\n"
    )
    return "\n".join(md) + "\n", page
