"""Vision-LLM backends: OpenAI-compatible servers (vLLM first), transformers, vLLM offline, FACS."""

from sovtp.backends.base import (
    REGISTRY,
    Backend,
    Capabilities,
    GenerationConfig,
    answer_schema,
    get_backend,
)

__all__ = [
    "REGISTRY",
    "Backend",
    "Capabilities",
    "GenerationConfig",
    "answer_schema",
    "get_backend",
]
