"""Backend protocol and registry.

A backend turns Queries into Responses — nothing else: it knows no faces and no prompts.  In batch
use a failure is a value (``Response.error``), never an exception that kills a run.  Backends are
resolved by name and imported lazily, so ``sovtp --help`` and the offline FACS path import no
torch, transformers, vllm or openai.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sovtp.contracts import constraint, json_schema
from sovtp.errors import BackendError
from sovtp.records import Query, Response


@dataclass(frozen=True)
class Capabilities:
    images_per_prompt: int = 8
    video: bool = False
    json_schema: bool = False
    choice: bool = False
    # False for a backend that answers from the measurements alone (the offline FACS reasoner):
    # prompt variants cannot change its answer, so an ablation over them tests nothing
    reads_prompt: bool = True
    # True for a server over the network (OpenAI-compatible): it is asked for its model
    # (``discover_model``), shows the body it sends (``request_body``) and streams a run's
    # queries through its own bounded ``session``.  Declared, so no caller probes for methods.
    remote: bool = False


@dataclass
class GenerationConfig:
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = 0
    stop: list[str] | None = None
    structured: bool = True  # bind the answer to the label set where the backend can


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


def served_model(backend: Backend) -> str:
    """The model a backend answers with: its own, or — a server given no model — the one the
    server reports, asked once and kept (rows, cache keys and system names need it up front)."""
    if backend.capabilities.remote and not backend.model:
        import asyncio

        backend.model = asyncio.run(backend.discover_model())  # type: ignore[attr-defined]
    return backend.model


def failed(backend: Backend, q: Query, error: str, **fields: Any) -> Response:
    """The Response that records a failure as a value (batch runs go on)."""
    return Response(query_id=q.id, backend=backend.name, model=backend.model, error=error, **fields)


# HTTP statuses worth asking again: the server was busy, restarting or briefly wrong
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_CODES = "|".join(map(str, sorted(RETRY_STATUS)))
_TRANSIENT = re.compile(
    r"^(timeout\b|malformed answer\b|deadline exceeded\b|APITimeoutError\b|APIConnectionError\b"
    rf"|\w+ ({_CODES}):)"
)


def is_transient(error: str | None) -> bool:
    """Whether a failed Response's error may go away if asked again (a timeout, a 5xx or 429, a
    dropped connection, a torn or malformed answer) — as opposed to a permanent one (a 4xx such
    as 401/400, unreadable media, a gold label outside the set).  Read from the error text, the
    only form older run folders hold; the words are the ones the backends here write."""
    return bool(error) and _TRANSIENT.match(error) is not None  # type: ignore[arg-type]


class BatchedBackend(ABC):
    """``generate`` for in-process backends: answer ``batch_size`` queries at a time (None: all
    at once), turn an exception into failed Responses for that batch, report each Response."""

    name: str
    model: str
    batch_size: int | None = None

    @abstractmethod
    def _answer_batch(self, queries: list[Query], cfg: GenerationConfig) -> list[Response]:
        """One Response per query, in order; may raise (the whole batch then fails as values)."""

    def generate(
        self,
        queries: Sequence[Query],
        config: GenerationConfig | None = None,
        progress: Callable[[Response], None] | None = None,
    ) -> list[Response]:
        cfg = config or GenerationConfig()
        step = self.batch_size or max(len(queries), 1)
        out: list[Response] = []
        for k in range(0, len(queries), step):
            chunk = list(queries[k : k + step])
            try:
                rs = self._answer_batch(chunk, cfg)
            except Exception as e:  # a failure is a value in batch use
                rs = [failed(self, q, f"{type(e).__name__}: {e}") for q in chunk]  # type: ignore[arg-type]
            if progress:
                for r in rs:
                    progress(r)
            out.extend(rs)
        return out


def answer_schema(labels: list[str]) -> dict[str, Any]:
    """The label-first JSON schema (the ``json`` output contract; see :mod:`sovtp.contracts`)."""
    return json_schema(labels)


def query_constraint(q: Query, cfg: GenerationConfig) -> tuple[str, Any] | None:
    """What to constrain one query's decoding with: a task's own answer schema where the query
    carries one (``meta["json_schema"]``: spotting's "when" intervals), else by its output
    contract — ``("json", schema)``, ``("choice", labels)`` or None (``text`` mode,
    ``--no-structured``, no labels).  Every backend reads it here, so a task needs no backend of
    its own."""
    if not cfg.structured:
        return None
    schema = (q.meta or {}).get("json_schema")
    if schema:
        return "json", schema
    return constraint(q.output, q.labels)


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
