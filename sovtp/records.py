"""Records that cross a disk or a wire (pydantic): queries, responses, predictions.

A ``Query`` carries OpenAI-style chat ``messages`` (text parts and ``image_url`` parts holding
JPEG data URLs), so any OpenAI-compatible server — vLLM first — reads it as is.  Images are also
listed by sha256 so that run folders and caches can refer to them without the bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, Field


class ImageRef(BaseModel):
    sha256: str
    width: int
    height: int
    frame_index: int | None = None
    timestamp_s: float | None = None


class Query(BaseModel):
    id: str
    messages: list[dict[str, Any]]
    images: list[ImageRef] = Field(default_factory=list)
    spec_id: str = ""
    spec_hash: str = ""
    labels: list[str] = Field(default_factory=list)
    # the output contract (sovtp.contracts): staged | text | json | label
    output: Literal["staged", "text", "json", "label"] = "json"
    subject: int | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    def text(self) -> str:
        """All text parts of the user turn(s), joined (what a person reads as 'the prompt')."""
        out = []
        for m in self.messages:
            c = m.get("content")
            if isinstance(c, str):
                out.append(c)
            else:
                out.extend(p["text"] for p in c if p.get("type") == "text")
        return "\n\n".join(out)

    def redacted(self) -> dict[str, Any]:
        """The query with image bytes replaced by their sha256 (for logs and run folders)."""
        d = self.model_dump()
        shas = iter(i.sha256 for i in self.images)
        for m in d["messages"]:
            if isinstance(m.get("content"), list):
                for p in m["content"]:
                    if p.get("type") == "image_url":
                        p["image_url"] = {"url": f"sha256:{next(shas, '?')}"}
                    elif p.get("type") == "input_audio":  # anonymised, but bulky: by hash
                        data = p["input_audio"].get("data", "")
                        digest = hashlib.sha256(data.encode()).hexdigest()
                        p["input_audio"] = {**p["input_audio"], "data": f"sha256:{digest}"}
        return d


class Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Response(BaseModel):
    query_id: str
    backend: str
    model: str = ""
    text: str = ""
    reasoning: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    finish_reason: str | None = None
    error: str | None = None
    cached: bool = False
    raw: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Prediction(BaseModel):
    sample_id: str
    system: str = ""
    variant: str = ""
    face_id: int | None = None  # the subject asked about (its track ID), None when no face
    label: str | None = None
    ranking: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    confidence: float | None = None
    rationale: str = ""
    stages: dict[str, str] = Field(default_factory=dict)  # a staged answer's stages, in order
    cues_used: list[str] = Field(default_factory=list)
    parse_status: Literal["ok", "repaired", "invalid"] = "invalid"
    gold: str | None = None
    # spotting (the ``intervals`` task): (start, end, label or None) in seconds or frames
    intervals: list[tuple[float, float, str | None]] = Field(default_factory=list)
    gold_intervals: list[tuple[float, float, str | None]] | None = None
    error: str | None = None
