"""``utils.py`` of a task folder written by ``sovtp export lmms-eval`` (copied there verbatim).

lmms-eval calls these functions by name from the task YAML (``!function utils.NAME``):

- ``doc_to_messages``: the prompt sovtp built for the document — system text, the annotated
  frames (JPEG files in ``images/`` beside this file, written by sovtp's prepare pipeline at
  export time) and the Set-of-Vision-Text prompt — as lmms-eval chat messages;
- ``doc_to_visual`` / ``doc_to_text``: the same images and text, for models that read those;
- ``process_results``: the answer parsed by sovtp's own parser (structured → regex → synonyms →
  invalid, with the export's label set and synonyms) into a (gold, prediction) pair;
- ``aggregate_*``: WAR, UAR, macro F1 and the invalid rate over those pairs by sovtp's metrics,
  so the numbers are the ones ``sovtp bench`` / ``sovtp score`` report on the same answers.

The prompts need no sovtp at evaluation time; the scoring imports ``sovtp.scoring`` (install
sovtp in the environment that runs lmms-eval).  ``sovtp_task.json`` beside this file holds the
label set and the export's settings.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
METRICS = ("war", "uar", "macro_f1", "invalid_rate")


@lru_cache(maxsize=1)
def _task() -> dict[str, Any]:
    return json.loads((HERE / "sovtp_task.json").read_text(encoding="utf-8"))


def _messages(doc: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = json.loads(doc["messages"])
    for m in msgs:
        for part in m["content"]:
            if part["type"] == "image":
                part["url"] = str(HERE / part["url"])
    return msgs


def doc_to_messages(doc: dict[str, Any], lmms_eval_specific_kwargs: Any = None) -> list[dict]:
    """The messages sovtp built for this document, images as file paths."""
    return _messages(doc)


def doc_to_visual(doc: dict[str, Any]) -> list[Any]:
    from PIL import Image

    return [
        Image.open(part["url"]).convert("RGB")
        for m in _messages(doc)
        for part in m["content"]
        if part["type"] == "image"
    ]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: Any = None) -> str:
    return "\n\n".join(
        part["text"]
        for m in _messages(doc)
        if m["role"] == "user"
        for part in m["content"]
        if part["type"] == "text"
    )


def doc_to_target(doc: dict[str, Any]) -> str:
    return doc["gold"]


def _labels() -> Any:
    from sovtp.labels import LabelSet

    ls = _task()["label_set"]
    return LabelSet(ls["name"], list(ls["labels"]), {k: list(v) for k, v in ls["synonyms"].items()})


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, dict[str, Any]]:
    """The answer parsed as ``sovtp bench`` parses it (by the contract the prompt asked for)."""
    from sovtp.scoring.parse import parse_answer

    text = results[0] if results else ""
    p = parse_answer(text, _labels(), sample_id=doc["sample_id"], output=doc.get("output") or None)
    pair = {"sample_id": doc["sample_id"], "gold": doc["gold"], "pred": p.label}
    return {m: pair for m in METRICS}


def _metrics(items: list[dict[str, Any]]) -> Any:
    from sovtp.scoring.metrics import compute

    labels = list(_task()["label_set"]["labels"])
    return compute([i["gold"] for i in items], [i["pred"] for i in items], labels)


def aggregate_war(items: list[dict[str, Any]]) -> float:
    return float(_metrics(items).war)


def aggregate_uar(items: list[dict[str, Any]]) -> float:
    return float(_metrics(items).uar)


def aggregate_macro_f1(items: list[dict[str, Any]]) -> float:
    return float(_metrics(items).macro_f1)


def aggregate_invalid_rate(items: list[dict[str, Any]]) -> float:
    return float(_metrics(items).invalid_rate)
