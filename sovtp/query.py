"""One clip, one answer per subject: prepare → backend → parse, written to a query folder.

The folder holds what a reader needs to trust (or reproduce) the answer: the annotated frames as
sent, the rendered prompt, the request as sent (no API key, no credentials in URLs; images by
file name + sha256), the raw response, and the parsed prediction.  With ``--subject all`` each
face gets its own sub-folder ``face_<ID>/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovtp.backends.base import GenerationConfig, get_backend
from sovtp.prepare import Preparer
from sovtp.prompting.build import subjects
from sovtp.prompting.spec import load_spec
from sovtp.records import Prediction, Query, Response
from sovtp.redact import redact
from sovtp.scoring.parse import predict
from sovtp.systems import system_name
from sovtp.types import ClipAnnotation, Frame


@dataclass
class QueryResult:
    query: Query
    response: Response
    prediction: Prediction


def run_query(
    prep: Preparer,
    clip: ClipAnnotation,
    frames: list[Frame],
    prompt: str,
    backend: str,
    options: dict[str, Any],
    out: Path,
    cfg: GenerationConfig | None = None,
    *,
    labels: str | None = None,
    subject: str | int = "largest",
    transcript: str | None = None,
) -> list[QueryResult]:
    """Ask ``backend`` about each subject of an annotated clip; one result per subject."""
    spec = load_spec(prompt)
    cfg = cfg or GenerationConfig()
    who = subjects(clip, subject)
    be = get_backend(backend, **options)
    queries, folders = [], []
    for sid in who:
        q, images = prep.query(
            clip,
            frames,
            spec,
            labels=labels,
            subject=sid if sid is not None else subject,
            transcript=transcript,
            sample_key=clip.sha256,
            query_id=f"{clip.sha256[:12]}:{spec.id}:{'' if sid is None else sid}",
            # the backend's own image budget, as bench applies it: a text-only model (or the
            # FACS reasoner, 0) gets the text-only prompt, not "you are shown an image" with the
            # image dropped; the folder records what was sent
            max_images=be.capabilities.images_per_prompt,
        )
        folder = out / f"face_{sid}" if len(who) > 1 else out
        folder.mkdir(parents=True, exist_ok=True)
        for k, im in enumerate(images):
            (folder / f"image_{k}.jpg").write_bytes(im.jpeg)
        (folder / "prompt.txt").write_text(q.text() + "\n")
        queries.append((q, len(images)))
        folders.append(folder)
    responses = be.generate([q for q, _ in queries], cfg)
    results = []
    for (q, n_images), folder, resp in zip(queries, folders, responses, strict=True):
        # written after the call, so a model discovered from /v1/models is the one recorded
        redacted = q.redacted()
        request: dict[str, Any] = {
            "backend": backend,
            "query": redacted,
            "images": [f"image_{k}.jpg" for k in range(n_images)],
            "generation": cfg.__dict__,
        }
        if be.capabilities.remote:
            request["base_url"] = be.base_url
            request["body"] = be.request_body(q, cfg) | {"messages": redacted["messages"]}
        (folder / "request.json").write_text(json.dumps(redact(request), indent=1, default=str))
        (folder / "response.json").write_text(json.dumps(redact(resp.model_dump()), indent=1))
        model = options.get("model") or (resp.model if be.capabilities.remote else None)
        pred = predict(
            resp, q.labels, clip.source, system_name(backend, model), spec.id, output=q.output
        )
        pred.face_id = q.subject
        (folder / "prediction.json").write_text(pred.model_dump_json(indent=1))
        results.append(QueryResult(q, resp, pred))
    return results
