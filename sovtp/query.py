"""One clip, one answer: prompt → backend → parse, with everything written to a query folder.

The folder holds what a reader needs to trust (or reproduce) the answer: the annotated frames as
sent, the rendered prompt, the request as sent (no API key; images by file name + sha256), the
raw response, and the parsed prediction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovtp.backends.base import GenerationConfig, get_backend
from sovtp.prompting.build import build_query
from sovtp.prompting.spec import load_spec
from sovtp.records import Prediction, Query, Response
from sovtp.scoring.parse import predict
from sovtp.types import ClipAnnotation, Frame


@dataclass
class QueryResult:
    query: Query
    response: Response
    prediction: Prediction


def run_query(
    clip: ClipAnnotation,
    frames: list[Frame],
    prompt: str,
    backend: str,
    options: dict[str, Any],
    out: Path,
    *,
    labels: str | None = None,
    subject: str | int = "largest",
    transcript: str | None = None,
    max_tokens: int = 512,
    temperature: float = 0.0,
    seed: int | None = 0,
) -> QueryResult:
    spec = load_spec(prompt)
    q, images = build_query(
        clip, frames, spec, labels=labels, subject=subject, transcript=transcript
    )
    out.mkdir(parents=True, exist_ok=True)
    for k, im in enumerate(images):
        (out / f"image_{k}.jpg").write_bytes(im.jpeg)
    (out / "prompt.txt").write_text(q.text() + "\n")
    be = get_backend(backend, **options)
    cfg = GenerationConfig(max_tokens=max_tokens, temperature=temperature, seed=seed)
    (resp,) = be.generate([q], cfg)
    # written after the call, so a model discovered from /v1/models is the one recorded
    redacted = q.redacted()
    request: dict[str, Any] = {
        "backend": backend,
        "query": redacted,
        "images": [f"image_{k}.jpg" for k in range(len(images))],
        "generation": cfg.__dict__,
    }
    if hasattr(be, "request_body"):
        request["base_url"] = be.base_url
        request["body"] = be.request_body(q, cfg) | {"messages": redacted["messages"]}
    (out / "request.json").write_text(json.dumps(request, indent=1, default=str))
    (out / "response.json").write_text(resp.model_dump_json(indent=1))
    pred = predict(resp, q.labels, clip.source, f"{backend}:{resp.model}", spec.id)
    (out / "prediction.json").write_text(pred.model_dump_json(indent=1))
    return QueryResult(q, resp, pred)
