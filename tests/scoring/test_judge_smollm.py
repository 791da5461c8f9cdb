"""The reasoning judge (EMER's clue and label overlap) with a real model, offline:
SmolLM2-135M-Instruct in-process (``tests/smollm.py``).

Its verdicts are weak; what a user relies on is checked: each score is the one the model wrote
(parsed from its text, in 0..scale), a judgement without one is counted invalid, and asking the
same question again is reported as (in)consistency rather than hidden.
"""

from __future__ import annotations

import json

import pytest

from sovtp.scoring.reasoning import _judge_score, judge_queries, score_rows
from tests.smollm import smollm_backend

pytestmark = pytest.mark.slow

ROWS = [
    {
        "key": "k0",
        "system": "smol",
        "variant": "v",
        "rationale": "She smiles broadly (AU6, AU12); her cheeks are raised: happy.",
        "description": "The woman smiles with raised cheeks (AU6 + AU12); she is happy.",
    }
]
PROMPTS = {"clue_overlap": "clue_overlap.j2", "label_overlap": "label_overlap.j2"}


class _Recording:
    """The real backend, keeping what it answered so the test can read the model's words."""

    def __init__(self, be):
        self.be, self.name, self.model, self.capabilities = be, be.name, be.model, be.capabilities
        self.answers: list = []

    def generate(self, queries, config=None, progress=None):
        rs = self.be.generate(queries, config, progress)
        self.answers += rs
        return rs


def test_the_judge_scores_an_answer_from_what_the_model_wrote(monkeypatch, tmp_path):
    be = _Recording(smollm_backend())  # loaded (from the model cache) before the cache moves
    monkeypatch.setenv("SOVTP_CACHE_DIR", str(tmp_path))  # no verdict from an earlier run
    res = score_rows(ROWS, "llm", be, PROMPTS, scale=10)
    assert res["method"] == "llm" and len(be.answers) == 2
    # constrained to {"score": 0..10}: every verdict is one, and it is the score reported
    for r in be.answers:
        assert r.error is None and r.raw["constraint"] == "json"
        assert set(json.loads(r.text)) == {"score"}
    by_name = {r.query_id.rpartition("::")[2]: _judge_score(r.text) for r in be.answers}
    assert res["rows"]["k0"] == by_name and all(0 <= v <= 10 for v in by_name.values())
    assert res["invalid"] == {"smol · v": 0} and res["judged"] == {"smol · v": 2}


def test_unconstrained_judgements_without_a_score_are_counted_invalid(monkeypatch, tmp_path):
    be = _Recording(smollm_backend())
    monkeypatch.setenv("SOVTP_CACHE_DIR", str(tmp_path))
    res = score_rows(ROWS, "llm", be, PROMPTS, scale=10, structured=False)
    assert all(r.raw["constraint"] is None for r in be.answers)
    parsed = [_judge_score(r.text) for r in be.answers]
    assert res["invalid"]["smol · v"] == sum(v is None for v in parsed)
    assert res["judged"]["smol · v"] == 2


def test_repeated_judging_of_one_answer_reports_its_consistency(monkeypatch, tmp_path):
    be = _Recording(smollm_backend())
    monkeypatch.setenv("SOVTP_CACHE_DIR", str(tmp_path))
    res = score_rows(ROWS, "llm", be, PROMPTS, scale=10, repeats=3)
    assert len(be.answers) == 6  # 2 questions x 3 seeds, sampled
    scores: dict[str, list[float]] = {}
    for r in be.answers:
        scores.setdefault(r.query_id, []).append(_judge_score(r.text))
    spreads = [max(v) - min(v) for v in scores.values()]
    c = res["consistency"]
    assert c["repeats"] == 3 and c["questions"] == 2
    assert c["mean_spread"] == round(sum(spreads) / 2, 3)
    assert c["all_agree"] == sum(s == 0 for s in spreads) / 2
    # the row's score is the median of its three judgements
    for qid, v in scores.items():
        assert res["rows"]["k0"][qid.rpartition("::")[2]] == sorted(v)[1]
    # the questions carry the judge's schema, the one the grammar enforced
    (q, _) = list(judge_queries(ROWS, PROMPTS, 10))
    assert q.meta["json_schema"]["properties"]["score"]["maximum"] == 10
