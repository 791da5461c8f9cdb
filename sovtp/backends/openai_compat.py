"""Any OpenAI-compatible chat-completions server, vLLM's ``vllm serve`` first.

- bounded concurrency: a fixed limit, or ``adaptive`` (AIMD: halve on 429/5xx, grow by one per
  window of healthy answers up to ``max_concurrency``);
- retries with exponential backoff + full jitter that honour ``Retry-After``; ``timeout_s`` is a
  deadline on the whole exchange (connect, send, and reading the body however slowly it trickles
  in: an httpx read timeout bounds each read, not the answer), and ``deadline_s`` bounds a batch;
- an answer that is not chat-completions JSON (a 200 with a torn or malformed body, no choices)
  is transient, retried like a 5xx (bounded by ``max_retries``);
- a streaming ``session``: one pool of endpoints, each with its own bounded queue (its
  concurrency limit), that callers feed one query at a time — a slow request holds one slot, never
  a batch;
- the model is discovered from ``/v1/models`` when none is given;
- structured output bound to the label set: ``response_format`` json_schema, or with
  ``server="vllm"`` vLLM's own ``structured_outputs`` (``choice`` for label-only prompts) at the
  top level of the body, where the SDK's ``extra_body`` would put it (vLLM ≥ 0.12; the old
  ``guided_*`` fields are gone);
- ``reasoning_content`` kept, token usage and latency recorded;
- the API key (argument, ``SOVTP_API_KEY`` or ``OPENAI_API_KEY``) never appears in an error,
  a log line or a file: every error text is scrubbed of it.

Images travel inside the Query as data URLs encoded once when the prompt was built; the JSON body
is serialised once per query, on admission, and a retry re-sends those bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sovtp.backends.base import (
    RETRY_STATUS,
    Capabilities,
    GenerationConfig,
    failed,
    query_constraint,
)
from sovtp.backends.wire import wire_json
from sovtp.errors import BackendError
from sovtp.records import Query, Response, Usage

log = logging.getLogger(__name__)


class AdaptiveLimiter:
    """A concurrency limit that can change while requests are in flight.

    Waiters queue FIFO and each release wakes exactly the waiters that now fit, so a batch of
    thousands of queued requests costs O(1) per release (a Condition with notify_all would wake
    every waiter on every release).  Single event loop, so no lock is needed.
    """

    def __init__(self, start: int, maximum: int, adaptive: bool):
        self.limit = max(1, start)
        self.maximum = max(self.limit, maximum)
        self.adaptive = adaptive
        self.in_flight = 0
        self.peak = 0
        self._ok_streak = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        """Requests admitted or waiting: what a load balancer compares against ``limit``."""
        return self.in_flight + len(self._waiters)

    def _admit(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self._admit()
                fut.set_result(None)

    async def __aenter__(self) -> AdaptiveLimiter:
        if self.in_flight < self.limit and not self._waiters:
            self._admit()
            return self
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # admitted, then cancelled: give it back
                await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        self.in_flight -= 1
        self._wake()

    async def feedback(self, overloaded: bool) -> None:
        if not self.adaptive:
            return
        if overloaded:
            self.limit = max(1, self.limit // 2)
            self._ok_streak = 0
        else:
            self._ok_streak += 1
            if self._ok_streak >= self.limit and self.limit < self.maximum:
                self.limit += 1
                self._ok_streak = 0
        self._wake()


class _Endpoint:
    """One server of a load-balanced pool: its client, its own concurrency limit, and a penalty
    that steers requests away while it fails."""

    def __init__(self, url: str, client, limiter: AdaptiveLimiter):
        self.url = url
        self.client = client
        self.limiter = limiter
        self.penalty = 0.0
        self.sent = 0

    def load(self) -> float:
        return self.limiter.queued / self.limiter.limit + self.penalty


def _api_key(explicit: str | None) -> str:
    return (
        explicit or os.environ.get("SOVTP_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
    )


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str | None = None,
        api_key: str | None = None,
        server: str = "openai",
        concurrency: int = 16,
        adaptive: bool = False,
        max_concurrency: int = 64,
        max_retries: int = 4,
        timeout_s: float = 120.0,
        deadline_s: float | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ):
        if server not in ("openai", "vllm"):
            raise BackendError("server must be 'openai' or 'vllm'")
        urls = base_url.split(",") if isinstance(base_url, str) else list(base_url)
        self.base_urls = [u.strip().rstrip("/") for u in urls if u.strip()]
        if not self.base_urls:
            raise BackendError("the openai backend needs a base URL")
        self.base_url = self.base_urls[0]
        self.model = model or ""
        self._key = _api_key(api_key)
        self.server = server
        self.concurrency = concurrency
        self.adaptive = adaptive
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.capabilities = Capabilities(
            images_per_prompt=8,
            video=False,
            json_schema=True,
            choice=server == "vllm",
            remote=True,
        )
        self.last_peak_concurrency = 0
        self.last_limits: list[int] = []  # each endpoint's limit when the last session ended
        self.last_sent: dict[str, int] = {}

    # -- safety ---------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        """An error text as it may be logged or written to a row: no API key, no credentials
        inside a URL (user:pass@, ?api_key=...)."""
        from sovtp.redact import redact_text

        if self._key and self._key != "EMPTY":
            text = text.replace(self._key, "***")
        return redact_text(text)

    def __repr__(self) -> str:  # never shows the key, nor credentials in the URL
        from sovtp.redact import redact_url

        url = redact_url(self.base_url)
        return f"OpenAIBackend(base_url={url!r}, model={self.model!r}, server={self.server!r})"

    # -- request --------------------------------------------------------------------------
    def request_body(self, q: Query, cfg: GenerationConfig) -> dict[str, Any]:
        """The chat-completions JSON body for one query, exactly as it goes on the wire (what the
        payload tests pin; vLLM's ``structured_outputs`` sits at the top level, where vLLM reads
        the fields that the openai SDK would pass as ``extra_body``)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": q.messages,
            "max_completion_tokens": cfg.max_tokens,
            "temperature": cfg.temperature,
        }
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        if cfg.stop:
            body["stop"] = cfg.stop
        c = query_constraint(q, cfg)
        if c is not None:
            kind, value = c
            if self.server == "vllm":  # vLLM ≥ 0.12: the retired guided_* fields are ignored
                body["structured_outputs"] = {kind: value}
            elif kind == "json":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "emotion_answer", "schema": value, "strict": True},
                }
        return body

    def _client(self, url: str | None = None):
        try:
            from openai import AsyncOpenAI
        except ImportError as e:
            raise BackendError("the openai package is missing: pip install openai") from e
        # a query string in the URL (some gateways take ?api_key=...) goes with every request,
        # not into the path the client appends to
        from urllib.parse import parse_qsl, urlsplit, urlunsplit

        parts = urlsplit(url or self.base_url)
        query = dict(parse_qsl(parts.query))
        base = urlunsplit(parts._replace(query=""))
        return AsyncOpenAI(
            base_url=base,
            api_key=self._key,
            max_retries=0,
            timeout=self.timeout_s,
            default_query=query or None,
        )

    async def discover_model(self, client=None) -> str:
        own = client is None
        client = client or self._client()
        try:
            models = await client.models.list()
            ids = [m.id for m in models.data]
        except Exception as e:
            raise BackendError(
                self._scrub(f"cannot list models at {self.base_url}/models: {e}")
            ) from None
        finally:
            if own:
                await client.close()
        if not ids:
            raise BackendError(f"{self.base_url} serves no model")
        return ids[0]

    def _retry_after(self, exc: Exception) -> float | None:
        resp = getattr(exc, "response", None)
        headers = getattr(resp, "headers", None)
        if not headers:
            return None
        val = headers.get("retry-after")
        if val is None:
            ms = headers.get("retry-after-ms")
            return float(ms) / 1000 if ms else None
        try:
            return float(val)
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return max(0.0, parsedate_to_datetime(val).timestamp() - time.time())
            except (TypeError, ValueError):
                return None

    async def _one(
        self, pool: list[_Endpoint], q: Query, cfg: GenerationConfig, t_end: float | None
    ) -> Response:
        import openai

        # Serialised once, on first admission (not when the task is created: a batch of 1000
        # would encode every body before the first request left, and hold them all): retries
        # re-send these bytes, and the SDK's per-request walk over the messages (its param
        # transform, ~1.7 ms for two images) is skipped — the body is already in wire form.
        content: bytes | None = None
        headers = {"Content-Type": "application/json"}
        attempt = 0
        while True:
            now = time.monotonic()
            if t_end is not None and now >= t_end:
                return failed(self, q, "deadline exceeded")
            t0 = time.perf_counter()
            # join the least-loaded endpoint (queue length over its limit, plus a penalty while
            # it fails); a retry chooses again, so a dead server's requests move elsewhere
            ep = min(pool, key=_Endpoint.load)
            limiter, client = ep.limiter, ep.client
            retry_after: float | None = None
            timeout = self.timeout_s
            try:
                async with limiter:
                    if content is None:
                        content = wire_json(self.request_body(q, cfg))
                    # the deadline starts once a slot is held: waiting in the queue is not the
                    # server's fault
                    now = time.monotonic()
                    timeout = self.timeout_s if t_end is None else min(self.timeout_s, t_end - now)
                    timeout = max(0.01, timeout)
                    t0 = time.perf_counter()
                    # the whole exchange under one deadline: the SDK reads and decodes the body
                    # inside post(), so a server that trickles bytes is cut here too
                    raw = await asyncio.wait_for(
                        client.post(
                            "/chat/completions",
                            cast_to=dict,  # plain JSON: no pydantic build + dump per answer
                            content=content,
                            options={"timeout": timeout, "headers": headers},
                        ),
                        timeout,
                    )
                latency = time.perf_counter() - t0
                r = self._to_response(q, raw, latency)
                if r.error is None:
                    ep.sent += 1
                    ep.penalty = max(0.0, ep.penalty - 0.5)
                    await limiter.feedback(overloaded=False)
                    return r
                reason, retryable, overloaded = r.error, True, False
            except (openai.APIStatusError, openai.APITimeoutError, openai.APIConnectionError) as e:
                status = getattr(e, "status_code", None)
                retryable = status in RETRY_STATUS or status is None
                overloaded = status in (429, 500, 502, 503, 504)
                if status is None or status >= 500:
                    ep.penalty += 1.0
                reason = self._scrub(
                    f"{type(e).__name__}{f' {status}' if status else ''}: {_server_words(e)}"
                )
                retry_after = self._retry_after(e)
            except TimeoutError:
                reason = f"timeout: no complete answer within {timeout:.3g} s"
                retryable, overloaded = True, True
                ep.penalty += 1.0
            except ValueError as e:  # a 200 whose body is not JSON (torn, truncated, garbage)
                reason = self._scrub(f"malformed answer: {type(e).__name__}: {e}")
                retryable, overloaded = True, False
            except Exception as e:  # anything else: a value, not a crash, and not retried
                error = self._scrub(f"{type(e).__name__}: {e}")
                return failed(self, q, error, latency_s=time.perf_counter() - t0)
            if overloaded:
                await limiter.feedback(overloaded=True)
            if not retryable or attempt >= self.max_retries:
                return failed(self, q, reason, latency_s=time.perf_counter() - t0)
            wait = retry_after
            if wait is None:
                wait = random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))
            if t_end is not None and time.monotonic() + wait >= t_end:
                return failed(self, q, f"deadline exceeded after: {reason}")
            log.info("retrying %s in %.2fs (%s)", q.id, wait, reason)
            attempt += 1
            await asyncio.sleep(wait)

    def _to_response(self, q: Query, raw: dict[str, Any], latency: float) -> Response:
        """The server's JSON (kept as is in ``Response.raw``) → Response; vLLM puts a reasoning
        parser's output in ``reasoning_content`` (older) or ``reasoning`` (newer)."""
        choices = raw.get("choices") if isinstance(raw, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        msg = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(msg, dict):  # transient: the next try may well be whole
            what = "no choices" if not choice else "a choice without a message"
            return failed(self, q, f"malformed answer: {what}", latency_s=latency)
        u = raw.get("usage") or {}
        return Response(
            query_id=q.id,
            backend=self.name,
            model=raw.get("model") or self.model,
            text=msg.get("content") or "",
            reasoning=msg.get("reasoning_content") or msg.get("reasoning"),
            usage=Usage(
                prompt_tokens=u.get("prompt_tokens"),
                completion_tokens=u.get("completion_tokens"),
                total_tokens=u.get("total_tokens"),
            ),
            latency_s=latency,
            finish_reason=choice.get("finish_reason"),
            raw=raw,
        )

    @contextlib.asynccontextmanager
    async def session(
        self, config: GenerationConfig | None = None
    ) -> AsyncIterator[Callable[[Query], Awaitable[Response]]]:
        """``async with be.session(cfg) as ask: r = await ask(q)`` — a stream of queries over
        one pool of endpoints.  Each endpoint's limiter is its bounded queue: callers may submit
        as many queries as they like; at most ``concurrency`` per endpoint are on the wire, and a
        hung one holds one slot until its deadline, never the others.  ``deadline_s`` counts
        from the session's start."""
        cfg = config or GenerationConfig()
        pool = [
            _Endpoint(
                u,
                self._client(u),
                AdaptiveLimiter(self.concurrency, self.max_concurrency, self.adaptive),
            )
            for u in self.base_urls
        ]
        try:
            if not self.model:
                self.model = await self.discover_model(pool[0].client)
            t_end = None if self.deadline_s is None else time.monotonic() + self.deadline_s

            async def ask(q: Query) -> Response:
                return await self._one(pool, q, cfg, t_end)

            yield ask
        finally:
            self.last_peak_concurrency = sum(ep.limiter.peak for ep in pool)
            self.last_limits = [ep.limiter.limit for ep in pool]
            self.last_sent = {ep.url: ep.sent for ep in pool}
            for ep in pool:
                await ep.client.close()

    async def agenerate(
        self,
        queries: Sequence[Query],
        config: GenerationConfig | None = None,
        progress: Callable[[Response], None] | None = None,
    ) -> list[Response]:
        async with self.session(config) as ask:

            async def run(q: Query) -> Response:
                r = await ask(q)
                if progress:
                    progress(r)
                return r

            return list(await asyncio.gather(*(run(q) for q in queries)))

    def generate(
        self,
        queries: Sequence[Query],
        config: GenerationConfig | None = None,
        progress: Callable[[Response], None] | None = None,
    ) -> list[Response]:
        return asyncio.run(self.agenerate(queries, config, progress))


def _server_words(e: Exception) -> str:
    """The SDK's message plus the server's own reason when the SDK dropped it (FastAPI's
    ``{"detail": ...}``: a 422 says *which* field it refused)."""
    msg = str(getattr(e, "message", e))
    body = getattr(e, "body", None)
    detail = None
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("message") or body.get("error")
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail)[:500]
    return f"{msg} ({detail})" if detail and detail not in msg else msg
