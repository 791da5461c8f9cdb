"""Sidecar sections of a report (sovtp.report.sections): a run folder's tta.json, robust.json and
pad.json shown in report.md / report.html / report.json; renderers imported lazily, a missing
one skipped, a failing one a note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sovtp.report.build import write_report
from sovtp.report.sections import REGISTRY, SectionSpec, collect

LABELS = ["happiness", "neutral"]


@pytest.fixture
def run(tmp_path) -> Path:
    """A small run folder: a CNN system's rows on 6 samples (4 right)."""
    rows = []
    for i in range(6):
        gold = LABELS[i % 2]
        label = gold if i < 4 else LABELS[(i + 1) % 2]
        rows.append(
            {
                "key": f"s{i}|",
                "sample_id": f"s{i}",
                "system": "cnn:m",
                "variant": "m",
                "gold": gold,
                "label": label,
                "parse_status": "ok",
            }
        )
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"data": "x", "variants": ["m"]}))
    man = {"variants": ["m"], "labels": {"name": "t", "labels": LABELS}}
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    return tmp_path


def _tta_doc() -> dict:
    """What `sovtp bench --tta bn` writes (sovtp.baselines.tta_stream.StreamRecord.result per system)."""

    def block(f1: float, acc: float) -> dict:
        return {
            "frame": {"macro_f1": f1, "accuracy": acc, "uar": f1, "n": 12},
            "sample": {"macro_f1": f1, "accuracy": acc, "uar": f1, "n": 6},
        }

    info = {
        "method": "bn",
        "params_adapted": 0,
        "params_total": 700000,
        "tensors_adapted": 0,
        "stats_adapted": 2048,
        "frames": 12,
        "updates": 6,
    }
    res = {
        "system": "cnn:m",
        "variant": "m+tta=bn",
        "method": "bn",
        "labels": LABELS,
        "samples": 7,
        "samples_scored": 6,
        "before": block(0.5, 0.5),
        "after": block(0.75, 0.8),
        "info": info,
    }
    return {"complete": True, "results": [res]}


def _section(html: str, title: str) -> str:
    """The HTML from a section's heading to the next heading."""
    at = html.index(f"<h2>{title}")
    end = html.find("<h2>", at + 4)
    return html[at : end if end > 0 else len(html)]


def test_tta_json_becomes_a_section_in_every_report_file(run):
    (run / "tta.json").write_text(json.dumps(_tta_doc()))
    rep = write_report(run, n_boot=20)
    (sec,) = rep["sections"]
    assert sec["name"] == "tta" and sec["title"].startswith("Test-time adaptation")
    head, (row,) = sec["table"]
    cell = dict(zip(head, row, strict=True))
    assert (cell["system"], cell["method"], cell["macro_f1 before"], cell["macro_f1 after"]) == (
        "cnn:m",
        "bn",
        "50.00",
        "75.00",
    )
    assert cell["delta"] == "25.00" and cell["params adapted"] == 0 and cell["frames"] == 12
    assert (cell["samples scored"], cell["of samples"]) == (6, 7)  # e.g. one without a crop
    md = (run / "report.md").read_text()
    assert "## Test-time adaptation (sample level, macro_f1)" in md
    assert "| cnn:m | bn | 50.00 | 75.00 | 25.00 | 50.00 | 80.00 | 0 |" in md
    html = _section((run / "report.html").read_text(), "Test-time adaptation")
    assert "<td>75.00</td>" in html and "<th>params adapted</th>" in html
    assert json.loads((run / "report.json").read_text())["sections"][0]["name"] == "tta"


def test_no_sidecar_no_section(run):
    rep = write_report(run, n_boot=20)
    assert rep["sections"] == [] and "Test-time adaptation" not in (run / "report.md").read_text()


def test_robust_json_in_a_run_folder_gives_the_figure(run):
    res = {
        "system": "cnn:m",
        "attack": "pgd",
        "eps_units": "grey levels (1/255)",
        "rows": [
            {
                "eps": 0.0,
                "accuracy": 0.9,
                "macro_f1": 0.88,
                "frame_accuracy": 0.85,
                "frame_macro_f1": 0.84,
                "linf": 0,
            },
            {
                "eps": 4.0,
                "accuracy": 0.2,
                "macro_f1": 0.1,
                "frame_accuracy": 0.25,
                "frame_macro_f1": 0.2,
                "linf": 4,
            },
        ],
    }
    (run / "robust.json").write_text(json.dumps(res))
    write_report(run, n_boot=20)
    html = _section((run / "report.html").read_text(), "Adversarial robustness")
    assert "<div class='fig'><svg" in html and "epsilon" in html and "cnn:m pgd" in html
    assert "<td>20.00</td>" in html
    md = (run / "report.md").read_text()
    assert "| cnn:m | pgd | 4 | 20.00 | 10.00 | 25.00 | 20.00 | 4 |" in md


def test_pad_json_section(run):
    """pad.json as `sovtp pad` writes it (its rows, scored by sovtp.report.pad.pad_section):
    one line per held-out attack and the mean ± std."""
    rows = []
    for fold in ("print", "replay"):
        for i in range(8):
            gold = "attack" if i % 2 else "bona_fide"
            score = (0.9 if gold == "attack" else 0.1) if i != 7 else 0.2  # one attack missed
            rows.append(
                {
                    "sample_id": f"{fold}{i}",
                    "system": "cnn:m",
                    "variant": "m",
                    "gold": gold,
                    "scores": {"attack": score},
                    "held_out": fold,
                    "attack": fold if gold == "attack" else None,
                }
            )
    doc = {"rows": rows, "positive": "attack", "negative": "bona_fide", "dev_split": None}
    (run / "pad.json").write_text(json.dumps(doc))
    rep = write_report(run, n_boot=20)
    sec, counts = rep["sections"]  # the rates (and the DET figure), then samples per fold
    head, table = sec["table"]
    assert [r[2] for r in table] == ["print", "replay", "mean ± std"]
    assert sec["svg"].startswith("<svg") and "DET" in sec["svg"]
    assert counts["table"] == (
        ["held out", "split", "bona fide", "print", "replay"],
        [["print", "test", 4, 4, 0], ["replay", "test", 4, 0, 4]],
    )
    from sovtp.report.pad import pad_section

    folds = pad_section(doc)["systems"][0]["folds"]
    for line, f in zip(table, folds, strict=False):
        assert (
            line[head.index("APCER (held out)")]
            == f"{100 * f['apcer_per_type'][f['held_out']]:.1f}"
        )
        assert line[head.index("ACER")] == f"{100 * f['acer']:.1f}"
    assert "Presentation-attack detection" in (run / "report.md").read_text()


def test_renderers_are_lazy_missing_ones_skipped_failing_ones_a_note(run, monkeypatch):
    (run / "a.json").write_text("{}")
    (run / "b.json").write_text("{}")
    reg = [
        SectionSpec("absent", ("a.json",), "sovtp.report.not_written_yet:section"),
        SectionSpec("broken", ("b.json",), "json:loads"),  # called with a Path: TypeError
        SectionSpec("unused", ("c.json",), "sovtp.report.not_written_yet:other"),
    ]
    (sec,) = collect(run, reg)
    assert sec["name"] == "broken" and "could not be drawn: TypeError" in sec["notes"][0]
    # the registry names the other engineers' renderers by module path, imported only on use
    by_name = {s.name: s for s in REGISTRY}
    assert by_name["privacy"].renderer == "sovtp.report.privacy:privacy_section"
    assert by_name["bah"].renderer == "sovtp.report.bah:bah_section"
    assert "config.yaml" in by_name["bah"].files  # asked of every run; None unless BAH
    # a section another module registers shows in the report like the built-in ones
    monkeypatch.setattr(
        "sovtp.report.sections.REGISTRY",
        [*REGISTRY, SectionSpec("extra", ("a.json",), "tests.report.test_report_sections:_extra")],
    )
    write_report(run, n_boot=20)
    html = _section((run / "report.html").read_text(), "Extra &lt;b&gt;")
    assert "<td>&lt;i&gt;</td>" in html and "<p class='note'>n &amp; m</p>" in html


def _extra(run: Path) -> dict:
    return {"title": "Extra <b>", "table": (["k"], [["<i>"]]), "notes": ["n & m"]}
