"""Backend protocol and registry.

A backend turns Queries into Responses — nothing else: it knows no faces and no prompts.  In batch
use a failure is a value (``Response.error``), never an exception that kills a run.  Backends are
resolved by name and imported lazily, so ``sovtp --help`` and the offline FACS path import no
torch, transformers, vllm or openai.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sovtp.errors import BackendError
from sovtp.records import Query, Response


@dataclass(frozen=True)
class Capabilities:
    images_per_prompt: int = 8
    video: bool = False
    json_schema: bool = False
    choice: bool = False


@dataclass
class GenerationConfig:
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = 0
    stop: list[str] | None = None
    structured: bool = True  # bind the answer to the label set where the backend can

    @property
    def deterministic(self) -> bool:
        return self.temperature == 0.0 or self.seed is not None


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str
    capabilities: Capabilities

    def generate(
        self,
        queries: Sequence[Query],
        config: GenerationConfig | None = None,
        progress: Callable[[Response], None] | None = None,
    ) -> list[Response]: ...


def answer_schema(labels: list[str]) -> dict[str, Any]:
    """The JSON schema every backend answers in: label (enum), confidence, rationale, cues."""
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


@dataclass
class _Entry:
    module: str
    cls: str
    extra: str


REGISTRY: dict[str, _Entry] = {
    "facs": _Entry("sovtp.backends.facs", "FacsBackend", ""),
    "openai": _Entry("sovtp.backends.openai_compat", "OpenAIBackend", ""),
    "transformers": _Entry("sovtp.backends.transformers_local", "TransformersBackend", "hf"),
    "vllm": _Entry("sovtp.backends.vllm_offline", "VLLMOfflineBackend", "vllm"),
}


@dataclass
class BackendSpec:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


def get_backend(name: str, **options: Any) -> Backend:
    """Instantiate a backend by registry name, importing its module only now."""
    entry = REGISTRY.get(name)
    if entry is None:
        raise BackendError(f"unknown backend {name!r}; known: {', '.join(REGISTRY)}")
    try:
        mod = importlib.import_module(entry.module)
    except ImportError as e:
        hint = f"pip install 'sovtp[{entry.extra}]'" if entry.extra else "reinstall sovtp"
        raise BackendError(
            f"backend {name!r} needs a package that is not installed ({e.name}): {hint}"
        ) from e
    return getattr(mod, entry.cls)(**options)
