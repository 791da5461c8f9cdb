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


def judge_queries(rows: Iterable[dict[str, Any]], prompts: dict[str, str], scale: int = 10):
    """One text-only Query per (row, judged quantity), rendered in a sandbox."""
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
            )


def _judge_score(text: str) -> float | None:
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
    return float(v) if isinstance(v, (int, float)) else None


def score_rows(
    rows: list[dict[str, Any]],
    method: str = "offline",
    backend=None,
    prompts: dict[str, str] | None = None,
    scale: int = 10,
) -> dict[str, Any]:
    """Per-row reasoning scores and their means per system × variant (rows need a
    ``description``; others are skipped)."""
    rows = [r for r in rows if r.get("description")]
    per_row: dict[str, dict[str, float | None]] = {}
    if method == "llm":
        if backend is None:
            raise ValueError("the llm judge needs a backend")
        from sovtp.backends.base import GenerationConfig

        qs = list(
            judge_queries(
                rows,
                prompts or {"clue_overlap": "clue_overlap.j2", "label_overlap": "label_overlap.j2"},
                scale,
            )
        )
        from sovtp.backends.cache import ResponseCache, request_key

        cfg = GenerationConfig(max_tokens=256, temperature=0.0, seed=0, structured=False)
        if backend.capabilities.remote and not backend.model:
            import asyncio

            backend.model = asyncio.run(backend.discover_model())  # part of the cache key
        cache = ResponseCache()  # temperature 0: a judge's verdict is asked once
        try:
            keys = {q.id: request_key(backend.name, backend.model, "judge", q, cfg) for q in qs}
            answers = {q.id: cache.get(keys[q.id]) for q in qs}
            todo = [q for q in qs if answers[q.id] is None]
            for q, r in zip(todo, backend.generate(todo, cfg) if todo else [], strict=True):
                cache.put(keys[q.id], r)
                answers[q.id] = r
        finally:
            cache.close()
        for q in qs:
            r = answers[q.id]
            key, _, name = q.id.rpartition("::")
            per_row.setdefault(key, {})[name] = (
                None if r is None or r.error else _judge_score(r.text)
            )
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
    return {"method": method, "scale": scale, "scores": means, "rows": per_row}
