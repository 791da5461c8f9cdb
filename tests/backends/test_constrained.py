"""The in-process grammar (xgrammar, vLLM's engine) built from sovtp's own contracts, checked
with xgrammar's matcher on strings — no model needed, so these run in the quick lane.  The
real model under these grammars: ``tests/backends/test_smollm.py``."""

from __future__ import annotations

import json

import pytest

from sovtp.backends.constrained import choice_ebnf, within_budget
from sovtp.contracts import STAGE_KEYS, staged_schema

xgr = pytest.importorskip("xgrammar")


def _compiler():
    # a byte-level vocabulary: every string is spellable, as with a real BPE tokenizer
    vocab = [bytes([b]) for b in range(256)] + [b"</s>"]
    info = xgr.TokenizerInfo(vocab, stop_token_ids=[256])
    return xgr.GrammarCompiler(info)


def _accepts(grammar, text: str) -> bool:
    m = xgr.GrammarMatcher(grammar)
    return m.accept_string(text) and m.is_terminated() is False and m.accept_token(256)


def test_a_choice_grammar_accepts_exactly_the_labels_even_with_quotes():
    labels = ["happy", "sad", 'say "no"', "fear\\anger"]
    g = _compiler().compile_grammar(choice_ebnf(labels))
    for lab in labels:
        assert _accepts(g, lab), lab
    for other in ("hap", "happy!", "Sad", "", "neutral"):
        assert not _accepts(g, other), other


def test_the_staged_schema_keeps_its_order_and_enum_and_fits_the_token_budget():
    labels = ["happy", "sad"]
    b = within_budget(staged_schema(labels), max_tokens=160)
    assert list(b["properties"]) == [*STAGE_KEYS, "label", "confidence"]
    assert b["properties"]["label"] == {"type": "string", "enum": labels}  # untouched
    caps = {b["properties"][k]["maxLength"] for k in STAGE_KEYS}
    assert caps == {(160 - 48) * 3 // 5}  # an equal share of the budget, 3 chars a token
    g = _compiler().compile_json_schema(json.dumps(b), any_whitespace=False)

    def answer(stage: str, label: str = "happy") -> str:
        obj = {k: stage for k in STAGE_KEYS} | {"label": label, "confidence": 0.5}
        return json.dumps(obj)

    cap = caps.pop()
    assert _accepts(g, answer("x" * cap))
    assert not _accepts(g, answer("x" * (cap + 1)))  # a stage may not eat the budget
    assert not _accepts(g, answer("x", label="angry"))  # outside the label set
    # the staged order: a label before the stages is refused
    assert not _accepts(g, json.dumps({"label": "happy"} | {k: "x" for k in STAGE_KEYS}))
    # a raised --max-tokens raises the caps; the schema given is never changed in place
    assert within_budget(staged_schema(labels), 1024)["properties"]["scene"]["maxLength"] > cap
    assert "maxLength" not in staged_schema(labels)["properties"]["scene"]
