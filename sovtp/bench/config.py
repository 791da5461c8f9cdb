"""What a benchmark run is: the resolved configuration written to ``config.yaml``.

A *system* is a backend + model (+ endpoints); a *variant* is a prompt spec.  The config holds
no secret: API keys come from the environment when a backend is built.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sovtp.errors import SovtpError


class SystemSpec(BaseModel):
    name: str
    backend: str
    options: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SystemSpec:
        """``facs`` | ``openai[:MODEL]@URL[,URL...]`` | ``transformers:PATH`` | ``vllm:MODEL``;
        several URLs after ``@`` are endpoints of one system, load-balanced."""
        head, _, urls = text.partition("@")
        backend, _, model = head.partition(":")
        opts: dict[str, Any] = {}
        if backend == "openai":
            if not urls:
                raise SovtpError(
                    f"system {text!r}: openai needs @URL (e.g. openai@http://h:8000/v1)"
                )
            opts["base_url"] = [u for u in urls.split(",") if u]
            if model:
                opts["model"] = model
        elif backend in ("transformers", "vllm"):
            if not model:
                raise SovtpError(f"system {text!r}: {backend} needs :MODEL (hub ID or folder)")
            opts["model"] = model
        elif backend != "facs":
            raise SovtpError(f"unknown backend in system {text!r}")
        return cls.of(backend, opts)

    @classmethod
    def of(cls, backend: str, options: dict[str, Any]) -> SystemSpec:
        """A system named as tables show it: the backend, and the model's last path part."""
        model = options.get("model")
        name = backend if not model else f"{backend}:{model.rstrip('/').rsplit('/', 1)[-1]}"
        return cls(name=name, backend=backend, options=options)


class BenchConfig(BaseModel):
    data: str
    root: str | None = None
    split: str | None = None
    fold: int | None = None
    evaluator: str | None = None
    labels: str | None = None
    variants: list[str] = Field(default_factory=lambda: ["sovtp/full"])
    base_variant: str | None = None
    systems: list[SystemSpec] = Field(
        default_factory=lambda: [SystemSpec(name="facs", backend="facs")]
    )
    sampling: str = "uniform:8"
    max_faces: int = 4
    pose: bool = True
    subject: str = "largest"
    limit: int | None = None
    shuffle: bool = False
    seed: int = 0
    chunk: int = 16
    max_tokens: int = 512
    temperature: float = 0.0
    gen_seed: int | None = 0
    image_size: int = 768
    jpeg_quality: int = 85
    engine: str = "local"
    response_cache: bool = True
    annotation_cache: bool = True
    gallery: int = 12
    tier_by: str | None = None  # difficulty tiers: n_faces (default) or a manifest column
    n_boot: int = 1000
    out: str = "runs/bench"
    adapter_options: dict[str, Any] = Field(default_factory=dict)
