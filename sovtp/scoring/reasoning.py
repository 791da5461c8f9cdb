"""Reasoning scores: does the rationale name the clues and emotions a reference names?

Two ways, and the report says which was used:

- ``llm``: EMER / DEEMO's protocol — an LLM judge (any backend, temperature 0, answers cached)
  scores *clue overlap* and *label overlap* from 0 to 10 with the prompts in
  ``evaluators/judge/`` (sandboxed jinja2; the answer and the reference are variables, never
  template code).
- ``offline``: an approximation that needs no LLM — emotion words of both texts mapped to
  emotion concepts, and their set overlap (label overlap); content words, FACS action units and
  cue words of both, and their set overlap (clue overlap); both Jaccard × 10.  When the
  ``sentence-transformers`` package and a local encoder (``SOVTP_ENCODER=/path``) are present,
  an embedding cosine × 10 is added.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

from sovtp.labels import CONCEPTS

_WORD = re.compile(r"[a-z]+")
_AU = re.compile(r"\bau\s?(\d{1,2})\b", re.I)
_STOP = set(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "he",
        "she",
        "they",
        "them",
        "his",
        "her",
        "their",
        "there",
        "here",
        "which",
        "who",
        "whom",
        "whose",
        "what",
        "when",
        "where",
        "why",
        "how",
        "not",
        "no",
        "so",
        "very",
        "more",
        "most",
        "less",
        "some",
        "any",
        "all",
        "each",
        "both",
        "than",
        "then",
        "also",
        "into",
        "out",
        "up",
        "down",
        "over",
        "under",
        "again",
        "once",
        "just",
        "can",
        "could",
        "would",
        "should",
        "may",
        "might",
        "will",
        "shall",
        "do",
        "does",
        "did",
        "has",
        "have",
        "had",
        "having",
        "person",
        "face",
        "clip",
        "video",
        "image",
        "frame",
        "seems",
        "appears",
        "shows",
        "looks",
        "slightly",
    ]
)
_CONCEPT_OF = {w: c for c, ws in CONCEPTS.items() for w in ws}


def emotion_concepts(text: str) -> set[str]:
    return {_CONCEPT_OF[w] for w in _WORD.findall((text or "").lower()) if w in _CONCEPT_OF}


def clue_terms(text: str) -> set[str]:
    t = (text or "").lower()
    aus = {f"au{int(m)}" for m in _AU.findall(t)}
    words = {w[:6] for w in _WORD.findall(_AU.sub(" ", t)) if len(w) > 2 and w not in _STOP}
    return aus | words


def _jaccard(a: set[str], b: set[str]) -> float | None:
    if not a and not b:
        return None
    return len(a & b) / len(a | b)


def offline_scores(answer: str, reference: str, scale: int = 10) -> dict[str, float | None]:
    lo = _jaccard(emotion_concepts(answer), emotion_concepts(reference))
    co = _jaccard(clue_terms(answer), clue_terms(reference))
    return {
        "label_overlap": None if lo is None else round(scale * lo, 3),
        "clue_overlap": None if co is None else round(scale * co, 3),
    }


def _encoder():
    path = os.environ.get("SOVTP_ENCODER")
    if not path:
        return None
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    return SentenceTransformer(path)


def judge_schema(scale: int) -> dict[str, Any]:
    """What a judge must answer: ``{"score": <integer 0..scale>}`` — sent as the constraint
    (a server's ``structured_outputs``/``response_format``, xgrammar in-process), and checked
    again when parsing, since a server may ignore it."""
    return {
        "type": "object",
        "properties": {"score": {"type": "integer", "minimum": 0, "maximum": scale}},
        "required": ["score"],
        "additionalProperties": False,
    }


def judge_queries(rows: Iterable[dict[str, Any]], prompts: dict[str, str], scale: int = 10):
    """One text-only Query per (row, judged quantity), rendered in a sandbox; each carries the
    judge's answer schema (``meta["json_schema"]``)."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    from sovtp.records import Query
    from sovtp.resources import evaluators_dir

    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    tpl = {
        k: env.from_string((evaluators_dir() / "judge" / v).read_text()) for k, v in prompts.items()
    }
    for r in rows:
        for name, t in tpl.items():
            text = t.render(
                reference=r["description"], answer=r.get("rationale") or "", scale=scale
            )
            yield Query(
                id=f"{r['key']}::{name}",
                messages=[{"role": "user", "content": [{"type": "text", "text": text}]}],
                meta={"json_schema": judge_schema(scale)},
            )


def _judge_score(text: str, scale: int = 10) -> float | None:
    """The score a judge wrote, or None (an invalid judgement: no JSON object, no numeric
    ``score``, or one outside 0..scale)."""
    v = _raw_score(text)
    return v if v is not None and 0 <= v <= scale else None


def _raw_score(text: str) -> float | None:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        m = re.search(r"\{.*\}", text or "", re.S)
        if not m:
            return None
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            return None
    v = obj.get("score") if isinstance(obj, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def score_rows(
    rows: list[dict[str, Any]],
    method: str = "offline",
    backend=None,
    prompts: dict[str, str] | None = None,
    scale: int = 10,
    repeats: int = 1,
    structured: bool = True,
) -> dict[str, Any]:
    """Per-row reasoning scores and their means per system × variant (rows need a
    ``description``; others are skipped).

    The ``llm`` judge: every judgement that yields no valid score is counted per group
    (``invalid``), never dropped silently.  ``repeats`` > 1 asks each question that many
    times, sampled (temperature 0.7, seeds 0..repeats-1), scores each row by the median of its
    valid judgements and reports how consistent the judge was (``consistency``: the share of
    questions whose judgements all agree, and the mean spread max-min)."""
    rows = [r for r in rows if r.get("description")]
    per_row: dict[str, dict[str, float | None]] = {}
    invalid: dict[str, int] = {}
    judged: dict[str, int] = {}
    consistency: dict[str, Any] | None = None
    if method == "llm":
        if backend is None:
            raise ValueError("the llm judge needs a backend")
        from sovtp.backends.base import GenerationConfig, served_model

        qs = list(
            judge_queries(
                rows,
                prompts or {"clue_overlap": "clue_overlap.j2", "label_overlap": "label_overlap.j2"},
                scale,
            )
        )
        from sovtp.backends.cache import ResponseCache, request_key

        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, not {repeats}")
        cfgs = [
            GenerationConfig(
                max_tokens=256,
                temperature=0.0 if repeats == 1 else 0.7,
                seed=k,
                structured=structured,
            )
            for k in range(repeats)
        ]
        served_model(backend)  # part of the cache key
        group_of = {r["key"]: f"{r.get('system')} · {r.get('variant')}" for r in rows}
        scores: dict[str, list[float | None]] = {q.id: [] for q in qs}
        cache = ResponseCache()  # a judge's verdict for one (question, seed) is asked once
        try:
            for cfg in cfgs:
                keys = {q.id: request_key(backend.name, backend.model, "judge", q, cfg) for q in qs}
                answers = {q.id: cache.get(keys[q.id]) for q in qs}
                todo = [q for q in qs if answers[q.id] is None]
                for q, r in zip(todo, backend.generate(todo, cfg) if todo else [], strict=True):
                    if r.error is None:
                        cache.put(keys[q.id], r)
                    answers[q.id] = r
                for q in qs:
                    r = answers[q.id]
                    scores[q.id].append(
                        None if r is None or r.error else _judge_score(r.text, scale)
                    )
        finally:
            cache.close()
        spreads: list[float] = []
        for q in qs:
            key, _, name = q.id.rpartition("::")
            g = group_of.get(key, "")
            vals = [v for v in scores[q.id] if v is not None]
            judged[g] = judged.get(g, 0) + len(scores[q.id])
            invalid[g] = invalid.get(g, 0) + len(scores[q.id]) - len(vals)
            per_row.setdefault(key, {})[name] = _median(vals) if vals else None
            if len(vals) >= 2:
                spreads.append(max(vals) - min(vals))
        if repeats > 1:
            consistency = {
                "repeats": repeats,
                "questions": len(spreads),
                "all_agree": round(sum(s == 0 for s in spreads) / len(spreads), 3)
                if spreads
                else None,
                "mean_spread": round(sum(spreads) / len(spreads), 3) if spreads else None,
            }
    else:
        enc = _encoder()
        for r in rows:
            sc = offline_scores(r.get("rationale") or "", r["description"], scale)
            if enc is not None:
                a, b = enc.encode(
                    [r.get("rationale") or "", r["description"]], normalize_embeddings=True
                )
                sc["embedding_similarity"] = round(float(scale * (a @ b)), 3)
            per_row[r["key"]] = sc
        method = "offline+embedding" if enc is not None else "offline"
    means: dict[str, dict[str, float]] = {}
    groups: dict[str, list[dict[str, float | None]]] = {}
    for r in rows:
        groups.setdefault(f"{r.get('system')} · {r.get('variant')}", []).append(
            per_row.get(r["key"], {})
        )
    for g, scs in groups.items():
        means[g] = {}
        for name in sorted({k for s in scs for k in s}):
            vals = [s[name] for s in scs if s.get(name) is not None]
            if vals:
                means[g][f"{name} (mean of {len(vals)})"] = round(sum(vals) / len(vals), 3)  # type: ignore[arg-type]
    out = {"method": method, "scale": scale, "scores": means, "rows": per_row}
    if method == "llm":
        out["invalid"] = invalid
        out["judged"] = judged
        if consistency is not None:
            out["consistency"] = consistency
    return out


def _median(vals: list[float]) -> float:
    v = sorted(vals)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2
