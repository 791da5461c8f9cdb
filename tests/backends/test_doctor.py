"""The doctor against loopback servers that honour, ignore or refuse each thing it probes.

The stand-in here is a real HTTP server (stdlib) that behaves like the servers met in practice:
vLLM ≥ 0.12 (honours ``structured_outputs`` and ``response_format``), vLLM < 0.12 (honours only
``guided_choice`` and ``response_format``), ``transformers serve`` (refuses ``structured_outputs``
with 422, ignores ``response_format``), an image limit (``--limit-mm-per-prompt``) and a text-only
model that drops image parts.  ``tests/backends/test_served.py`` runs the doctor against the real
``transformers serve``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sovtp.backends.doctor import (
    APPLIED,
    IGNORED,
    NONSENSE,
    REJECTED,
    UNCLEAR,
    UNTESTED,
    diagnose_sync,
)
from sovtp.backends.precheck import bench_warnings, check_before_bench


@dataclass
class Kind:
    honours: set[str] = field(
        default_factory=set
    )  # structured_outputs | response_format | guided_choice
    rejects: set[str] = field(default_factory=set)  # fields refused with 422
    max_images: int | None = None  # more images → 400
    drops_images: bool = False  # a text-only model: image parts cost no tokens
    content: str | None = None  # answer exactly this when unconstrained
    models: list[str] = field(default_factory=lambda: ["served-vlm"])


def _answer(kind: Kind, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    refused = kind.rejects & body.keys()
    if refused:
        return 422, {"detail": f"Unexpected fields in the request: {refused}"}
    parts = body["messages"][-1]["content"]
    n_img = sum(1 for p in parts if p.get("type") == "image_url")
    if kind.max_images is not None and n_img > kind.max_images:
        return 400, {"error": {"message": f"At most {kind.max_images} image(s) may be provided"}}
    text = "Blue." if kind.content is None else kind.content
    so = body.get("structured_outputs")
    rf = body.get("response_format")
    if so and "structured_outputs" in kind.honours:
        text = so["choice"][0] if "choice" in so else json.dumps({"answer": "x"})
    elif rf and "response_format" in kind.honours:
        props = rf["json_schema"]["schema"]["properties"]
        text = json.dumps({k: v["enum"][0] for k, v in props.items()})
    elif body.get("guided_choice") and "guided_choice" in kind.honours:
        text = body["guided_choice"][0]
    tokens = 12 + (0 if kind.drops_images else 64 * n_img)
    return 200, {
        "id": "x",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": tokens, "completion_tokens": 3, "total_tokens": tokens + 3},
    }


class StandIn:
    """``with StandIn(Kind(...)) as srv: srv.base_url``; ``srv.bodies`` holds what was sent."""

    def __init__(self, kind: Kind):
        self.kind = kind
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                models = [{"id": m, "object": "model", "created": 0} for m in outer.kind.models]
                self._send(200, {"object": "list", "data": models})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                self._send(*_answer(outer.kind, body))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


VLLM = Kind(honours={"structured_outputs", "response_format"})
OLD_VLLM = Kind(honours={"guided_choice", "response_format"})
TRANSFORMERS_SERVE = Kind(rejects={"structured_outputs"})
OPENAI_ONLY = Kind(honours={"response_format"}, rejects={"structured_outputs", "guided_choice"})


def test_a_server_that_honours_constraints_is_reported_applied():
    with StandIn(VLLM) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
    assert r.reachable and r.model == "served-vlm" and r.models == ["served-vlm"]
    assert r.structured == {"vllm": APPLIED, "openai": APPLIED, "guided": UNTESTED}
    assert r.structured_ok and r.recommended_server() == "vllm"
    assert r.images_per_prompt == 8 and not r.images_limit_found and r.images_seen is True
    assert r.advice() == [
        "Structured outputs are applied: use --server vllm (JSON schema and choice)."
    ]
    # the probes that went on the wire: vLLM's field at the top level, the nonsense choice
    so = [b for b in srv.bodies if "structured_outputs" in b]
    assert so and so[0]["structured_outputs"] == {"choice": list(NONSENSE)}
    assert [
        len([p for p in b["messages"][0]["content"] if p["type"] == "image_url"])
        for b in srv.bodies
        if "structured_outputs" not in b and "response_format" not in b
    ] == [0, 1, 2, 4, 8]
    text = "\n".join(r.lines())
    assert "up to 8 per prompt" in text and "structured_outputs (--server vllm): applied" in text
    assert r.latency_s() is not None and r.latency_s() > 0


def test_a_server_that_ignores_constraints_gets_no_structured():
    with StandIn(Kind()) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
    assert r.structured == {"vllm": IGNORED, "openai": IGNORED, "guided": IGNORED}
    assert not r.structured_ok and r.recommended_server() is None
    advice = " ".join(r.advice())
    assert "NOT applied" in advice and "--no-structured" in advice
    assert "'Blue.'" in next(p.detail for p in r.probes if p.name == "structured:vllm")


def test_transformers_serve_like_refuses_vllm_field_and_ignores_response_format():
    with StandIn(TRANSFORMERS_SERVE) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
    assert r.structured["vllm"] == REJECTED and r.structured["openai"] == IGNORED
    probe = next(p for p in r.probes if p.name == "structured:vllm")
    assert probe.status == 422 and "Unexpected fields" in probe.detail
    assert "--no-structured" in " ".join(r.advice())


def test_response_format_only_recommends_server_openai():
    with StandIn(OPENAI_ONLY) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
    assert r.structured == {"vllm": REJECTED, "openai": APPLIED, "guided": REJECTED}
    assert r.recommended_server() == "openai"
    assert any(a.startswith("Use --server openai") for a in r.advice())


def test_old_vllm_is_told_to_upgrade():
    with StandIn(OLD_VLLM) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
    assert r.structured == {"vllm": IGNORED, "openai": APPLIED, "guided": APPLIED}
    advice = " ".join(r.advice())
    assert "vLLM < 0.12" in advice and "--server openai" in advice


def test_image_limit_and_dropped_images():
    with StandIn(Kind(honours={"structured_outputs"}, max_images=2)) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
    assert r.images_per_prompt == 2 and r.images_limit_found
    assert [p.name for p in r.probes if p.name.startswith("images:")] == [
        "images:1",
        "images:2",
        "images:4",
    ]
    assert any("At most 2 image(s)" in a for a in r.advice())
    with StandIn(Kind(max_images=0)) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
    assert r.images_per_prompt == 0 and "refused a single image" in r.advice()[0]
    with StandIn(Kind(honours={"structured_outputs"}, drops_images=True)) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
    assert r.images_seen is False and "never sees" in r.advice()[0]


def test_an_empty_answer_is_inconclusive_not_ignored():
    with StandIn(Kind(content="")) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
    assert r.structured["vllm"] == UNCLEAR
    assert "Could not tell" in " ".join(r.advice())


def test_unreachable_and_unknown_model():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        r = diagnose_sync(f"http://127.0.0.1:{port}/v1", timeout_s=2)
    assert not r.reachable and r.error and "Cannot use" in r.advice()[0]
    assert bench_warnings(r) == [f"http://127.0.0.1:{port}/v1: {r.error}"]
    with StandIn(VLLM) as srv:
        r = diagnose_sync(srv.base_url, model="other", timeout_s=5)
    assert "--model other is not among the served models" in r.advice()[0]


def test_bench_warnings_follow_the_run_settings():
    with StandIn(TRANSFORMERS_SERVE) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
        (w,) = bench_warnings(r, server="vllm", output="staged")
        assert "rejected" in w and "--no-structured" in w
        (w,) = bench_warnings(r, server="openai", output="json")
        assert "ignored" in w and "--no-structured" in w
        assert bench_warnings(r, server="vllm", structured=False) == []
        assert bench_warnings(r, server="vllm", output="text") == []  # nothing constrained
    with StandIn(OPENAI_ONLY) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
        (w,) = bench_warnings(r, server="vllm", output="label")
        assert "use --server openai" in w
    with StandIn(VLLM) as srv:
        r = diagnose_sync(srv.base_url, timeout_s=5)
        assert bench_warnings(r, server="vllm", output="label") == []
        (w,) = bench_warnings(r, server="openai", output="label")
        assert "unconstrained with --server openai" in w


def test_check_before_bench_checks_every_endpoint_and_the_runs_image_count():
    with StandIn(VLLM) as good, StandIn(Kind(honours={"structured_outputs"}, max_images=2)) as few:
        urls = f"{good.base_url},{few.base_url}"
        assert check_before_bench(good.base_url, server="vllm", images_per_prompt=6) == []
        (w,) = check_before_bench(urls, server="vllm", images_per_prompt=6, timeout_s=5)
    assert w.startswith(few.base_url) and "carry 6 images" in w
    sent = [sum(p["type"] == "image_url" for p in b["messages"][0]["content"]) for b in few.bodies]
    assert 6 in sent and 8 not in sent  # the run's own count was tried, not the default ladder


@pytest.mark.parametrize("kind", [VLLM, TRANSFORMERS_SERVE])
def test_report_to_dict_is_json(kind):
    with StandIn(kind) as srv:
        d = diagnose_sync(srv.base_url, timeout_s=5).to_dict()
    assert json.loads(json.dumps(d))["advice"] == d["advice"]


class _Trickle(BaseHTTPRequestHandler):
    """A server that answers every request with a status line and headers, then one byte of
    body every 0.2 s for ever: each read succeeds, so a per-read timeout never fires."""

    def _trickle(self) -> None:
        import time

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        with contextlib.suppress(OSError):  # the client giving up is what the test wants
            for _ in range(3000):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)

    do_GET = do_POST = _trickle

    def log_message(self, *a: Any) -> None:
        pass


@pytest.fixture
def trickle_url():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def test_doctor_and_the_pre_run_check_honour_timeout_against_a_trickling_server(trickle_url):
    """Issue 24, item 4: httpx's timeout bounds each read, and a server trickling a byte every
    0.2 s never lets one read wait that long, so `sovtp doctor --timeout 3` and bench's pre-run
    check waited for ever.  Now each request has a whole-answer deadline.  Measured here: the
    check ends 2.1-2.5 s after it starts on --timeout 2 (openai imported first: its import
    alone took 2.7 s on the loaded 2 cores); the bound leaves 3 s for a loaded CI."""
    import subprocess
    import sys
    import time

    import openai  # noqa: F401  (imported before the clock starts)

    t0 = time.monotonic()
    r = diagnose_sync(trickle_url, timeout_s=2.0)
    assert time.monotonic() - t0 < 5.0
    assert not r.reachable and "timeout" in (r.error or "")
    t0 = time.monotonic()
    (w,) = check_before_bench(trickle_url, timeout_s=2.0)
    assert time.monotonic() - t0 < 5.0 and "timeout" in w
    # the command as a user runs it: its own process (imports included, hence the wider bound),
    # and the probe's own clock in the JSON report
    cmd = [sys.executable, "-m", "sovtp", "doctor", "--base-url", trickle_url, "--timeout", "2"]
    t0 = time.monotonic()
    res = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=120)
    assert time.monotonic() - t0 < 30.0
    assert res.returncode == 1, res.stderr
    (probe,) = json.loads(res.stdout)["probes"]
    assert probe["name"] == "models" and not probe["ok"] and probe["latency_s"] < 5.0
