"""Constrained decoding in-process with xgrammar, the structured-output engine vLLM uses.

The constraint is the one a served query carries (:func:`sovtp.backends.base.query_constraint`:
the output contract's JSON schema, or its choice of labels), compiled for the model's own
tokenizer and applied at every decoding step as a mask over the vocabulary, so the answer
cannot leave the grammar — the in-process counterpart of vLLM's ``structured_outputs``.

``any_whitespace=False``: between JSON tokens the grammar admits no free whitespace.  vLLM
compiles the same schema with free whitespace by default (``disable_any_whitespace`` turns it
off); a small model then fills its token budget with newlines inside the object, which is not a
property of the schema but of the model, and the answer is cut at ``max_tokens``.

A JSON contract's free-text fields have no length cap (``staged``'s stages, ``json``'s
rationale): a served model stops a field when it is done, but a small model decoding greedily
can repeat one phrase inside a string until ``max_tokens`` cuts the object open (SmolLM2-135M
did: 400 tokens of one "scene" string, no label, parse ``invalid``).  In-process, the grammar
therefore also holds the token budget: :func:`within_budget` gives every uncapped string an equal
share of ``max_tokens`` (3 characters per token, below the ~4 English averages) and every
uncapped array at most 8 items, so the object can always be closed inside ``--max-tokens``.  The
schema's fields, order, enums and types are untouched; raising ``--max-tokens`` raises the caps.

Compiled grammars are cached per (kind, value), one compiler per tokenizer; compilation costs
tens of milliseconds, the mask a fraction of a millisecond per token (measured in
``benchmarks/local_generate.py``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from sovtp.errors import BackendError


def _xgr():
    try:
        import xgrammar
    except ImportError as e:
        raise BackendError(
            f"constrained decoding in-process needs xgrammar: pip install 'sovtp[hf]' ({e})"
        ) from e
    return xgrammar


def choice_ebnf(choices: list[str]) -> str:
    """An EBNF grammar whose only sentences are the given strings (JSON-escaped literals)."""
    if not choices:
        raise BackendError("a choice constraint needs at least one choice")
    return "root ::= " + " | ".join(json.dumps(c, ensure_ascii=False) for c in choices)


CHARS_PER_TOKEN = 3  # below the ~4 of English text: the caps stay inside the budget
OVERHEAD_TOKENS = 48  # keys, quotes, the label and the confidence
MAX_ITEMS = 8


def within_budget(schema: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """A copy of a JSON schema whose uncapped free strings share ``max_tokens`` equally (see
    the module docstring); strings with an enum, a pattern or their own cap are left alone."""

    def free_strings(node: Any) -> int:
        if not isinstance(node, dict):
            return 0
        n = 0
        if node.get("type") == "string" and not ({"enum", "pattern", "maxLength"} & node.keys()):
            n += 1
        for v in (node.get("properties") or {}).values():
            n += free_strings(v)
        if isinstance(node.get("items"), dict):
            n += (node.get("maxItems") or MAX_ITEMS) * free_strings(node["items"])
        return n

    n = free_strings(schema)
    if n == 0:
        return schema
    cap = max(16, (max_tokens - OVERHEAD_TOKENS) * CHARS_PER_TOKEN // n)

    def bound(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        out = dict(node)
        if out.get("type") == "string" and not ({"enum", "pattern", "maxLength"} & out.keys()):
            out["maxLength"] = cap
        if "properties" in out:
            out["properties"] = {k: bound(v) for k, v in out["properties"].items()}
        if isinstance(out.get("items"), dict):
            out["items"] = bound(out["items"])
            out.setdefault("maxItems", MAX_ITEMS)
        return out

    return bound(schema)


class Grammars:
    """Compiles and caches grammars for one tokenizer."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]):
        xgr = _xgr()
        self._xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids
        )
        self.vocab_size = info.vocab_size
        self._compiler = xgr.GrammarCompiler(info)
        self._cache: dict[str, Any] = {}

    def compile(self, kind: str, value: Any) -> Any:
        """The compiled grammar of a ``("json", schema)`` or ``("choice", labels)`` constraint."""
        key = kind + "\0" + json.dumps(value, sort_keys=True)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if kind == "json":
            g = self._compiler.compile_json_schema(
                json.dumps(value), any_whitespace=False, strict_mode=True
            )
        elif kind == "choice":
            g = self._compiler.compile_grammar(choice_ebnf(list(value)))
        else:
            raise BackendError(f"unknown constraint kind {kind!r} (json | choice)")
        self._cache[key] = g
        return g

    def processor(self, compiled: Any) -> GrammarProcessor:
        return GrammarProcessor(self._xgr, compiled, self.vocab_size)


class GrammarProcessor:
    """A transformers ``LogitsProcessor``: one grammar matcher per row, advanced by the token
    the row chose at the last step; tokens the grammar forbids get -inf.  One per ``generate``
    call (a matcher holds the state of one answer).  ``seconds`` adds up the time spent here,
    the constraint's own cost."""

    def __init__(self, xgr: Any, compiled: Any, vocab_size: int):
        self._xgr = xgr
        self._compiled = compiled
        self._vocab = vocab_size
        self._matchers: list[Any] = []
        self._mask: Any = None
        self._started = False
        self.seconds = 0.0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        t0 = time.perf_counter()
        xgr = self._xgr
        n = input_ids.shape[0]
        if not self._matchers:
            self._matchers = [xgr.GrammarMatcher(self._compiled) for _ in range(n)]
            self._mask = xgr.allocate_token_bitmask(n, self._vocab)
        if self._started:
            for i, m in enumerate(self._matchers):
                if not m.is_terminated() and not m.accept_token(int(input_ids[i, -1])):
                    raise BackendError(f"the grammar refused token {int(input_ids[i, -1])}")
        self._started = True
        for i, m in enumerate(self._matchers):
            if not m.is_terminated():
                m.fill_next_token_bitmask(self._mask, i)
        device = scores.device
        cpu = scores if device.type in ("cpu", "cuda") else scores.to("cpu")
        xgr.apply_token_bitmask_inplace(cpu, self._mask.to(cpu.device))
        out = cpu if cpu is scores else cpu.to(device)
        self.seconds += time.perf_counter() - t0
        return out
