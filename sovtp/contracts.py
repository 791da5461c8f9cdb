"""Output contracts: what a prompt asks the model to answer, and what is sent to constrain it.

One contract decides three things that must agree — the words that describe the format (the
templates' ``answer_format`` macro), the constraint sent to the server (a JSON schema or a
choice), and how the answer is parsed (:mod:`sovtp.scoring.parse`).  The parser is told the
contract; it never guesses.

| output | asks for | constraint | parsed from |
|---|---|---|---|
| ``staged`` | JSON: the five SoVTP stages first, then ``label``, ``confidence`` | JSON schema, properties in stage order | the JSON object |
| ``text`` | free reasoning ending in a line ``Final answer: <label>`` | none | the last such line only |
| ``json`` | JSON: ``label`` first, then ``confidence``, ``rationale``, ``cues`` | JSON schema | the JSON object |
| ``label`` | one label | a choice (vLLM) | the whole answer |

Order matters for ``staged``: constrained decoders (vLLM's xgrammar/guidance, llama.cpp
grammars) emit object properties in schema order, so a schema whose first property is ``label``
makes the model commit before it reasons.  Putting the stages first is what lets it reason first.

Pure data and functions: the prompt builder, the backends and the parser all read this module,
and it reads none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

Output = Literal["staged", "text", "json", "label"]
OUTPUTS: tuple[str, ...] = ("staged", "text", "json", "label")

# The SoVTP stages, in the order the model must write them (stage 5 is self-correction, then
# the answer itself).
STAGES: tuple[tuple[str, str], ...] = (
    ("scene", "Stage 1 - scene context: the setting and what is happening"),
    ("body", "Stage 2 - body language: posture, head and gaze, and what they suggest"),
    ("others", "Stage 3 - other people's emotions and how they shape the subject's"),
    ("action_units", "Stage 4 - the facial action units and their FACS reading"),
    ("self_correction", "Stage 5 - which evidence wins where first impressions conflict"),
)
STAGE_KEYS: tuple[str, ...] = tuple(k for k, _ in STAGES)
STAGE_TITLES: dict[str, str] = {
    "scene": "Scene",
    "body": "Body language",
    "others": "Others",
    "action_units": "Action units",
    "self_correction": "Self-correction",
}
FINAL_ANSWER = "Final answer:"


def check_output(output: str) -> str:
    """The output mode, or a ValueError naming the modes (a user's typo is a usage error)."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    return output


def staged_schema(labels: Sequence[str]) -> dict[str, Any]:
    """Stage fields (free text, no length cap) first, then ``label`` (enum) and ``confidence``."""
    props: dict[str, Any] = {k: {"type": "string", "description": d} for k, d in STAGES}
    props["label"] = {"type": "string", "enum": list(labels)}
    props["confidence"] = {"type": "number", "minimum": 0, "maximum": 1}
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def json_schema(labels: Sequence[str]) -> dict[str, Any]:
    """The label-first object (kept for ablation: what answering before reasoning costs)."""
    return {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": list(labels)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "rationale": {"type": "string"},
            "cues": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["label", "confidence", "rationale", "cues"],
        "additionalProperties": False,
    }


def schema_for(output: str, labels: Sequence[str]) -> dict[str, Any] | None:
    """The JSON schema of a JSON contract (``staged``/``json``); None for the others."""
    if output == "staged":
        return staged_schema(labels)
    if output == "json":
        return json_schema(labels)
    return None


def constraint(output: str, labels: Sequence[str]) -> tuple[str, Any] | None:
    """What to constrain decoding with: ``("json", schema)``, ``("choice", labels)`` or None
    (``text``: free reasoning must not be constrained; no labels: nothing to constrain to)."""
    if not labels:
        return None
    if output == "label":
        return "choice", list(labels)
    schema = schema_for(output, labels)
    return ("json", schema) if schema is not None else None


def staged_text(obj: dict[str, Any]) -> str:
    """A staged answer's stages as one readable text (the stored rationale), in stage order."""
    parts = []
    for k in STAGE_KEYS:
        v = obj.get(k)
        if v not in (None, ""):
            parts.append(f"{STAGE_TITLES[k]}: {str(v).strip()}")
    return "\n\n".join(parts)
