"""Soft labels (issue 20, item 4): DFEW's annotator votes stay with each sample into its result
rows, and the summary reports calibration and agreement with the votes."""

from __future__ import annotations

import pytest

from sovtp.data.sources import open_dataset
from sovtp.scoring.summary import summarise
from tests.data.test_data_releases import _dfew, xlsx

LABELS = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


def row(sid, gold, label, conf, votes, status="ok"):
    """A prediction row as the runner writes it: the sample's facts (``meta``) beside the
    answer."""
    return {
        "sample_id": sid,
        "system": "vlm",
        "variant": "v",
        "gold": gold,
        "label": label,
        "confidence": conf,
        "parse_status": status,
        "meta": {"votes": votes},
    }


def test_vote_agreement_and_calibration_by_hand():
    """Worked by hand: answer shares 0.8, 0.4, 0.5 and 0 (invalid) → agreement 0.425; the
    plurality would get 0.8, 0.6, 0.5, 1.0 → 0.725.  Confidences 0.9 and 0.95 fall in the top
    bin (right once: |0.5 − 0.925| × 2), 0.7 in its own (wrong: 0.7) → ECE 1.55 / 3; against the
    vote shares |0.65 − 0.925| × 2 + |0.4 − 0.7| → 0.85 / 3."""
    rows = [
        row("1", "happy", "happy", 0.9, {"happy": 8, "sad": 2}),
        row("2", "sad", "neutral", 0.7, {"sad": 6, "neutral": 4}),
        row("3", "fear", "surprise", 0.95, {"fear": 5, "surprise": 5}),
        row("4", "angry", None, None, {"angry": 10}, status="invalid"),
    ]
    (entry,) = summarise(rows, LABELS, n_boot=10)["systems"]
    soft = entry["soft_labels"]
    assert soft["n_votes"] == 4 and soft["n_confidence"] == 3
    assert soft["vote_agreement"] == pytest.approx(0.425)
    assert soft["vote_ceiling"] == pytest.approx(0.725)
    assert soft["ece"] == pytest.approx(1.55 / 3)
    assert soft["ece_votes"] == pytest.approx(0.85 / 3)


def test_a_perfectly_calibrated_system_has_zero_ece_and_no_votes_no_section():
    rows = [row(str(i), "happy", "happy" if i < 8 else "sad", 0.8, None) for i in range(10)]
    for r in rows:
        r["meta"] = {}
    (entry,) = summarise(rows, LABELS, n_boot=10)["systems"]
    assert entry["soft_labels"]["ece"] == pytest.approx(0.0, abs=1e-12)
    assert entry["soft_labels"]["vote_agreement"] is None
    for r in rows:
        r["confidence"] = None
    (entry,) = summarise(rows, LABELS, n_boot=10)["systems"]
    assert "soft_labels" not in entry


def test_dfew_votes_reach_the_rows_and_the_summary(tmp_path):
    """From annotation.xlsx through ``Sample.row()`` (what every result row carries) to the
    summary: a system that answers the gold label gets the gold's vote share."""
    root = _dfew(tmp_path / "DFEW")
    head = ["order", "1happy", "2sad", "3neutral", "4angry", "5surprise", "6disgust", "7fear"]
    xlsx(
        root / "Annotation/annotation.xlsx",
        [("Sheet1", [head, [1, 6, 0, 4, 0, 0, 0, 0], [2, 0, 1, 0, 0, 2, 0, 7]])],
    )
    rows = [
        s.row()
        | {
            "system": "oracle",
            "variant": "v",
            "label": s.label,
            "parse_status": "ok",
            "confidence": 1.0,
        }
        for s in open_dataset(f"dfew:{root}", fold=2)
    ]
    assert rows[0]["meta"]["votes"]["neutral"] == 4
    soft = summarise(rows, LABELS, n_boot=10)["systems"][0]["soft_labels"]
    assert soft["vote_agreement"] == pytest.approx((6 / 10 + 7 / 10) / 2)
    assert soft["ece"] == pytest.approx(0.0) and soft["ece_votes"] == pytest.approx(0.35)
