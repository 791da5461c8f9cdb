"""Answer parsing: structured first, repairs marked, nothing guessed."""

from __future__ import annotations

import pytest

from sovtp.scoring.parse import parse_answer

CASES = [
    ('{"label": "happy", "confidence": 0.8, "rationale": "AU12"}', "happy", "ok"),
    ('Sure!\n```json\n{"label": "Joy", "confidence": 0.7}\n```', "happy", "repaired"),
    ('My analysis: {"emotion": "anger", "rationale": "brows down"} done', "angry", "repaired"),
    ("Maybe sad at first.\nFinal answer: **Anger**", "angry", "repaired"),
    ("happiness", "happy", "repaired"),
    ("happy", "happy", "ok"),
    ("The person looks joyful.", "happy", "repaired"),
    ("Surprised", "surprise", "repaired"),
    ("sad or happy?", None, "invalid"),
    ('{"label": "bored"}', None, "invalid"),
    ("I cannot tell.", None, "invalid"),
    ("", None, "invalid"),
]


@pytest.mark.parametrize("text,label,status", CASES)
def test_parse(text, label, status):
    p = parse_answer(text, "basic7")
    assert (p.label, p.parse_status) == (label, status)


def test_ranked_answer_gives_top1_and_ranking():
    p = parse_answer("Happy, Surprise, Neutral", "basic7")
    assert p.label == "happy" and p.ranking == ["happy", "surprise", "neutral"]
    p = parse_answer("1. fearful\n2. sad", "basic7")
    assert p.ranking == ["fear", "sad"]


def test_mafw_labels_and_custom_list():
    assert parse_answer("She seems helpless.", "mafw11").label == "helplessness"
    assert parse_answer('{"label": "pain"}', "pain,relief").label == "pain"


def test_a_label_list_keeps_its_shipped_sets_synonyms():
    from sovtp.labels import load_label_set

    labels = list(load_label_set("basic7").labels)  # what a Query carries
    assert parse_answer("She looks content.", labels).label == "happy"  # a basic7.yaml synonym
