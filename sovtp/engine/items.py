"""The units a run moves: one :class:`Item` per (sample, face, system, variant) key, the
counters of a run (:class:`Stats`), what preparing a sample gives back (:class:`Prepared`), and
the three rows one answer writes (response, prediction, gallery)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sovtp.backends.base import is_transient
from sovtp.data.sample import Sample
from sovtp.records import Prediction, Query, Response

Ask = Callable[[Query], Awaitable[Response]]
Emit = Callable[["Item", Response, Prediction], None]


def row_key(sample_id: str, face: int | None, system: str, variant: str) -> str:
    return f"{sample_id}|{'' if face is None else face}|{system}|{variant}"


@dataclass
class Item:
    """One query to answer: a (sample, face, system, variant) key."""

    key: str
    sample: Sample
    face: int | None
    system: str
    variant: str  # the prompt spec's ID
    gold: str | None
    facts: dict[str, Any]
    query: Query | None = None
    error: str | None = None
    gallery_image: str | None = None
    gallery_sent: bool = True  # False: a text-only system; the picture was drawn for the report
    prediction: Prediction | None = None  # a predictor's answer, given while prepared (a CNN)
    crops: Any = None  # a stateful predictor's face crops, answered later in sample order


@dataclass
class Stats:
    """What a run did: this process's work (the benchmarks count annotation passes with it) and
    the run folder's rows once it ends (what ``sovtp bench`` turns into its exit code)."""

    samples: int = 0  # samples with rows still to write
    skipped: int = 0  # samples whose rows were all written before (--resume)
    annotations: int = 0  # clips annotated (detector ran or cache hit)
    detector_calls: int = 0  # frames through the detectors
    retried: int = 0  # error rows of an earlier run asked again (--resume)
    rows: int = 0  # rows in the run folder at the end (one per key, the latest)
    errors: int = 0  # of which errors
    transient_errors: int = 0  # of which worth asking again (timeouts, 5xx, 429, ...)
    answered: int = 0  # rows with an answer (rows - errors)
    invalid: int = 0  # of the answered, those the parser could not read (not valid answers)
    interrupted: bool = False


@dataclass
class Prepared:
    """What preparing one sample gives back (from a worker process)."""

    items: list[Item]
    annotated: bool  # the clip went through annotation (detectors or the cache)
    detector_calls: int


def error_fields(r: Response) -> dict[str, Any]:
    """What an error row says about its error: whether asking again may help."""
    return {"transient": is_transient(r.error)} if r.error else {"transient": None}


def response_row(it: Item, r: Response) -> dict[str, Any]:
    return {
        "key": it.key,
        "sample_id": it.sample.id,
        "face_id": it.face,
        "system": it.system,
        "variant": it.variant,
        "spec_hash": it.query.spec_hash if it.query else None,
        "images": [i.sha256 for i in it.query.images] if it.query else [],
        "response": r.model_dump(exclude={"raw"}),
    } | error_fields(r)


def prediction_row(it: Item, r: Response, p: Prediction) -> dict[str, Any]:
    d = p.model_dump()
    d.update(it.facts)
    d.update(
        {
            "key": it.key,
            "gold": it.gold,
            "cached": r.cached,
            "latency_s": round(r.latency_s, 4),
            "model": r.model,
        }
        | error_fields(r)
    )
    return d


def gallery_row(it: Item, r: Response, p: Prediction) -> dict[str, Any] | None:
    if not it.gallery_image:
        return None
    return {
        "key": it.key,
        "sample_id": it.sample.id,
        "system": it.system,
        "variant": it.variant,
        "image": it.gallery_image,
        "image_sent": it.gallery_sent,
        "prompt": it.query.text() if it.query else "",
        "answer": r.text,
        "error": r.error,
        "label": p.label,
        "gold": it.gold,
        "parse_status": p.parse_status,
        "rationale": p.rationale,
        "stages": p.stages,
        "subject": it.query.subject if it.query else it.face,
    }


def rows_of(it: Item, r: Response, p: Prediction) -> tuple[dict, dict, dict | None]:
    """The three rows one answer writes: response, prediction, gallery (or None)."""
    return response_row(it, r), prediction_row(it, r, p), gallery_row(it, r, p)
