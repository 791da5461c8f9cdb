"""BAH ambivalence/hesitancy: the release's AVGF1 and AP at video and frame level, invalid
answers never counted as A/H, frame labels from timestamp segments, the definition prompt."""

from __future__ import annotations

import numpy as np
import pytest

from sovtp.data.bah_frames import (
    frame_labels,
    frames_from_segments,
    read_frame_labels,
    read_segments,
    video_label,
)
from sovtp.engine.items import row_key
from sovtp.scoring import bah as B
from sovtp.scoring.summary import summarise


def _release_ap(p1, gt):
    """The BAH release's ``average_precision`` (bah_metrics.py), restated: a 0.001 grid of
    thresholds, precision 0 where nothing is called positive, sklearn's trapezoidal ``auc``."""
    from sklearn.metrics import auc

    prec, rec = [], []
    for th in np.arange(0, 1, 0.001):
        pr = (p1 >= th).astype(float)
        tp = np.sum((pr == 1) & (gt == 1))
        fp = np.sum((pr == 1) & (gt == 0))
        fn = np.sum((pr == 0) & (gt == 1))
        prec.append(tp / (tp + fp) if tp + fp > 0 else 0.0)
        rec.append(tp / (tp + fn))
    return float(auc(np.array(rec), np.array(prec)))


def test_release_ap_matches_the_release_and_differs_from_step_ap():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    for _ in range(5):
        gt = rng.integers(0, 2, 60)
        p1 = np.clip(gt * 0.25 + rng.random(60) * 0.75, 0, 0.9999)
        assert B.release_ap(gt, p1) == pytest.approx(_release_ap(p1, gt), abs=1e-12)
    s = B.scores(
        ["ambivalence" if g else "none" for g in gt],
        ["ambivalence" if p >= 0.5 else "none" for p in p1],
        p1,
    )
    assert s["ap_sklearn"] == pytest.approx(average_precision_score(gt, p1))
    assert s["ap"] != pytest.approx(s["ap_sklearn"])  # two definitions, both reported


def test_an_invalid_answer_is_never_counted_as_ah():
    """The summary's binary scoring and the BAH scores: a non-answer on a video without A/H
    is wrong (a miss of `none`), not a false alarm of A/H; the release's script would map it to
    A/H.  F1 by hand from the confusion, and the invalid rate reported."""
    gold = ["ambivalence", "ambivalence", "none", "none", "none", "ambivalence"]
    pred = ["ambivalence", "none", "none", None, "ambivalence", None]
    rows = [
        {
            "sample_id": f"v{i}",
            "system": "vlm",
            "variant": "",
            "gold": g,
            "label": p,
            "parse_status": "ok" if p else "invalid",
        }
        for i, (g, p) in enumerate(zip(gold, pred, strict=True))
    ]
    summ = summarise(
        rows,
        ["ambivalence", "none"],
        task="binary",
        n_boot=10,
        tier_by=None,
        metrics=["macro_f1", "invalid_rate", "ap", "bah_ap"],
        options={"positive": "ambivalence"},
    )
    (e,) = summ["systems"]
    # A/H: TP 1 (v0), FP 1 (v4), FN 2 (v1 said none, v5 invalid) -> F1 = 2/(2+1+2) = 0.4
    # none: TP 1 (v2), FP 1 (v1), FN 2 (v3 invalid, v4) -> F1 = 0.4; invalid never adds a FP
    assert e["per_class"]["ambivalence"]["f1"] == pytest.approx(0.4)
    assert e["per_class"]["ambivalence"]["precision"] == pytest.approx(0.5)
    assert e["metrics"]["macro_f1"] == pytest.approx(0.4)
    assert e["metrics"]["invalid_rate"] == pytest.approx(2 / 6)
    assert e["binary"]["n_missing_scores"] == 2
    mine = B.video_scores(rows)
    assert mine["avgf1"] == pytest.approx(0.4) and mine["n_invalid"] == 2
    assert mine["f1_pos"] == pytest.approx(0.4) and mine["f1_neg"] == pytest.approx(0.4)
    # the release's mapping (anything but the negative class is A/H) would have scored:
    from sklearn.metrics import f1_score

    as_release = [0 if p == "none" else 1 for p in pred]
    y = [1 if g == "ambivalence" else 0 for g in gold]
    assert f1_score(y, as_release, average="macro") != pytest.approx(mine["avgf1"])
    # an invalid answer's missing score is ranked as wrong as possible in both APs
    assert e["metrics"]["bah_ap"] == pytest.approx(mine["ap"])
    # scores 1,0,0,·,1,·: v3 (no A/H) is ranked above every score, v5 (A/H) below every one
    assert mine["ap"] == pytest.approx(_release_ap(np.array([1, 0, 0, 2, 1, -1]), np.array(y)))
    assert mine["ap"] < B.release_ap(y, [1, 0, 0, 0, 1, 1])  # v5 answered right would gain


def test_hard_score_from_a_label_and_its_confidence():
    assert B.hard_score("ambivalence", 0.8) == pytest.approx(0.8)
    assert B.hard_score("none", 0.8) == pytest.approx(0.2)
    assert B.hard_score("none", 90) == pytest.approx(0.1)  # a percentage
    assert B.hard_score("ambivalence", None) == 1.0 and np.isnan(B.hard_score(None, 0.9))


def test_frame_labels_from_segments_and_per_frame_files(tmp_path):
    root = tmp_path / "BAH"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "segments.csv").write_text(
        "video,start,end\np01/q3.mp4,1.0,2.0\np01/q3.mp4,3.5,3.9\np02/q1.mp4,0,0.2\n"
    )
    segs = read_segments(root / "annotations" / "segments.csv")
    assert segs["p01_q3"] == [(1.0, 2.0), (3.5, 3.9)]
    y = frame_labels(root, "p01_q3", n_frames=40, fps=10)
    assert np.flatnonzero(y).tolist() == [*range(10, 21), *range(35, 40)]
    assert video_label(y) == "ambivalence"
    assert video_label(frame_labels(root, "p09_q2", n_frames=5, fps=10)) == "none"
    (root / "annotations" / "bad.csv").write_text("video,start,end\nv.mp4,3,1\n")
    with pytest.raises(Exception, match="before it starts"):
        read_segments(root / "annotations" / "bad.csv")
    per = tmp_path / "ABAW"
    (per / "annotations" / "frames").mkdir(parents=True)
    (per / "annotations" / "frames" / "v1.txt").write_text("AH\n0\n1\n1\n-1\n0\n")
    assert read_frame_labels(per / "annotations" / "frames" / "v1.txt").tolist() == [0, 1, 1, -1, 0]
    assert frame_labels(per, "v1").tolist() == [0, 1, 1, -1, 0]
    assert frame_labels(per, "absent") is None


def test_frame_level_scores_pool_frames_and_skip_unannotated():
    from sklearn.metrics import f1_score

    g1 = frames_from_segments([(0.5, 1.0)], 20, 10)  # frames 5..10
    g2 = np.array([0] * 8 + [-1, -1])
    v1 = B.frame_predictions("ambivalence", 20, 0.7, intervals=[(0.7, 1.5)], fps=10)
    v2 = B.frame_predictions(None, 10)  # an invalid answer: invalid on every frame
    out = B.frame_scores([(g1, *v1), (g2, *v2)])
    assert out["n"] == 28 and out["n_videos"] == 2 and out["n_invalid"] == 8
    gold = [1 if x else 0 for x in g1] + [0] * 8
    on = [1 if 7 <= i <= 15 else 0 for i in range(20)]
    # invalid frames: gold 0, predicted "neither" -> a third class that is never positive
    pred = on + [2] * 8
    want = f1_score(gold, pred, labels=[0, 1], average=None)
    assert out["f1_pos"] == pytest.approx(want[1]) and out["f1_neg"] == pytest.approx(want[0])
    assert out["avgf1"] == pytest.approx(want.mean())
    with pytest.raises(ValueError, match="gold frames"):
        B.frame_scores([(g1, *B.frame_predictions("none", 3))])


def test_bah_evaluator_and_definition_prompt():
    from sovtp.evaluator import load_evaluator
    from sovtp.prompting.spec import load_spec
    from tests.prompting.test_prompts import fixed_clip

    ev = load_evaluator("bah")
    assert "bah_ap" in ev.metrics and "invalid_rate" in ev.metrics
    assert ev.labels().normalize("Non-Ambivalent") == "none"
    assert ev.labels().normalize("Ambivalent") == "ambivalence"
    from sovtp.prompting.build import build_query

    clip, frames = fixed_clip()
    evil = "Well {{ 7*7 }} maybe, I don't know {% if true %}x{% endif %}"
    q, _ = build_query(clip, frames, load_spec(ev.prompt), subject=1, transcript=evil)
    text = q.text()
    assert evil in text and "49" not in text
    assert "Ambivalence:" in text and "Hesitancy:" in text and "discord" in text
    q2, _ = build_query(clip, frames, load_spec("bah/definition"), subject=1, transcript=None)
    assert "No transcript is available" in q2.text()


# --- the report section: video and frame level from a run folder -------------------------------
BAH_VIDEOS = {  # video: (gold, A/H segments in seconds); 20 frames at 10 fps each
    "p01/q1.mp4": (1, [(0.5, 1.0)]),
    "p01/q2.mp4": (0, []),
    "p02/q1.mp4": (1, [(0.0, 0.3), (1.5, 1.9)]),
    "p02/q2.mp4": (0, []),
}
N_FRAMES, FPS = 20, 10


def _bah_run(tmp_path, data=None):
    """A BAH root built here (tiny real videos, a split file, timestamp segments) and a run
    folder whose predictions were written by hand: one invalid answer, one answer outside the
    label set, one row superseded by a later one."""
    import json

    import yaml

    from sovtp.media.sample import write_video

    root = tmp_path / "BAH"
    (root / "splits").mkdir(parents=True)
    (root / "annotations").mkdir()
    frames = [np.full((32, 32, 3), 8 * i, np.uint8) for i in range(N_FRAMES)]
    split, segs = ["video,label"], ["video,start,end"]
    for rel, (gold, ss) in BAH_VIDEOS.items():
        (root / "videos" / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / "videos" / rel, frames, fps=FPS)
        split.append(f"{rel},{gold}")
        segs += [f"{rel},{a},{b}" for a, b in ss]
    (root / "splits" / "test.csv").write_text("\n".join(split) + "\n")
    (root / "annotations" / "segments.csv").write_text("\n".join(segs) + "\n")
    run = tmp_path / "run"
    run.mkdir()
    cfg = {"data": data or f"bah:{root}", "split": "test", "evaluator": "bah"}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))

    def row(sid, gold, label, conf=None, variant="definition", **kw):
        return {
            "key": row_key(sid, None, "vlm", variant),  # as the runner writes rows
            "sample_id": sid,
            "system": "vlm",
            "variant": variant,
            "gold": gold,
            "label": label,
            "confidence": conf,
            "parse_status": "ok" if label else "invalid",
            **kw,
        }

    rows = [
        row("p01_q1", "ambivalence", "none", 0.9),  # superseded by the next row
        row("p01_q1", "ambivalence", "ambivalence", 0.8),
        row("p01_q2", "none", "none", 0.6),
        row("p02_q1", "ambivalence", None),  # invalid: never A/H
        row("p02_q2", "none", "ambivalence", 0.7),  # a false alarm
        row("p01_q1", "ambivalence", "ambivalence", 0.9, "v2"),
        row("p01_q2", "none", "maybe", 0.9, "v2"),  # outside the label set: invalid too
        row("p02_q1", "ambivalence", "ambivalence", 0.6, "v2"),
        row("p02_q2", "none", "none", 0.8, "v2"),
    ]
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def _independent(answers):
    """Frame labels from the segments by hand; each answer broadcast to its video's frames;
    an invalid answer a third class (never A/H) whose frames rank worst for AP."""
    from sklearn.metrics import average_precision_score, f1_score

    gold, pred, score = [], [], []
    for (_, ss), (lab, conf) in zip(BAH_VIDEOS.values(), answers, strict=True):
        g = [int(any(a <= i / FPS <= b for a, b in ss)) for i in range(N_FRAMES)]
        gold += g
        if lab is None:
            pred += [2] * N_FRAMES
            score += [-1.0 if x else 2.0 for x in g]  # the worst rank for its gold
        else:
            pred += [int(lab == "ambivalence")] * N_FRAMES
            score += [conf if lab == "ambivalence" else 1 - conf] * N_FRAMES
    gold, score = np.array(gold), np.array(score)
    f1 = f1_score(gold, pred, labels=[0, 1], average=None)
    return f1, average_precision_score(gold, score), _release_ap(score, gold), gold, pred


def test_bah_section_scores_frames_like_sklearn_and_never_counts_invalid(tmp_path):
    from sovtp.report.bah import HEADER, bah_section

    sec = bah_section(_bah_run(tmp_path))
    head, rows = sec["table"]
    assert head == HEADER and [r[:2] for r in rows] == [["vlm", "definition"], ["vlm", "v2"]]
    by = {s["variant"]: s for s in sec["scores"]}
    # variant "definition": v1 A/H 0.8, v2 none 0.6, v3 invalid, v4 A/H 0.7 (the later row won)
    f1, ap_sk, ap_rel, gold, pred = _independent(
        [("ambivalence", 0.8), ("none", 0.6), (None, None), ("ambivalence", 0.7)]
    )
    fr = by["definition"]["frame"]
    assert fr["n"] == 4 * N_FRAMES and fr["n_invalid"] == N_FRAMES
    assert fr["f1_pos"] == pytest.approx(f1[1]) and fr["f1_neg"] == pytest.approx(f1[0])
    assert fr["avgf1"] == pytest.approx(f1.mean())
    assert fr["ap_sklearn"] == pytest.approx(ap_sk) and fr["ap"] == pytest.approx(ap_rel)
    # the invalid video's A/H frames are misses, its none frames are not false alarms: counted
    # as A/H (the release's mapping) the positive F1 would differ
    from sklearn.metrics import f1_score

    as_release = [1 if p == 2 else p for p in pred]
    assert f1_score(gold, as_release) != pytest.approx(fr["f1_pos"])
    vid = by["definition"]["video"]
    assert vid["n"] == 4 and vid["invalid_rate"] == pytest.approx(0.25)
    assert vid["avgf1"] == pytest.approx(
        f1_score([1, 0, 1, 0], [1, 0, 2, 1], labels=[0, 1], average="macro")
    )
    # variant v2: "maybe" is outside the label set: invalid, on every frame, never positive
    f1b, ap_skb, ap_relb, *_ = _independent(
        [("ambivalence", 0.9), (None, None), ("ambivalence", 0.6), ("none", 0.8)]
    )
    fr2 = by["v2"]["frame"]
    assert fr2["avgf1"] == pytest.approx(f1b.mean()) and fr2["n_invalid"] == N_FRAMES
    assert fr2["ap_sklearn"] == pytest.approx(ap_skb) and fr2["ap"] == pytest.approx(ap_relb)
    assert rows[1][HEADER.index("invalid rate")] == pytest.approx(0.25)
    assert rows[0][HEADER.index("frame AVGF1")] == pytest.approx(f1.mean(), abs=1e-4)
    # the run's report carries the section (report.md and report.json)
    from sovtp.report.build import write_report

    run = tmp_path / "run"
    rep = write_report(run, n_boot=20)
    assert any(x["name"] == "bah" for x in rep["sections"])
    assert "frame AVGF1" in (run / "report.md").read_text()


def test_bah_section_without_frame_labels_says_so(tmp_path):
    from sovtp.report.bah import HEADER, bah_section

    run = _bah_run(tmp_path, data=str(tmp_path / "elsewhere.csv"))
    sec = bah_section(run)
    (_, rows) = sec["table"]
    assert rows[0][HEADER.index("video AVGF1")] is not None
    assert rows[0][HEADER.index("frame AVGF1")] is None
    assert any("frame labels not reachable" in n for n in sec["notes"])
    # a run that is not BAH has no section
    import json

    (run / "config.yaml").write_text("data: x.csv\nlabels: basic7\n")
    (run / "predictions.jsonl").write_text(
        json.dumps(
            {
                "key": "a|s",
                "sample_id": "a",
                "system": "s",
                "variant": "",
                "gold": "happy",
                "label": "sad",
            }
        )
        + "\n"
    )
    assert bah_section(run) is None
