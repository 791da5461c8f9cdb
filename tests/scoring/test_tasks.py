"""Task types: binary (AP, ROC-AUC, EER, PAD error rates) and interval spotting, against
scikit-learn and hand-computed values; the registry's bootstrap; evaluator declarations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score, roc_curve

from sovtp.errors import SovtpError
from sovtp.scoring import registry as R
from sovtp.scoring import tasks as T
from sovtp.scoring.external_tasks import binary_rows, interval_rows
from sovtp.scoring.summary import summarise


def _random_binary(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.35
    s = np.round(rng.normal(y * 1.2, 1.0), 1)  # rounded: ties on purpose
    return y.astype(int), s


def test_ap_and_auc_equal_sklearn_with_ties():
    y, s = _random_binary()
    assert T.average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert T.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_missing_scores_rank_as_wrong_as_possible():
    y, s = _random_binary(seed=1)
    s = s.astype(float)
    miss = np.zeros(len(s), bool)
    miss[::7] = True
    s_nan = np.where(miss, np.nan, s)
    ref = np.where(miss & (y == 1), -1e9, np.where(miss, 1e9, s))  # independent worst case
    assert T.average_precision(y, s_nan) == pytest.approx(average_precision_score(y, ref))
    assert T.roc_auc(y, s_nan) == pytest.approx(roc_auc_score(y, ref))
    assert T.roc_auc(y, s_nan) < T.roc_auc(y, s)  # a missing answer can only cost


def test_eer_against_sklearn_roc_and_by_hand():
    rng = np.random.default_rng(2)
    y = (rng.random(400) < 0.5).astype(int)
    s = rng.normal(y * 1.5, 1.0)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    fnr = 1 - tpr
    i = np.argmin(np.abs(fnr - fpr))
    assert T.eer(y, s)[0] == pytest.approx((fnr[i] + fpr[i]) / 2)
    # by hand: bona fide 0.1..0.4, attacks 0.35..0.7 -> at 0.4 one attack missed (1/4) and one
    # bona fide called attack (1/4)
    y2 = [0, 0, 0, 0, 1, 1, 1, 1]
    s2 = [0.1, 0.2, 0.3, 0.4, 0.35, 0.5, 0.6, 0.7]
    assert T.eer(y2, s2) == (pytest.approx(0.25), pytest.approx(0.4))


# bona fide (0) and two attack species (1): hand-computed below
PAD_Y = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
PAD_S = [0.1, 0.2, 0.3, 0.6, 0.9, 0.4, 0.45, 0.7, 0.8, 0.95]
PAD_T = [None] * 4 + ["print"] * 3 + ["replay"] * 3


def test_pad_rates_by_hand():
    r = T.pad_rates(PAD_Y, PAD_S, PAD_T, threshold=0.55)
    # print: 0.4 and 0.45 called bona fide (2/3); replay: none; bona fide 0.6 called attack (1/4)
    assert r.apcer_per_type == {"print": pytest.approx(2 / 3), "replay": 0.0}
    assert r.apcer == pytest.approx(2 / 3) and r.apcer_all == pytest.approx(1 / 3)
    assert r.bpcer == pytest.approx(1 / 4)
    assert r.acer == pytest.approx((2 / 3 + 1 / 4) / 2)
    assert r.hter == pytest.approx((1 / 3 + 1 / 4) / 2)
    # APCER <= 5 % for every species needs t <= 0.4; there BPCER is 1/4 (0.6 only)
    assert T.bpcer_at_apcer(PAD_Y, PAD_S, PAD_T, 0.05) == pytest.approx(0.25)
    # at APCER <= 40 % print may lose one (t <= 0.45): BPCER still 1/4; at 70 % t <= 0.7 -> 0
    assert T.bpcer_at_apcer(PAD_Y, PAD_S, PAD_T, 0.7) == 0.0


def test_summary_fixes_the_threshold_on_dev_and_applies_it_to_test():
    dev_y = [0, 0, 0, 0, 1, 1, 1, 1]
    dev_s = [0.1, 0.2, 0.3, 0.55, 0.35, 0.6, 0.7, 0.8]  # EER point: threshold 0.55
    rows = []
    for i, (y, s) in enumerate(zip(dev_y, dev_s, strict=True)):
        rows.append(
            {
                "sample_id": f"d{i}",
                "system": "m",
                "gold": ["bona_fide", "attack"][y],
                "label": None,
                "scores": {"attack": s},
                "split": "dev",
            }
        )
    for i, (y, s) in enumerate(zip(dev_y, [0.9, 0.9, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0], strict=True)):
        rows.append(
            {
                "sample_id": f"tr{i}",
                "system": "m",
                "gold": ["bona_fide", "attack"][y],
                "label": None,
                "scores": {"attack": s},
                "split": "train",
            }
        )
    for i, (y, s, t) in enumerate(zip(PAD_Y, PAD_S, PAD_T, strict=True)):
        rows.append(
            {
                "sample_id": f"t{i}",
                "system": "m",
                "gold": ["bona_fide", "attack"][y],
                "label": ["bona_fide", "attack"][int(s >= 0.5)],
                "scores": {"attack": s},
                "split": "test",
                "attack_type": t,
            }
        )
    out = summarise(
        rows,
        ["bona_fide", "attack"],
        task="binary",
        n_boot=100,
        tier_by=None,
        metrics=["acer", "hter", "bpcer20", "apcer", "bpcer", "macro_f1"],
        headline=["acer"],
        options={"positive": "attack", "dev_split": "dev", "test_split": "test"},
    )
    (e,) = out["systems"]
    assert e["n"] == 10  # dev rows fix the threshold, they and the train rows are not scored
    assert e["binary"]["threshold"] == pytest.approx(0.55)
    assert e["metrics"]["acer"] == pytest.approx((2 / 3 + 1 / 4) / 2)
    assert e["metrics"]["hter"] == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert e["metrics"]["bpcer20"] == pytest.approx(0.25)
    assert e["binary"]["apcer_per_type"]["print"] == pytest.approx(2 / 3)
    gold = [["bona_fide", "attack"][y] for y in PAD_Y]
    pred = [["bona_fide", "attack"][int(s >= 0.5)] for s in PAD_S]
    assert e["metrics"]["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"))
    assert out["task"] == "binary" and out["headline"] == ["acer"]


def test_binary_rows_from_csv_scored_like_sklearn(tmp_path):
    y, s = _random_binary(120, seed=4)
    names = [f"clip{i}.mp4" for i in range(len(y))]
    gold = tmp_path / "gold.csv"
    gold.write_text(
        "name,gt\n"
        + "".join(f"{n},{'ambivalence' if t else 'none'}\n" for n, t in zip(names, y, strict=True))
    )
    pred = tmp_path / "scores.csv"
    # predictions name samples without the extension; the last one is missing
    pred.write_text("id,score\n" + "".join(f"clip{i},{v}\n" for i, v in enumerate(s[:-1])))
    rows, labs = binary_rows(pred, gold, positive="ambivalence")
    assert labs == ["ambivalence", "none"] and len(rows) == 120
    assert rows[-1]["error"] == "no prediction" and rows[-1]["label"] is None
    out = summarise(
        rows,
        labs,
        task="binary",
        metrics=["ap", "roc_auc", "macro_f1"],
        n_boot=100,
        tier_by=None,
        options={"positive": "ambivalence"},
    )
    m = out["systems"][0]["metrics"]
    worst = -1e9 if y[-1] else 1e9
    ref_s = np.r_[s[:-1], worst]
    assert m["ap"] == pytest.approx(average_precision_score(y, ref_s))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, ref_s))
    g = ["ambivalence" if t else "none" for t in y]
    p = ["ambivalence" if v >= 0.5 else "none" for v in s[:-1]] + ["<invalid>"]
    assert m["macro_f1"] == pytest.approx(
        f1_score(g, p, labels=["ambivalence", "none"], average="macro")
    )


# spotting, by hand (inclusive frames):
# A: gold [10,19] pos, [40,49] neg; spotted [11,20] pos (IoU 9/11: TP), [30,35] (FP),
#    [42,60] neg (IoU 8/21: FP) -> TP 1, FP 2, FN 1
# B: gold [5,14] surprise; spotted [5,14] pos (IoU 1: TP), [6,13] surprise (IoU .8, but the gold
#    is taken: FP) -> TP 1, FP 1
# C: nothing; D: gold [0,9] neg, nothing spotted -> FN 1.   Sum: TP 2, FP 3, FN 2
VIDEOS = {
    "A": (
        [(11, 20, "positive"), (30, 35, None), (42, 60, "negative")],
        [(10, 19, "positive"), (40, 49, "negative")],
    ),
    "B": ([(5, 14, "positive"), (6, 13, "surprise")], [(5, 14, "surprise")]),
    "C": ([], []),
    "D": ([], [(0, 9, "negative")]),
}
LABELS4 = ["positive", "negative", "surprise", "others"]


def test_spotting_f1_and_strs_by_hand():
    assert T.iou((11, 20), (10, 19)) == pytest.approx(9 / 11)
    assert T.iou((1.0, 2.0), (1.5, 3.0), frames=False) == pytest.approx(0.5 / 2.0)
    d = R.IntervalData(list(VIDEOS.values()), LABELS4)
    sc = d.scores()
    assert (sc["tp"], sc["fp"], sc["fn"]) == (2, 3, 2)
    p, r = 2 / 5, 2 / 4
    assert sc["spot_f1"] == pytest.approx(2 * p * r / (p + r))
    # recognition on the 2 TPs: (positive->positive), (surprise->positive): F1 2/3 and 0
    assert sc["recog_f1"] == pytest.approx((2 / 3 + 0) / 2)
    assert sc["strs"] == pytest.approx(sc["spot_f1"] * sc["recog_f1"])
    per_video = np.mean([2 / 5 / (1 / 3 + 1 / 2), 2 * 0.5 * 1 / 1.5])
    assert sc["spot_f1"] != pytest.approx(per_video)  # summed, not averaged per video


def test_interval_files_through_summary(tmp_path):
    gold = tmp_path / "gold.csv"
    pred = tmp_path / "spotted.csv"
    g_lines, p_lines = ["video,onset,offset,emotion"], ["video,start,end,label"]
    for v, (ps, gs) in VIDEOS.items():
        g_lines += [f"{v},{a},{b},{c}" for a, b, c in gs] or [f"{v},,,"]
        p_lines += [f"{v}.mp4,{a},{b},{c or ''}" for a, b, c in ps]
    gold.write_text("\n".join(g_lines) + "\n")
    pred.write_text("\n".join(p_lines) + "\n")
    from sovtp.labels import load_label_set

    rows, labs = interval_rows(pred, gold, labels=load_label_set("casme2_4"))
    assert len(rows) == 4
    out = summarise(rows, labs, task="intervals", n_boot=200, tier_by=None)
    e = out["systems"][0]
    assert e["metrics"]["spot_f1"] == pytest.approx(0.8 / 1.8)
    assert e["metrics"]["strs"] == pytest.approx(0.8 / 1.8 / 3)
    assert e["ci"]["spot_f1"]["low"] <= e["metrics"]["spot_f1"] <= e["ci"]["spot_f1"]["high"]
    bad = tmp_path / "bad.csv"
    bad.write_text("video,start,end\nZ,1,2\n")
    with pytest.raises(SovtpError, match="not in the gold file"):
        interval_rows(bad, gold)


def test_bootstrap_covers_each_point_estimate_and_pairs_samples():
    y, s = _random_binary(200, seed=5)
    labs = ["pos", "neg"]
    g = np.where(y == 1, 0, 1)
    p = np.where(s >= 0.6, 0, 1)
    d = R.BinaryData(
        g, p, labs, y.astype(bool), s.astype(float), np.array(["attack"] * len(y), object), 0.6
    )
    names = ["ap", "roc_auc", "eer", "macro_f1", "hter", "bpcer20"]
    ci = R.bootstrap("binary", names, d, n_boot=300, seed=1)
    for n in names:
        assert ci[n].low <= ci[n].value <= ci[n].high, n
        assert n == "bpcer20" or ci[n].high - ci[n].low < 0.3  # a tail rate is volatile
    assert ci["ap"].value == pytest.approx(average_precision_score(y, s))
    # pairing: a system against itself has a zero-width delta interval
    same = R.paired_bootstrap("binary", ["ap", "eer"], d, d, n_boot=50)
    assert all(v.low == v.high == 0 for v in same.values())
    noisy = R.BinaryData(
        g, p, labs, d.y, s + np.random.default_rng(0).normal(0, 2, len(s)), d.types, 0.6
    )
    delta = R.paired_bootstrap("binary", ["roc_auc"], d, noisy, n_boot=300)["roc_auc"]
    assert delta.high < 0  # noise hurts, and the paired CI sees it


def test_registry_names_and_evaluator_declarations():
    assert {"ap", "roc_auc", "eer", "acer", "bpcer20", "bpcer100", "hter"} <= set(
        R.metric_names("binary")
    )
    assert set(R.metric_names("intervals")) >= {"spot_f1", "strs"}
    # regression is a task of the registry itself (no physiology import needed)
    assert {"ccc", "pcc", "rmse", "ccc_valence", "rmse_arousal", "high_low_f1", "war"} <= set(
        R.metric_names("regression")
    )
    with pytest.raises(SovtpError, match="unknown metric 'ap' for task single_label"):
        R.get("single_label", "ap")
    from sovtp.evaluator import EvaluatorSpec, load_evaluator

    bah = load_evaluator("bah")
    assert bah.task == "binary" and bah.scoring()["options"]["positive"] == "ambivalence"
    pad = load_evaluator("pad")
    assert pad.scoring()["options"]["dev_split"] == "dev" and "acer" in pad.metrics
    assert pad.scoring()["options"]["test_split"] == "test"  # `--split all`: test rows scored
    assert load_evaluator("casme2_spot").headline == ["spot_f1", "strs"]
    assert load_evaluator("dfew").metrics == ["war", "uar", "macro_f1", "weighted_f1"]
    with pytest.raises(SovtpError, match="unknown metric"):
        EvaluatorSpec(name="x", label_set="basic7", metrics=["ap"])


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("name: x\nlabel_set: basic7\ntask: classify\n", "task: Input should be"),
        ("name: x\nlabel_set: basic7\nmetrics: [ap]\n", "unknown metric 'ap'"),
        ("name: [x\n", "not valid YAML"),
        ("- x\n", "a mapping"),
        # a misspelt key was dropped without a word and its default scored instead
        ("name: x\nlabel_set: basic7\nmetric: [war]\n", "unknown key 'metric'"),
        ("name: x\nlabel_set: basic7\nheadlin: [war]\n", "unknown key 'headlin'"),
        (
            "name: x\nlabel_set: basic7\ntask_options: {iuo: 0.3}\n",
            "unknown key 'task_options.iuo'",
        ),
        ("name: x\nlabel_set: basic7\nsampling: fps:nan\n", "sampling: Value error, bad sampling"),
    ],
)
def test_a_bad_evaluator_yaml_is_one_line_naming_the_file(tmp_path, capfd, text, why):
    """`--evaluator my.yaml` with a wrong field: the error names the file, on one line."""
    import sys

    from sovtp.cli.app import main

    p = tmp_path / "my_eval.yaml"
    p.write_text(text)
    assert main(["bench", str(tmp_path / "m.csv"), "--evaluator", str(p), "-o", "r"]) == 2
    sys.stderr.flush()
    err = capfd.readouterr().err.strip()
    assert err.startswith(f"sovtp: error: {p.resolve()}: ") and why in err, err
    assert "\n" not in err and "Traceback" not in err


def test_every_shipped_evaluator_loads_under_the_strict_keys():
    """Unknown keys are refused, so each shipped YAML must use only declared ones; the
    ``sampling:`` it declares is read back (None where a YAML leaves it to the run)."""
    from sovtp.evaluator import EvaluatorSpec, available, load_evaluator

    assert all(load_evaluator(name).name for name in available())
    for name in ("affwild2", "casme_ii", "casme_sq", "casme2_spot"):  # micro-expressions: 4
        assert load_evaluator(name).sampling == "uniform:4", name
    assert EvaluatorSpec(name="x", label_set="basic7").sampling is None


def test_tied_scores_follow_the_answers_own_label():
    """A system that gives 0.5/0.5 but names a class (the offline reasoner without evidence)
    is read by its label: the dev EER threshold separates its answers, and a correct bona fide
    answer is never counted as an attack (BPCER was 100 % with a `>=` threshold at 0.5)."""
    rows = []
    for split in ("dev", "test"):
        for i in range(4):
            y = "attack" if i % 2 else "bona_fide"
            rows.append(
                {
                    "sample_id": f"{split}{i}",
                    "system": "m",
                    "gold": y,
                    "label": y,
                    "scores": {"attack": 0.5, "bona_fide": 0.5},
                    "split": split,
                    "attack_type": "print" if i % 2 else None,
                }
            )
    out = summarise(
        rows,
        ["bona_fide", "attack"],
        task="binary",
        n_boot=20,
        tier_by=None,
        metrics=["bpcer", "apcer", "acer"],
        headline=["acer"],
        options={"positive": "attack", "dev_split": "dev", "test_split": "test"},
    )
    m = out["systems"][0]["metrics"]
    assert m["bpcer"] == 0.0 and m["apcer"] == 0.0 and m["acer"] == 0.0
