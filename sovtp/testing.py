"""A real OpenAI-compatible HTTP server on loopback that stands in for ``vllm serve``.

Used by the tests and ``benchmarks/client_throughput.py``.  It speaks the chat-completions and
models endpoints (HTTP/1.1, keep-alive) and can be told to answer well, with 429 + Retry-After,
with 500, too slowly, with malformed JSON, or with a label outside the label set.  It serves at
most ``capacity`` requests at once, each taking ``latency_s`` — the shape of a GPU server.

It is one asyncio loop on a background thread, like uvicorn under vLLM: a freed slot goes to the
next waiting request at once.  (A thread-per-connection ``http.server`` version lost ~17 % of its
slot time to GIL hand-offs between handler threads, which capped a load benchmark below the ideal
it was meant to offer.)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Behaviour:
    mode: str = "good"  # good | 429 | 500 | slow | malformed | outside | reasoning
    fail_first: int = 0  # for 429/500: how many requests fail before it answers well
    retry_after: float = 0.05
    latency_s: float = 0.0
    capacity: int = 1_000_000
    label: str = "happy"
    model: str = "fake-vlm"
    record: bool = True  # keep every request body and headers (tests); load benchmarks don't
    content: str | None = None  # answer exactly this text (e.g. an LLM judge's JSON)


@dataclass
class ServerState:
    behaviour: Behaviour
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    count: int = 0
    in_flight: int = 0
    peak: int = 0
    waiting: int = 0  # received, waiting for a slot
    waiting_peak: int = 0
    busy_s: float = 0.0  # summed slot time: utilisation = busy_s / (capacity × wall)


def _answer(state: ServerState, k: int, body: dict[str, Any]) -> bytes:
    b = state.behaviour
    content = b.content or json.dumps(
        {
            "label": "bored" if b.mode == "outside" else b.label,
            "confidence": 0.9,
            "rationale": "AU6 and AU12 are active.",
            "cues": ["AU12"],
        }
    )
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if b.mode == "reasoning":
        msg["reasoning_content"] = "The lip corners are pulled up."
    return json.dumps(
        {
            "id": f"cmpl-{k}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", b.model),
            "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }
    ).encode()


class FakeOpenAIServer:
    """``with FakeOpenAIServer(Behaviour(...)) as srv: srv.base_url``"""

    def __init__(self, behaviour: Behaviour | None = None):
        self.state = ServerState(behaviour or Behaviour())
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the loopback server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._slots = asyncio.Semaphore(self.state.behaviour.capacity)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024)
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:  # end open connections (a "slow" request may still sleep) before closing
            self._server.close()
            tasks = asyncio.all_tasks(self._loop)
            for t in tasks:
                t.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for ln in lines[1:]:
                    if ":" in ln:
                        k, v = ln.split(":", 1)
                        headers[k.strip()] = v.strip()
                n = int({k.lower(): v for k, v in headers.items()}.get("content-length", 0))
                raw = await reader.readexactly(n) if n else b""
                code, body, extra = await self._route(method, path, headers, raw)
                out = [
                    f"HTTP/1.1 {code} X",
                    "Content-Type: application/json",
                    f"Content-Length: {len(body)}",
                ]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _route(self, method: str, path: str, headers: dict[str, str], raw: bytes):
        state, b = self.state, self.state.behaviour
        if method == "GET" and path.rstrip("/").endswith("/models"):
            data = [{"id": b.model, "object": "model", "created": 0, "owned_by": "sovtp"}]
            return 200, json.dumps({"object": "list", "data": data}).encode(), {}
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return 404, b'{"error": {"message": "not found"}}', {}
        body = json.loads(raw or b"{}")
        state.count += 1
        k = state.count
        if b.record:
            state.requests.append(body)
            state.headers.append(headers)
        if b.mode in ("429", "500") and k <= b.fail_first:
            code = int(b.mode)
            extra = {"Retry-After": f"{b.retry_after}"} if code == 429 else {}
            return code, json.dumps({"error": {"message": f"injected {code}"}}).encode(), extra
        state.waiting += 1
        state.waiting_peak = max(state.waiting_peak, state.waiting)
        async with self._slots:
            state.waiting -= 1
            state.in_flight += 1
            state.peak = max(state.peak, state.in_flight)
            t0 = time.perf_counter()
            try:
                await asyncio.sleep(b.latency_s if b.mode != "slow" else max(b.latency_s, 5.0))
            finally:
                state.in_flight -= 1
                state.busy_s += time.perf_counter() - t0
        if b.mode == "malformed":
            return 200, b'{"id": "x", "choices": [ {"message": ', {}
        return 200, _answer(state, k, body), {}
