"""Honest ablations: the ladder ends at the five-stage prompt, every rung is compared with the one
below it, a grid reports main effects and interactions with CIs, rungs a backend cannot see are
not findings — and names with ``$``, ``|`` or markup are shown literally."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sovtp.prompting.ablation import LADDER, grid, parse_factor, visual_only
from sovtp.prompting.spec import load_spec
from sovtp.report.ablation import NOT_TESTABLE, ablation_notes, correctness, factorial
from sovtp.report.build import build_report, effects_table, interactions_table, write_report
from sovtp.scoring.stats import mcnemar

LABELS = ["happy", "sad"]


def make_run(
    tmp: Path, right: dict[str, list[bool]], system: dict, labels=LABELS, variants=None
) -> Path:
    """A run folder whose predictions are right/wrong as given (sample i, variant v)."""
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    for v, rs in right.items():
        for i, ok in enumerate(rs):
            gold = labels[i % len(labels)]
            wrong = labels[(i + 1) % len(labels)]
            rows.append(
                {
                    "key": f"{i}|{v}",
                    "sample_id": f"s{i:03d}",
                    "system": system["name"],
                    "variant": v,
                    "gold": gold,
                    "label": gold if ok else wrong,
                    "parse_status": "ok",
                }
            )
    (tmp / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    order = list(right)
    (tmp / "config.yaml").write_text(
        yaml.safe_dump({"data": "synthetic", "variants": variants or order, "systems": [system]})
    )
    man = {"variants": order, "labels": {"name": "x", "labels": labels}, "systems": [system]}
    (tmp / "manifest.json").write_text(json.dumps(man))
    return tmp


# a text-only model: reads the prompt, sees no image (its capabilities recorded by the run)
BLIND = {
    "name": "textllm",
    "backend": "openai",
    "options": {"model": "t"},
    "capabilities": {"images_per_prompt": 0},
}
FACS = {"name": "facs", "backend": "facs", "options": {}}  # reads neither images nor prompt
SEEING = {"name": "openai:qwen", "backend": "openai", "options": {"model": "qwen"}}


def pattern(n: int, k: int) -> list[bool]:
    """The first k of n samples right."""
    return [i < k for i in range(n)]


def test_the_ladder_climbs_to_the_five_stage_prompt():
    assert LADDER[-1] == "sovtp/full" and len(set(LADDER)) == len(LADDER)
    specs = [load_spec(v) for v in LADDER]
    assert specs[-1].template == "sovtp_full.j2" and specs[-2].template != specs[-1].template


def test_each_rung_is_compared_with_the_one_below(tmp_path):
    n = 60
    right = {
        "ladder/plain": pattern(n, 20),
        "ladder/au_text": pattern(n, 40),
        "sovtp/full": [i < 40 or i >= 55 for i in range(n)],
    }
    run = make_run(tmp_path / "r", right, SEEING)
    rep = write_report(run, n_boot=200)
    ab = rep["ablation"]
    assert ab["kind"] == "ladder" and ab["blind_systems"] == {}
    (s1, s2) = ab["steps"]
    assert (s1["a"], s1["b"], s2["a"], s2["b"]) == (
        "ladder/plain",
        "ladder/au_text",
        "ladder/au_text",
        "sovtp/full",
    )
    assert s1["delta_war"]["value"] == pytest.approx(20 / 60)
    assert s2["delta_war"]["value"] == pytest.approx(5 / 60)
    assert s2["delta_war"]["low"] < 5 / 60 < s2["delta_war"]["high"]
    ra, rb = np.array(right["ladder/au_text"]), np.array(right["sovtp/full"])
    assert s2["mcnemar"] == mcnemar(ra, rb).to_dict() and s2["testable"]
    md = (run / "report.md").read_text()
    assert "each rung against the one below it" in md and NOT_TESTABLE not in md
    assert "+8.33" in md  # the au_text → full step, which a base-only table never shows
    assert "each rung against the one below it" in (run / "report.html").read_text()
    assert ablation_notes(run) == []


def test_rungs_a_blind_backend_cannot_see_are_not_findings(tmp_path):
    n = 40
    same = pattern(n, 10)
    right = {"ladder/plain": same, "ladder/bbox": same, "ladder/au_text": pattern(n, 30)}
    run = make_run(tmp_path / "blind", right, BLIND)
    rep = write_report(run, n_boot=100)
    (vis, cue) = rep["ablation"]["steps"]
    assert not vis["testable"] and cue["testable"]
    md = (run / "report.md").read_text()
    step_rows = [
        ln for ln in md.splitlines() if ln.startswith("| textllm | ladder/plain | ladder/bbox")
    ]
    assert step_rows and "n/a" in step_rows[0] and NOT_TESTABLE in step_rows[0]
    assert "+0.00" not in md  # the tie is never shown as a measured delta
    cmp_rows = [ln for ln in md.splitlines() if "textllm · ladder/bbox" in ln]
    assert cmp_rows and NOT_TESTABLE in cmp_rows[0]
    (note,) = ablation_notes(run)
    assert "ladder/plain → ladder/bbox" in note and "sees no images" in note
    assert "ladder/au_text" not in note.split(":")[-1].split("—")[0]  # a text rung stays a finding
    html = (run / "report.html").read_text()
    assert html.count(NOT_TESTABLE) >= 3  # step row, comparison row, note
    # the same rows from a system that sees images are findings
    seeing = write_report(make_run(tmp_path / "seeing", right, SEEING), n_boot=100)
    assert all(s["testable"] for s in seeing["ablation"]["steps"])
    assert seeing["ablation"]["notes"] == [] and seeing["ablation"]["untestable_pairs"] == []


def test_visual_only_compares_everything_but_marks():
    a = yaml.safe_load(Path(load_spec("ladder/au_text").source).read_text())
    b = yaml.safe_load(Path(load_spec("ladder/au_overlay").source).read_text())
    c = yaml.safe_load(Path(load_spec("ladder/context").source).read_text())
    assert visual_only(a, b) and not visual_only(b, c) and not visual_only(a, a)


def test_grid_has_an_output_axis_and_writes_its_design(tmp_path):
    assert parse_factor("output") == ("output", ("staged", "json", "label"))
    paths = grid("sovtp/full", ["boxes", "output=json|label"], tmp_path)
    specs = [yaml.safe_load(Path(p).read_text()) for p in paths]
    assert [s["id"] for s in specs] == [
        "grid/output=json",
        "grid/output=label",
        "grid/boxes+output=json",
        "grid/boxes+output=label",
    ]
    assert [s["output"] for s in specs] == ["json", "label", "json", "label"]
    assert [s["visual"]["boxes"] for s in specs] == [False, False, True, True]
    # the output variants differ in output only: a text difference, testable by any backend
    assert not visual_only(specs[0], specs[1]) and visual_only(specs[0], specs[2])
    info = json.loads((tmp_path / "grid.json").read_text())
    assert info["factors"] == {"boxes": [False, True], "output": ["json", "label"]}
    assert info["variants"]["grid/boxes+output=label"] == {"boxes": True, "output": "label"}


def _grid_run(tmp_path: Path, system: dict) -> tuple[Path, dict]:
    """A boxes × au × output grid whose accuracies follow a known model: 0.3 + 0.1·boxes +
    0.2·au + 0.1·boxes·au + 0.05·(output=label), over 100 samples."""
    run = tmp_path / system["backend"]
    paths = grid("sovtp/full", ["boxes", "au", "output=json|label"], run / "prompts")
    info = json.loads((run / "prompts" / "grid.json").read_text())
    right = {}
    for v, lv in info["variants"].items():
        p = 0.3 + 0.1 * lv["boxes"] + 0.2 * lv["au"] + 0.1 * lv["boxes"] * lv["au"]
        p += 0.05 * (lv["output"] == "label")
        right[v] = pattern(100, round(100 * p))
    return make_run(run, right, system, variants=paths), info


def test_grid_main_effects_and_interactions(tmp_path):
    run, info = _grid_run(tmp_path, SEEING)
    rep = write_report(run, n_boot=200)
    ab = rep["ablation"]
    assert ab["kind"] == "grid"
    eff = {(e["factor"], e["level"]): e for e in ab["effects"]}
    assert eff[("boxes", True)]["effect"]["value"] == pytest.approx(0.1 + 0.1 / 2)
    assert eff[("au", True)]["effect"]["value"] == pytest.approx(0.2 + 0.1 / 2)
    assert eff[("output", "label")]["effect"]["value"] == pytest.approx(0.05)
    lo, hi = eff[("au", True)]["effect"]["low"], eff[("au", True)]["effect"]["high"]
    assert lo < 0.25 < hi and hi - lo < 0.3
    inter = {tuple(i["factors"]): i for i in ab["interactions"]}
    assert set(inter) == {("boxes", "au"), ("boxes", "output"), ("au", "output")}
    assert inter[("boxes", "au")]["interaction"]["value"] == pytest.approx(0.1)
    assert inter[("au", "output")]["interaction"]["value"] == pytest.approx(0.0, abs=0.011)
    assert all(e["testable"] for e in ab["effects"] + ab["interactions"])
    md = (run / "report.md").read_text()
    assert "## Grid: main effects" in md and "## Grid: two-way interactions" in md
    assert "| openai:qwen | output=label vs output=json | 100 | +5.00" in md
    assert "| openai:qwen | boxes × au | 100 | +10.00 [" in md


def test_a_blind_backend_marks_visual_grid_effects(tmp_path):
    run, _ = _grid_run(tmp_path, BLIND)
    ab = build_report(run, n_boot=50)["ablation"]
    testable = {e["factor"]: e["testable"] for e in ab["effects"]}
    assert testable == {"boxes": False, "au": True, "output": True}
    inter = {tuple(i["factors"]): i["testable"] for i in ab["interactions"]}
    assert inter == {("boxes", "au"): False, ("boxes", "output"): False, ("au", "output"): True}
    # the tables say so, row by row: no interval where the backend cannot see the switch
    effects = {r[1]: r[3:] for r in effects_table(ab)[1]}
    assert effects["boxes vs no boxes"] == ["n/a", NOT_TESTABLE]
    assert effects["au vs no au"][0].startswith(("+", "-")) and effects["au vs no au"][1] == ""
    rows = {r[1]: r[3:] for r in interactions_table(ab)[1]}
    assert rows["boxes × au"] == ["n/a", NOT_TESTABLE]
    assert (
        rows["au × output=label"][0].startswith(("+", "-")) and rows["au × output=label"][1] == ""
    )
    assert ab["notes"] and "boxes" in ab["notes"][0]


def test_correctness_keys_samples_like_the_summary():
    rows = [
        {"sample_id": "a", "system": "s", "variant": "v", "gold": "happy", "label": "sad"},
        {"sample_id": "a", "system": "s", "variant": "v", "gold": "happy", "label": "happy"},
        {
            "sample_id": "a",
            "face_id": 2,
            "system": "s",
            "variant": "v",
            "gold": "sad",
            "label": None,
        },
        {"sample_id": "b", "system": "s", "variant": "v", "gold": None, "label": "sad"},
    ]
    assert correctness(rows, LABELS) == {("s", "v"): {"a": True, "a#face2": False}}


def test_factorial_skips_an_incomplete_grid():
    info = {
        "factors": {"boxes": [False, True]},
        "variants": {"grid/none": {"boxes": False}, "grid/boxes": {"boxes": True}},
    }
    assert factorial({("s", "grid/none"): {"a": True}}, info) == {"effects": [], "interactions": []}


def test_names_with_dollars_pipes_and_markup_render_literally(tmp_path):
    # each of these is a mathtext error if matplotlib parses it: the report used to crash
    system = {"name": "m$\\frac{b$", "backend": "openai", "options": {}}
    labels = ["happy$x^$", "sad|x"]
    right = {"v$_{1$": pattern(10, 5), "<script>alert(1)</script>": pattern(10, 7)}
    run = make_run(tmp_path / "r", right, system, labels=labels)
    write_report(run, n_boot=20)
    html = (run / "report.html").read_text()
    svg_text = "".join(t.split(">", 1)[1] for t in html.split("<text")[1:])
    for name in ("m$\\frac{b$", "v$_{1$", "happy$x^$"):
        assert name in svg_text  # drawn literally in the figures, not as math
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = (run / "report.md").read_text()
    assert "sad\\|x" in md and "m$\\frac{b$" in md


def test_the_offline_reasoner_ties_every_rung_by_construction(tmp_path):
    """The FACS reasoner answers from the measurements, not the prompt: no rung of any kind is
    a finding with it, text rungs included, and the note says so."""
    n = 40
    right = {
        "ladder/plain": pattern(n, 10),
        "ladder/bbox": pattern(n, 10),
        "ladder/au_text": pattern(n, 10),
    }
    rep = write_report(make_run(tmp_path / "facs", right, FACS), n_boot=100)
    assert rep["ablation"]["steps"] and not any(d["testable"] for d in rep["ablation"]["steps"])
    (note,) = rep["ablation"]["notes"]
    assert "not from the prompt" in note and NOT_TESTABLE in note


def test_a_binary_run_reports_its_declared_metrics(tmp_path):
    """A run under a binary evaluator (pad): the report's table is the declared metrics with
    CIs (headline first), not WAR/UAR alone."""
    from sovtp.report.build import metrics_table

    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        gold = "attack" if i % 2 else "bona_fide"
        s = float(np.clip((0.6 if gold == "attack" else 0.3) + rng.normal(0, 0.2), 0, 1))
        rows.append(
            {
                "key": f"{i}",
                "sample_id": f"s{i:02d}",
                "system": "cnn:m",
                "variant": "v",
                "gold": gold,
                "label": "attack" if s >= 0.5 else "bona_fide",
                "scores": {"attack": s},
                "parse_status": "ok",
                "split": "dev" if i < 20 else "test",
                # a manifest's column, spelled as people type it
                "attack": "Print " if i % 4 == 1 else "REPLAY",
            }
        )
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({"data": "x", "evaluator": "pad", "variants": ["v"]})
    )
    man = {"variants": ["v"], "labels": {"name": "liveness", "labels": ["bona_fide", "attack"]}}
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    rep = write_report(tmp_path, n_boot=100)
    head, table = metrics_table(rep["scoring"])
    per_type = rep["scoring"]["systems"][0]["binary"]["apcer_per_type"]
    assert set(per_type) == {"print", "replay"}  # one reading of the species, normalised
    assert head[3:5] == ["acer [95% CI]", "bpcer20 [95% CI]"] and "ap [95% CI]" in head
    assert "acer [95% CI]" in (tmp_path / "report.md").read_text()
    from sovtp.report.compare import compare_markdown, compare_rows

    assert "acer [95% CI]" in compare_markdown(compare_rows([tmp_path]))  # and `sovtp compare`


def test_under_deid_the_landmarks_rung_is_a_tie_by_construction(tmp_path):
    """--deid draws no landmarks over blurred faces, so ladder/landmarks sends what
    ladder/bbox_id sends: its step is no finding, for a model that sees images too."""
    n = 40
    same = pattern(n, 10)
    right = {"ladder/bbox_id": same, "ladder/landmarks": same, "ladder/au_text": pattern(n, 30)}
    run = make_run(tmp_path / "deid", right, SEEING)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "deid": True}))
    ab = write_report(run, n_boot=100)["ablation"]
    (lm, au) = ab["steps"]
    assert not lm["testable"] and au["testable"]
    assert ab["same_under_deid"] == [["ladder/bbox_id", "ladder/landmarks"]]
    (note,) = ablation_notes(run)
    assert "ladder/bbox_id → ladder/landmarks" in note and "--deid" in note
    # without --deid the landmarks are drawn: the same rows are a finding
    plain = write_report(make_run(tmp_path / "plain", right, SEEING), n_boot=100)["ablation"]
    assert all(s["testable"] for s in plain["steps"]) and plain["notes"] == []


def test_under_deid_a_grids_landmarks_switch_is_no_finding(tmp_path):
    """A grid with a landmarks switch, run under --deid: that switch sends nothing new (no
    landmarks over blurred faces), so its effect and its interactions are ties by construction;
    the other switches stay findings.  Without --deid the same rows are all findings."""
    run = tmp_path / "g"
    paths = grid("sovtp/full", ["landmarks", "boxes"], run / "prompts")
    info = json.loads((run / "prompts" / "grid.json").read_text())
    right = {v: pattern(40, 10 + 10 * lv["boxes"]) for v, lv in info["variants"].items()}
    make_run(run, right, SEEING, variants=paths)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "deid": True}))
    ab = build_report(run, n_boot=50)["ablation"]
    assert {e["factor"]: e["testable"] for e in ab["effects"]} == {
        "landmarks": False,
        "boxes": True,
    }
    assert [i["testable"] for i in ab["interactions"]] == [False]
    assert ab["inert_under_deid"] == ["landmarks"]
    assert any("landmarks switch" in n and "--deid" in n for n in ab["notes"])
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "deid": False}))
    ab = build_report(run, n_boot=50)["ablation"]
    assert all(e["testable"] for e in ab["effects"] + ab["interactions"]) and not ab["notes"]
