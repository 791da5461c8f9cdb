"""Metrics against scikit-learn, and against a real vision LLM's released predictions."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support, recall_score

from sovtp.scoring.external import external_rows
from sovtp.scoring.metrics import compute, encode
from sovtp.scoring.stats import bootstrap_war_uar, mcnemar
from sovtp.scoring.summary import summarise


def _gpt4v_dir() -> Path:
    """The released predictions (never committed): $SOVTP_GPT4V_DIR, else a `shared/` folder beside
    the checkout or above it, else this workplace's /work/shared."""
    env = os.environ.get("SOVTP_GPT4V_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in [*here.parents, Path("/work")]:
        cand = base / "shared" / "data" / "gpt4v-emotion"
        if cand.is_dir():
            return cand
    return Path("/nonexistent")


GPT4V = _gpt4v_dir()
PRED_FILES = sorted(GPT4V.glob("*/label-gpt4v*.csv")) if GPT4V.exists() else []
# the one spelling difference between gold and answers in these files (mer2023 gold "surprise",
# answers "surprised"); written out here so the reference below shares no code with sovtp
SPELLING = {"surprised": "surprise"}


def _reference(pred_file: Path) -> tuple[float, float]:
    """WAR/UAR computed independently: plain csv + scikit-learn.  Samples are joined on file
    stem (the label list says '1/ab.JPG', the predictions 'ab.jpg'); a gold sample without an
    answer, or whose top-1 answer is outside the gold vocabulary, is wrong."""

    def key(name: str) -> str:
        base = os.path.basename(name)
        stem, ext = os.path.splitext(base)
        return (stem if ext.lower() in {".jpg", ".jpeg", ".png", ".avi", ".mp4"} else base).lower()

    gold = {
        key(r["name"]): r["gt"].strip().lower()
        for r in csv.DictReader((pred_file.parent / "label.csv").read_text().splitlines())
    }
    vocab = set(gold.values())
    pred = {}
    for r in csv.DictReader(pred_file.read_text().splitlines()):
        top = (r["gpt4v"] or "").split(",")[0].strip().lower()
        if top not in vocab:
            top = SPELLING.get(top, top)
        pred[key(r["name"])] = top if top in vocab else "<invalid>"
    y_true = [gold[k] for k in gold]
    y_pred = [pred.get(k, "<invalid>") for k in gold]
    war = accuracy_score(y_true, y_pred)
    uar = recall_score(y_true, y_pred, labels=sorted(vocab), average="macro", zero_division=0)
    return war, uar


@pytest.mark.skipif(not PRED_FILES, reason="../shared/data/gpt4v-emotion is not on this machine")
@pytest.mark.parametrize("pred_file", PRED_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_gpt4v_released_predictions_match_sklearn(pred_file):
    rows, ls = external_rows(pred_file, gold_file=pred_file.parent / "label.csv")
    m = compute([r["gold"] for r in rows], [r["label"] for r in rows], ls.labels)
    war, uar = _reference(pred_file)
    n_gold = len((pred_file.parent / "label.csv").read_text().splitlines()) - 1
    assert m.n == n_gold  # every gold sample is scored, answered or not
    assert m.war == pytest.approx(war, abs=1e-12)
    assert m.uar == pytest.approx(uar, abs=1e-12)


@pytest.mark.skipif(not PRED_FILES, reason="../shared/data/gpt4v-emotion is not on this machine")
def test_score_cli_on_released_dfew_predictions():
    d = GPT4V / "dfew"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sovtp.cli",
            "score",
            str(d / "label-gpt4v.csv"),
            "--gold",
            str(d / "label.csv"),
            "--json",
            "--n-boot",
            "200",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    s = json.loads(out.stdout)["systems"][0]
    war, uar = _reference(d / "label-gpt4v.csv")
    assert s["metrics"]["war"] == pytest.approx(war) and s["metrics"]["uar"] == pytest.approx(uar)
    assert s["ci"]["war"]["low"] < war < s["ci"]["war"]["high"]
    assert s["n"] == 2341 and s["parse"]["invalid"] == 10  # 4 unanswered + 6 outside the set


def test_metrics_equal_sklearn_with_invalid_answers():
    rng = np.random.default_rng(3)
    labels = ["angry", "happy", "neutral", "sad"]
    gold = list(rng.choice(labels, 300, p=[0.1, 0.4, 0.3, 0.2]))
    pred: list[str | None] = [g if rng.random() < 0.5 else str(rng.choice(labels)) for g in gold]
    for i in rng.choice(300, 20, replace=False):
        pred[i] = None  # invalid answers stay in the denominator
    m = compute(gold, pred, labels)
    sk_pred = [p if p is not None else "<invalid>" for p in pred]
    assert m.war == pytest.approx(accuracy_score(gold, sk_pred))
    assert m.uar == pytest.approx(recall_score(gold, sk_pred, labels=labels, average="macro"))
    assert m.macro_f1 == pytest.approx(f1_score(gold, sk_pred, labels=labels, average="macro"))
    assert m.weighted_f1 == pytest.approx(
        f1_score(gold, sk_pred, labels=labels, average="weighted")
    )
    p, r, f, s = precision_recall_fscore_support(gold, sk_pred, labels=labels, zero_division=0)
    for i, lab in enumerate(labels):
        pc = m.per_class[lab]
        assert (pc["precision"], pc["recall"], pc["f1"], pc["support"]) == pytest.approx(
            (p[i], r[i], f[i], s[i])
        )
    assert m.invalid_rate == pytest.approx(20 / 300)
    assert np.asarray(m.confusion["matrix"])[:, -1].sum() == 20


def test_uar_ignores_classes_absent_from_gold():
    m = compute(["happy", "happy", "sad"], ["happy", "sad", "sad"], ["happy", "sad", "fear"])
    assert m.uar == pytest.approx((0.5 + 1.0) / 2)


def test_bootstrap_ci_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 4, 400)
    p = np.where(rng.random(400) < 0.6, g, rng.integers(0, 5, 400))
    a = bootstrap_war_uar(g, p, 4, n_boot=300, seed=1)
    b = bootstrap_war_uar(g, p, 4, n_boot=300, seed=1)
    assert a["war"].to_dict() == b["war"].to_dict()
    for k in ("war", "uar"):
        assert a[k].low < a[k].value < a[k].high
        assert a[k].high - a[k].low < 0.15  # 400 samples: a few points either side


def test_mcnemar_exact_and_chi2():
    from scipy import stats

    a = np.array([1] * 10 + [0] * 2 + [1] * 50, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 50, bool)
    r = mcnemar(a, b)
    assert (r.b, r.c, r.method) == (10, 2, "exact")
    assert r.p_value == pytest.approx(stats.binomtest(2, 12, 0.5).pvalue)
    a = np.array([1] * 30 + [0] * 10, bool)
    r = mcnemar(a, ~a)
    assert r.method == "chi2-cc" and r.statistic == pytest.approx(19**2 / 40)
    assert r.p_value == pytest.approx(0.002663, abs=1e-5)
    assert mcnemar(a, a).p_value == 1.0


def test_external_csv_ranked_lists_spellings_and_missing(tmp_path):
    gold = tmp_path / "label.csv"
    gold.write_text("name,gt\nclips/a.mp4,Happy\nb,Sad\nc,Neutral\nd,Sad\n")
    preds = tmp_path / "preds.csv"
    preds.write_text('name,prediction\na,"happiness,sadness"\nb,"Happy,Sad"\nc,bored\n')
    rows, ls = external_rows(preds, gold_file=gold)
    by = {r["sample_id"]: r for r in rows}
    assert ls.labels == ["happy", "neutral", "sad"]
    assert by["clips/a.mp4"]["label"] == "happy" and by["clips/a.mp4"]["ranking"] == [
        "happy",
        "sad",
    ]
    assert by["b"]["label"] == "happy"
    assert by["c"]["label"] is None  # outside the label set: invalid, never guessed
    assert by["d"]["label"] is None and by["d"]["error"] == "no prediction"
    s = summarise(rows, ls.labels, n_boot=50, tier_by=None)["systems"][0]
    assert s["n"] == 4 and s["metrics"]["war"] == 0.25 and s["metrics"]["invalid_rate"] == 0.5
    answered, _ = external_rows(preds, gold_file=gold, unanswered="drop")
    assert [r["sample_id"] for r in answered] == ["clips/a.mp4", "b", "c"]  # c stays: invalid


def test_summary_tiers_per_face_and_ablation_comparison():
    rows = []
    for i in range(40):
        gold = "happy" if i % 2 else "sad"
        rows.append(
            {
                "sample_id": f"s{i}",
                "system": "m",
                "variant": "plain",
                "gold": gold,
                "label": "happy",
                "n_faces": 1 + i % 3,
                "face_id": 1 + i % 2,
            }
        )
        rows.append(
            {
                "sample_id": f"s{i}",
                "system": "m",
                "variant": "full",
                "gold": gold,
                "label": gold,
                "n_faces": 1 + i % 3,
                "face_id": 1 + i % 2,
            }
        )
    s = summarise(rows, ["happy", "sad"], n_boot=200, order=["plain", "full"])
    assert [e["variant"] for e in s["systems"]] == ["plain", "full"]
    plain, full = s["systems"]
    assert set(plain["tiers"]) == {"1 face", "2 faces", "3+ faces"}
    assert plain["per_face"]["face 1"]["war"] == 0.0 and plain["per_face"]["face 2"]["war"] == 1.0
    (c,) = s["comparisons"]
    assert c["a"]["variant"] == "plain" and c["b"]["variant"] == "full"
    assert c["delta_war"]["value"] == pytest.approx(0.5) and c["mcnemar"]["p_value"] < 1e-4


def test_summary_follows_the_declared_metrics_and_keeps_its_shape():
    rng = np.random.default_rng(7)
    labels = ["happy", "sad", "neutral"]
    rows = [
        {
            "sample_id": f"s{i}",
            "system": "m",
            "variant": v,
            "gold": str(rng.choice(labels)),
            "label": str(rng.choice(labels)),
        }
        for v in ("a", "b")
        for i in range(60)
    ]
    s = summarise(
        rows, labels, n_boot=200, tier_by=None, metrics=["macro_f1", "war"], headline=["macro_f1"]
    )
    e = s["systems"][0]
    # the report's keys stay: WAR/UAR CIs and the label metrics, plus every declared metric's CI
    assert set(e["metrics"]) >= {"war", "uar", "macro_f1", "weighted_f1", "invalid_rate"}
    assert set(e["ci"]) == {"war", "uar", "macro_f1"}
    assert e["ci"]["macro_f1"]["low"] <= e["metrics"]["macro_f1"] <= e["ci"]["macro_f1"]["high"]
    g, p = encode([r["gold"] for r in rows[:60]], [r["label"] for r in rows[:60]], labels)
    ref = bootstrap_war_uar(g, p, 3, n_boot=200, seed=0)  # same draws, same intervals
    assert e["ci"]["war"] == ref["war"].to_dict() and e["ci"]["uar"] == ref["uar"].to_dict()
    (c,) = s["comparisons"]
    assert set(c) >= {"delta_war", "mcnemar", "delta"} and list(c["delta"]) == ["macro_f1"]
    assert s["task"] == "single_label" and s["headline"] == ["macro_f1"]


def test_a_binary_answers_confidence_is_read_like_bah_and_regression_read_it():
    """One reading of an answer's confidence for every task: a percentage is a probability
    (binary runs read "85" as 85 while BAH and regression read 0.85), clamped to [0, 1]; a label
    outside the two classes is no score."""
    import math

    from sovtp.scoring.bah import answer_score
    from sovtp.scoring.summary import positive_score, predicted_value

    for conf, want in ((0.85, 0.85), (85, 0.85), (None, 1.0), (140, 1.0)):
        r = {"label": "live", "confidence": conf}
        assert positive_score(r, "live", "attack") == pytest.approx(want)
        assert positive_score({**r, "label": "attack"}, "live", "attack") == pytest.approx(1 - want)
        hi = {"label": "high", "confidence": conf}
        assert predicted_value(hi, "valence", True, -1.0, 1.0) == pytest.approx(2 * want - 1)
    bah = {"label": "ambivalence", "confidence": 85}
    assert answer_score(bah) == pytest.approx(positive_score(bah, "ambivalence", "none"))
    assert math.isnan(positive_score({"label": "maybe", "confidence": 0.9}, "live", "attack"))
