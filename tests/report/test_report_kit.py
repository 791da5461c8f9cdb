"""One report kit for every recipe (issue 18, item 4): the PAD section drawn as tables (no dict
reprs) with a DET curve; the gallery in the run's order with the parse status coloured by
parsing; proportions at 0 % or 100 % with an interval that does not collapse (Wilson), and the
report naming the method behind every interval."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from sovtp.report.build import write_report
from sovtp.scoring.summary import summarise

LABELS = ["happy", "sad"]


# ------------------------------------------------------------------ intervals at 0 % and 100 %


def _scipy_wilson(k: int, n: int) -> tuple[float, float]:
    """The reference: scipy's own Wilson score interval (no continuity correction)."""
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def _rows(n: int, right: int, variant: str = "v") -> list[dict]:
    out = []
    for i in range(n):
        gold = LABELS[i % 2]
        label = gold if i < right else LABELS[(i + 1) % 2]
        out.append(
            {
                "key": f"s{i}|{variant}",
                "sample_id": f"s{i}",
                "system": "m",
                "variant": variant,
                "gold": gold,
                "label": label,
                "parse_status": "ok",
            }
        )
    return out


def test_wilson_matches_a_hand_computation_and_scipy():
    from sovtp.scoring.stats import wilson

    z = 1.959963984540054
    for k, n in [(0, 20), (20, 20), (7, 20), (1, 3), (50, 50)]:
        p = k / n
        mid = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        iv = wilson(k, n)
        assert iv.value == pytest.approx(p)
        assert (iv.low, iv.high) == pytest.approx((max(0.0, mid - half), min(1.0, mid + half)))
        assert (iv.low, iv.high) == pytest.approx(_scipy_wilson(k, n))
        assert iv.method == "wilson"
    assert wilson(20, 20).low < 1.0 and wilson(0, 20).high > 0.0  # never collapses


@pytest.mark.parametrize("right", [20, 0])
def test_a_perfect_or_hopeless_system_gets_a_wilson_war_interval(right):
    s = summarise(_rows(20, right), LABELS, n_boot=100, metrics=["war", "invalid_rate"])
    (e,) = s["systems"]
    war = e["ci"]["war"]
    assert war["value"] == right / 20
    assert war["low"] < war["high"], war  # not [1, 1] or [0, 0]
    assert (war["low"], war["high"]) == pytest.approx(_scipy_wilson(right, 20))
    assert war["method"] == "wilson"
    assert e["ci"]["invalid_rate"]["method"] == "wilson"
    assert e["ci"]["uar"]["method"] == "bootstrap"  # a mean of recalls: not one proportion


def test_the_report_says_which_method_gave_each_interval(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    rows = _rows(20, 20)
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "config.yaml").write_text(yaml.safe_dump({"data": "x", "variants": ["v"]}))
    man = {"variants": ["v"], "labels": {"name": "t", "labels": LABELS}}
    (run / "manifest.json").write_text(json.dumps(man))
    write_report(run, n_boot=50)
    md = (run / "report.md").read_text()
    lo, _ = _scipy_wilson(20, 20)
    assert f"100.00 [{100 * lo:.2f}, 100.00]" in md  # WAR: Wilson, not [100.00, 100.00]
    assert "Wilson score interval" in md and "percentile bootstrap" in md
    # UAR's bootstrap interval has zero width here: the report says why rather than hiding it
    assert "zero width" in md
    html = (run / "report.html").read_text()
    assert "Wilson score interval" in html and "zero width" in html


def test_the_zero_width_note_points_only_at_a_column_the_row_has():
    """† on a label row points to the row's WAR (Wilson); on a spot row — bootstrap intervals
    only, no WAR column — it must not send the reader to a column that is not there."""
    from sovtp.report.build import interval_notes

    zero = {"value": 0.0, "low": 0.0, "high": 0.0, "method": "bootstrap"}
    wide = {"value": 1.0, "low": 0.0, "high": 1.0, "method": "bootstrap"}
    spot = {"systems": [{"n": 2, "ci": {"spot_f1": wide, "strs": zero}}], "task": "intervals"}
    (dagger,) = [n for n in interval_notes(spot) if n.startswith("†")]
    assert "WAR" not in dagger and "Wilson" not in dagger and "the row's n" in dagger
    war = {"value": 1.0, "low": 0.84, "high": 1.0, "method": "wilson"}
    label = {"systems": [{"n": 20, "ci": {"war": war, "uar": {**zero, "value": 1.0}}}]}
    (dagger,) = [n for n in interval_notes(label) if n.startswith("†")]
    assert "the WAR interval (Wilson) of the same row" in dagger
    # two rows with a †, only one of which has a WAR: the note may not promise one to both
    mixed = {"systems": [*label["systems"], *spot["systems"]], "task": "intervals"}
    (dagger,) = [n for n in interval_notes(mixed) if n.startswith("†")]
    assert "Wilson" not in dagger and "the row's n" in dagger


# ------------------------------------------------------------------ the gallery


def _gallery_run(tmp: Path, order: list[str]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    rows, gal = [], []
    for v in order:
        rows += _rows(4, 2, v)
    # the runner writes gallery entries as workers finish: not in the ladder's order
    for v in reversed(order):
        for i in (1, 0, 3):
            g = LABELS[i % 2]
            label = g if i < 2 else LABELS[(i + 1) % 2]
            gal.append(
                {
                    "sample_id": f"s{i}",
                    "system": "m",
                    "variant": v,
                    "gold": g,
                    "label": label,
                    "parse_status": "ok",
                    "prompt": "p",
                    "answer": "a",
                }
            )
    (tmp / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp / "gallery.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gal))
    (tmp / "config.yaml").write_text(yaml.safe_dump({"data": "x", "variants": order}))
    man = {"variants": order, "labels": {"name": "t", "labels": LABELS}}
    (tmp / "manifest.json").write_text(json.dumps(man))
    return tmp


def test_the_gallery_follows_the_ladder_order(tmp_path):
    order = ["ladder/plain", "ladder/boxes", "ladder/au_text", "sovtp/full"]
    run = _gallery_run(tmp_path / "r", order)
    write_report(run, n_boot=20)
    html = (run / "report.html").read_text()
    gallery = html[html.index("<h2>Gallery</h2>") :]
    heads = re.findall(r"<h3>(.*?)</h3>", gallery)
    assert heads == [f"m · {v}" for v in order]
    cards = re.findall(r"<b>(s\d)</b> · m · ([^<]+)</div>", gallery)
    assert cards == [(s, v) for v in order for s in ("s0", "s1", "s3")]


def test_parse_status_is_coloured_by_parsing_correctness_separately(tmp_path):
    run = _gallery_run(tmp_path / "r", ["v"])
    write_report(run, n_boot=20)
    html = (run / "report.html").read_text()
    cards = html[html.index("<h2>Gallery</h2>") :].split("<div class='card'>")[1:]
    wrong = [c for c in cards if "<b>s3</b>" in c]
    right = [c for c in cards if "<b>s0</b>" in c]
    assert wrong and right
    # the answer is wrong but parsed fine: the parse status is green, the answer red
    assert "parse <span class='ok'>ok</span>" in wrong[0]
    assert "class='bad'" in wrong[0] and "wrong" in wrong[0]
    assert "parse <span class='ok'>ok</span>" in right[0] and "class='bad'" not in right[0]


# ------------------------------------------------------------------ PAD: tables and a DET curve


def _pad_doc(dev: bool = True) -> dict:
    rng = np.random.default_rng(0)
    rows = []
    for fold in ("print", "replay"):
        for split in ("dev", "test") if dev else ("test",):
            for i in range(12):
                gold = "attack" if i % 2 else "bona_fide"
                score = float(np.clip(rng.normal(0.7 if gold == "attack" else 0.3, 0.2), 0, 1))
                kind = fold if split == "test" else ("replay" if fold == "print" else "print")
                rows.append(
                    {
                        "sample_id": f"{fold}-{split}{i}",
                        "system": "cnn:m",
                        "variant": f"loao:{fold}",
                        "fold": fold,
                        "held_out": fold,
                        "split": split,
                        "gold": gold,
                        "score": score,
                        "attack": kind if gold == "attack" else None,
                    }
                )
    meta_folds = [
        {
            "held_out": f,
            "train": {"bona_fide": 4, "print": 2, "replay": 2},
            "dev": {"bona_fide": 6, "replay" if f == "print" else "print": 6},
            "test": {"bona_fide": 6, f: 6},
        }
        for f in ("print", "replay")
    ]
    return {
        "format": "sovtp-pad/1",
        "rows": rows,
        "positive": "attack",
        "negative": "bona_fide",
        "dev_split": "dev" if dev else None,
        "evaluator": "pad",
        "folds": meta_folds,
        "config": {"model": "mobilenet_v2", "size": 32, "model_kwargs": {"width_mult": 0.35}},
    }


def _md_tables(md: str) -> list[str]:
    return [ln for ln in md.splitlines() if ln.startswith("|")]


def _html_tables(html: str) -> list[str]:
    return re.findall(r"<table.*?</table>", html, flags=re.S)


def _det_ok(svg: str) -> None:
    assert svg.startswith("<svg") and "DET" in svg
    assert "APCER" in svg and "BPCER" in svg
    # normal-deviate axes: a tick at 50 % sits at 0, ticks at 5 % / 95 % mirror each other
    assert "50" in svg and "95" in svg


def test_pad_section_is_tables_and_a_det_curve(tmp_path):
    from sovtp.report.pad import det_points, pad_report, pad_section

    doc = _pad_doc()
    sec = pad_section(doc)
    md, html = pad_report(sec, "PAD")
    assert _md_tables(md) and not [ln for ln in _md_tables(md) if "{" in ln]
    assert _html_tables(html) and not [t for t in _html_tables(html) if "{" in t]
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 1
    _det_ok(svgs[0])
    # the curve's points: APCER falls and BPCER rises as the threshold falls, ends at (0,1)/(1,0)
    f = sec["systems"][0]["folds"][0]
    ap, bp = np.array(f["det"]["apcer"]), np.array(f["det"]["bpcer"])
    assert ap[0] == 1 and bp[0] == 0 and ap[-1] == 0 and bp[-1] == 1
    assert (np.diff(ap) <= 0).all() and (np.diff(bp) >= 0).all()
    test = [r for r in doc["rows"] if r["fold"] == f["held_out"] and r["split"] == "test"]
    att = [r["score"] for r in test if r["gold"] == "attack"]
    bona = [r["score"] for r in test if r["gold"] == "bona_fide"]
    for t, a, b in zip(*det_points(test), strict=True):  # brute force at each threshold
        assert a == pytest.approx(np.mean([s < t for s in att]))
        assert b == pytest.approx(np.mean([s >= t for s in bona]))


def test_pad_json_in_a_report_is_tables_with_a_det_figure(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    rows = _rows(6, 4)
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "config.yaml").write_text(yaml.safe_dump({"data": "x", "variants": ["v"]}))
    (run / "pad.json").write_text(json.dumps(_pad_doc()))
    rep = write_report(run, n_boot=20)
    pads = [s for s in rep["sections"] if s["name"] == "pad"]
    assert [s["title"] for s in pads][:1] == [
        "Presentation-attack detection (leave one attack out)"
    ]
    assert any(s["svg"] for s in pads)
    _det_ok(next(s["svg"] for s in pads if s["svg"]))
    for s in pads:  # every cell a plain value: no dict or list reprs
        if s["table"]:
            assert not [c for r in s["table"][1] for c in r if "{" in str(c) or "[" in str(c)]
    counts = next(s for s in pads if s["table"] and "split" in s["table"][0])
    # held out, split, then the counts of bona fide, print, replay
    assert ["print", "dev", 6, 0, 6] in counts["table"][1]
    md = (run / "report.md").read_text()
    assert not [ln for ln in _md_tables(md) if "{" in ln]
    html = (run / "report.html").read_text()
    assert not [t for t in _html_tables(html) if "{" in t]


def test_pad_command_report_has_tables_without_dicts_and_a_det_svg(tmp_path):
    """`sovtp pad` end to end (tiny CNN, CPU): its report.md / report.html tables hold no
    dict reprs and the HTML carries the DET curve."""
    pytest.importorskip("torchvision")
    from typer.testing import CliRunner

    from tests.baselines.test_liveness import TINY_ARGS, _pad_app, _write_pad_manifest

    data = tmp_path / "data"
    data.mkdir()
    manifest = _write_pad_manifest(data, 2, 2, 2, side=32)
    run = tmp_path / "run"
    res = CliRunner().invoke(_pad_app(), ["pad", str(manifest), "-o", str(run), *TINY_ARGS])
    assert res.exit_code == 0, (res.output, res.exception)
    md = (run / "report.md").read_text()
    html = (run / "report.html").read_text()
    assert _md_tables(md) and not [ln for ln in _md_tables(md) if "{" in ln]
    assert "{" not in md  # nor anywhere else: the settings lines were dict reprs
    assert _html_tables(html) and not [t for t in _html_tables(html) if "{" in t]
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 1
    _det_ok(svgs[0])
    # the same run through the one report builder: the section carries the figure too
    write_report(run, n_boot=20)
    rep = json.loads((run / "report.json").read_text())
    assert any(s["name"] == "pad" and s["svg"] for s in rep["sections"])


def test_pad_report_of_a_pad_json_has_no_dict_reprs_at_all():
    """pad_report (what `sovtp pad` should write): settings, rates, DET, samples per fold —
    report.md holds no `{` at all, the HTML none outside its style sheet and figure."""
    from sovtp.report.pad import pad_report

    md, html = pad_report(_pad_doc(), "PAD: x")
    assert "{" not in md and "| print | dev | 6 | 0 | 6 |" in md
    text = re.sub(r"<style>.*?</style>|<svg.*?</svg>", "", html, flags=re.S)
    assert "{" not in text and "<h2>Samples per fold</h2>" in text
    _det_ok(re.search(r"<svg.*?</svg>", html, flags=re.S).group(0))


def test_a_comparison_without_mcnemar_is_drawn_not_a_crash():
    """Spotting rows pair without a per-sample right/wrong (no McNemar, no ΔWAR): the report
    build raised KeyError 'mcnemar' on such a pair; the cells read n/a."""
    from sovtp.report.build import comparisons_table

    c = {"a": {"system": "x", "variant": "v"}, "b": {"system": "y", "variant": "v"}, "n_shared": 2}
    head, rows = comparisons_table({"comparisons": [c]})
    assert rows == [["x · v", "y · v", 2, "n/a", "n/a", "n/a", ""]] and len(head) == 7
