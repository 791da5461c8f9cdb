"""Sidecar sections of a report: results a run folder holds beside its predictions, written by
other commands (``sovtp bench --tta`` → ``tta.json``, ``sovtp robust RUN`` → ``robust.json``,
``sovtp pad`` → ``pad.json``, the privacy audit, BAH's frame-level scores), each shown in
report.md / report.html and stored in report.json under ``"sections"``.

A section is ``{"title", "table": (header, rows), "svg": optional str, "notes": [str, ...]}``:
plain data, which :mod:`sovtp.report.build` renders with the same table functions as the rest of
the report (cells escaped; an SVG figure inline).

The registry maps the files that announce a section to a renderer named ``"module:function"``
and imported only when one of its files exists: a report never pays for (or breaks on) a module
it does not need, and a renderer another engineer has not shipped yet is skipped with a note.
A renderer takes the run folder and returns a section, a list of sections, or None.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Section = dict[str, Any]


@dataclass(frozen=True)
class SectionSpec:
    name: str  # the key in report.json's "sections"
    files: tuple[str, ...]  # any of these in the run folder announces the section
    renderer: str  # "module:function", imported lazily; function(run: Path) -> section(s)


REGISTRY: list[SectionSpec] = [
    SectionSpec("tta", ("tta.json",), "sovtp.report.sections:tta_from_run"),
    SectionSpec("robust", ("robust.json",), "sovtp.report.sections:robust_from_run"),
    SectionSpec("pad", ("pad.json",), "sovtp.report.sections:pad_from_run"),
    SectionSpec(
        "privacy", ("privacy.json", "outgoing/index.jsonl"), "sovtp.report.privacy:privacy_section"
    ),
    # BAH's video- and frame-level AVGF1/AP: asked of every run, None unless it is a BAH run
    SectionSpec("bah", ("config.yaml",), "sovtp.report.bah:bah_section"),
]


def register(spec: SectionSpec) -> None:
    """Add (or replace, by name) a section."""
    REGISTRY[:] = [s for s in REGISTRY if s.name != spec.name] + [spec]


def _resolve(renderer: str) -> Callable[[Path], Any] | None:
    """The renderer function, or None when its module is not there (not shipped yet)."""
    mod, _, fn = renderer.partition(":")
    try:
        return getattr(importlib.import_module(mod), fn)
    except ModuleNotFoundError as e:
        if e.name and (mod == e.name or mod.startswith(e.name + ".")):
            return None  # the module itself is absent; a missing dependency inside it raises
        raise
    except AttributeError:
        return None


def _normalise(sec: Any, name: str) -> Section:
    """Any renderer's answer in the one shape the builders render."""
    table = sec.get("table")
    if table is not None:
        head, rows = table
        table = (list(head), [list(r) for r in rows])
    return {
        "name": name,
        "title": str(sec.get("title") or name),
        "table": table,
        "svg": sec.get("svg") or None,
        "notes": [str(n) for n in (sec.get("notes") or [])],
    }


def collect(run: str | Path, registry: list[SectionSpec] | None = None) -> list[Section]:
    """Every registered section whose files the run folder holds, in registry order.  A
    renderer that fails becomes a section with the error as its note (the rest of the report
    is still written)."""
    run = Path(run)
    out: list[Section] = []
    for spec in REGISTRY if registry is None else registry:
        if not any((run / f).exists() for f in spec.files):
            continue
        fn = _resolve(spec.renderer)
        if fn is None:
            log.info("report section %s: %s is not installed; skipped", spec.name, spec.renderer)
            continue
        try:
            got = fn(run)
        except Exception as e:
            log.warning("report section %s failed: %s", spec.name, e)
            out.append(
                _normalise(
                    {
                        "title": spec.name,
                        "notes": [f"this section could not be drawn: {type(e).__name__}: {e}"],
                    },
                    spec.name,
                )
            )
            continue
        for sec in got if isinstance(got, list) else [got]:
            if sec:
                out.append(_normalise(sec, spec.name))
    return out


# -- the renderers of this package's own files --------------------------------------------------
def _load(run: Path, name: str) -> Any:
    return json.loads((run / name).read_text())


def _pct(x: Any) -> Any:
    return "n/a" if x is None else f"{100 * x:.2f}"


def tta_from_run(run: Path) -> Section:
    """``tta.json`` (``sovtp bench --tta``): macro F1 and accuracy before/after adaptation on
    the run's own stream, and the parameters adapted, one row per CNN system."""
    from sovtp.report.tta import tta_section

    doc = _load(run, "tta.json")
    results = doc.get("results", []) if isinstance(doc, dict) else list(doc)
    sec = tta_section(results)
    head, rows = sec["table"]
    pcts = {i for i, h in enumerate(head) if "before" in h or "after" in h or h == "delta"}
    rows = [[_pct(c) if i in pcts else c for i, c in enumerate(r)] for r in rows]
    # how many samples these scores cover: only those with a face crop and a gold label the
    # checkpoint knows (the metrics table above counts every row, a missing crop as wrong)
    head = [*head, "samples scored", "of samples"]
    rows = [
        [*row, r.get("samples_scored"), r.get("samples")]
        for row, r in zip(rows, results, strict=True)
    ]
    notes = [
        "before: the checkpoint as trained on the same stream (eval mode); after: adapted "
        "online in sample order, each sample's crops one batch; F1 in %. Both are scored on "
        "the samples with a face crop and a gold label among the checkpoint's classes "
        "(samples scored), so they can differ from the metrics table, which counts every row."
    ]
    if isinstance(doc, dict) and doc.get("complete") is False:
        notes.append("the run was interrupted: these scores cover the samples answered so far")
    return {"title": sec["title"], "table": (head, rows), "notes": notes}


def robust_from_run(run: Path) -> Section:
    """``robust.json`` (``sovtp robust``): accuracy against ε as a figure and a table."""
    from sovtp.report.robust import robust_svg, robust_table

    res = _load(run, "robust.json")
    head, rows = robust_table(res)
    rows = [[r[0], r[1], f"{r[2]:g}", *map(_pct, r[3:7]), *r[7:]] for r in rows]
    curves = res if isinstance(res, list) else [res]
    first = curves[0] if curves else {}
    notes = [
        f"{first.get('attack', '?')} (L-inf), eps in {first.get('eps_units', 'grey levels')}; "
        "accuracy and F1 in %"
    ]
    if first.get("checkpoint"):
        notes.append(f"checkpoint: {first['checkpoint']}")
    return {
        "title": "Adversarial robustness: accuracy against epsilon",
        "table": (head, rows),
        "svg": robust_svg(res, title=f"{first.get('system', 'cnn')} · {first.get('attack', '')}"),
        "notes": notes,
    }


def pad_from_run(run: Path) -> list[Section]:
    """``pad.json`` (``sovtp pad``, leave one attack out): per fold APCER of the held-out
    species, worst APCER, BPCER, ACER, EER, BPCER20, and each system's mean ± std, with the
    DET curve of every fold; then the samples per fold and split."""
    from sovtp.report.pad import counts_table, det_svg, pad_notes, pad_section, pad_table

    doc = _load(run, "pad.json")
    sec = pad_section(doc)
    out = [
        {
            "title": "Presentation-attack detection (leave one attack out)",
            "table": pad_table(sec),
            "svg": det_svg(sec),
            "notes": pad_notes(sec),
        }
    ]
    counts = counts_table(doc)
    if counts:
        out.append(
            {
                "title": "Presentation-attack detection: samples per fold",
                "table": counts,
                "notes": [
                    "train: what the detector of that fold was trained on; dev: where "
                    "its threshold was fixed; test: what it was scored on"
                ],
            }
        )
    return out
