"""A real OpenAI-compatible HTTP server on loopback that stands in for ``vllm serve``.

Used by the tests and ``benchmarks/client_throughput.py``.  It speaks the chat-completions and
models endpoints and can be told to answer well, with 429 + Retry-After, with 500, too slowly,
with malformed JSON, or with a label outside the label set.  It serves at most ``capacity``
requests at once, each taking ``latency_s`` — the shape of a real GPU server.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@dataclass
class ServerState:
    behaviour: Behaviour
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    count: int = 0
    in_flight: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    slots: threading.Semaphore | None = None


def _handler(state: ServerState):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.rstrip("/").endswith("/models"):
                m = state.behaviour.model
                self._send(
                    200,
                    json.dumps(
                        {
                            "object": "list",
                            "data": [
                                {"id": m, "object": "model", "created": 0, "owned_by": "sovtp"}
                            ],
                        }
                    ).encode(),
                )
            else:
                self._send(404, b'{"error": {"message": "not found"}}')

        def do_POST(self):
            n = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(n) or b"{}")
            b = state.behaviour
            with state.lock:
                state.count += 1
                k = state.count
                state.requests.append(body)
                state.headers.append(dict(self.headers))
            if b.mode in ("429", "500") and k <= b.fail_first:
                code = int(b.mode)
                hdr = {"Retry-After": f"{b.retry_after}"} if code == 429 else {}
                self._send(
                    code, json.dumps({"error": {"message": f"injected {code}"}}).encode(), hdr
                )
                return
            assert state.slots is not None
            with state.slots:
                with state.lock:
                    state.in_flight += 1
                    state.peak = max(state.peak, state.in_flight)
                try:
                    time.sleep(b.latency_s if b.mode != "slow" else max(b.latency_s, 5.0))
                finally:
                    with state.lock:
                        state.in_flight -= 1
            if b.mode == "malformed":
                self._send(200, b'{"id": "x", "choices": [ {"message": ')
                return
            label = "bored" if b.mode == "outside" else b.label
            content = json.dumps(
                {
                    "label": label,
                    "confidence": 0.9,
                    "rationale": "AU6 and AU12 are active.",
                    "cues": ["AU12"],
                }
            )
            msg: dict[str, Any] = {"role": "assistant", "content": content}
            if b.mode == "reasoning":
                msg["reasoning_content"] = "The lip corners are pulled up."
            resp = {
                "id": f"cmpl-{k}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", b.model),
                "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }
            self._send(200, json.dumps(resp).encode())

    return H


class FakeOpenAIServer:
    """``with FakeOpenAIServer(Behaviour(...)) as srv: srv.base_url``"""

    def __init__(self, behaviour: Behaviour | None = None):
        self.state = ServerState(behaviour or Behaviour())
        self.state.slots = threading.Semaphore(self.state.behaviour.capacity)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 1024
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
