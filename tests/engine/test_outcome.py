"""How a run ended (sovtp.engine.outcome): counts, the exit code and the likely cause, on rows
and answers shaped as bench and spot write them."""

from __future__ import annotations

from sovtp.engine.outcome import outcome_of, run_outcome


def _row(**kw):
    return {"key": kw.pop("key", "k"), **kw}


def test_exit_codes_follow_valid_invalid_and_error_rows():
    ok, bad, err = _row(parse_status="ok"), _row(parse_status="invalid"), _row(error="boom")
    assert outcome_of([ok, ok]).exit_code == 0
    assert outcome_of([ok, bad]).exit_code == 3 and outcome_of([ok, err]).exit_code == 3
    assert outcome_of([bad, err]).exit_code == 4 and outcome_of([bad]).exit_code == 4
    assert outcome_of([ok], interrupted=True).exit_code == 130
    o = outcome_of([ok, bad, err])
    assert (o.rows, o.valid, o.invalid, o.errors) == (3, 1, 1, 1) and o.hint is None


def test_the_cause_comes_from_what_failed():
    refused = _row(error="ConnectionError: connection refused")
    assert "--base-url" in outcome_of([refused, refused]).hint
    vllm = _row(error="HTTP 422: extra field structured_outputs not permitted")
    assert "--server openai" in outcome_of([vllm]).hint
    cut = {"response": {"text": '{"label": "hap', "finish_reason": "length"}}
    assert "--max-tokens" in outcome_of([_row(parse_status="invalid")], [cut]).hint


def test_answers_that_came_back_are_the_cause_when_not_every_request_failed():
    """One connection error and one prose answer: the server did answer — the hint is about the
    prose (it said "the server did not answer: check --base-url")."""
    rows = [_row(key="a", error="ConnectionError: refused"), _row(key="b", parse_status="invalid")]
    prose = {"response": {"text": "She seems calm, I think.", "finish_reason": "stop"}}
    h = outcome_of(rows, [{"error": "ConnectionError: refused"}, prose]).hint
    assert "--no-structured" in h and "1 of 2 rows are errors" in h and "did not answer" not in h


def test_spot_answers_are_read_window_by_window():
    row = _row(parse_status="invalid")
    spot = {"windows": [{"answer": "somewhere in the middle", "finish_reason": "stop"}]}
    assert "--no-structured" in outcome_of([row], [spot]).hint


def test_an_empty_run_says_why_it_has_no_answer(tmp_path):
    o = run_outcome(tmp_path)
    assert o.exit_code == 4 and "no sample was selected" in o.hint
