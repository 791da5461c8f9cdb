"""Backends through real servers and real code paths: a loopback OpenAI-compatible server, the
FACS reasoner, the transformers path on a tiny random Qwen2-VL, vLLM where it imports."""

from __future__ import annotations

import json
import time

import pytest

from sovtp.backends import GenerationConfig, get_backend
from sovtp.errors import BackendError
from sovtp.prompting.build import build_query
from sovtp.prompting.spec import load_spec
from sovtp.scoring.parse import parse_answer
from sovtp.testing import Behaviour, FakeOpenAIServer
from tests.prompting.test_prompts import fixed_clip


def _queries(n=1, spec="sovtp/full", subject=2):
    clip, frames = fixed_clip()
    s = load_spec(spec)
    return [build_query(clip, frames, s, subject=subject, query_id=f"q{i}")[0] for i in range(n)]


def test_good_answer_payload_and_parse():
    with FakeOpenAIServer(Behaviour(mode="reasoning")) as srv:
        be = get_backend("openai", base_url=srv.base_url, api_key="sk-secret-123")
        (r,) = be.generate(_queries(), GenerationConfig(max_tokens=64, seed=7))
        body = srv.state.requests[0]
    assert r.error is None and be.model == "fake-vlm"  # discovered from /v1/models
    assert r.reasoning == "The lip corners are pulled up." and r.usage.total_tokens == 120
    assert body["max_completion_tokens"] == 64 and body["seed"] == 7 and body["temperature"] == 0.0
    parts = body["messages"][-1]["content"]
    assert parts[0]["type"] == "image_url" and parts[0]["image_url"]["url"].startswith(
        "data:image/jpeg;base64,"
    )
    assert parts[-1]["type"] == "text"
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["type"] == "json_schema"
    assert schema["properties"]["label"]["enum"] == [
        "happy",
        "sad",
        "neutral",
        "angry",
        "surprise",
        "disgust",
        "fear",
    ]
    assert "structured_outputs" not in body
    pred = parse_answer(r.text, _queries()[0].labels)
    assert pred.label == "happy" and pred.parse_status == "ok"
    assert "sk-secret-123" not in repr(be)


def test_vllm_structured_outputs_in_extra_body():
    with FakeOpenAIServer() as srv:
        be = get_backend("openai", base_url=srv.base_url, model="m", server="vllm")
        q = _queries()[0]
        lq = q.model_copy(update={"output": "label"})
        be.generate([q, lq])
        bodies = sorted(srv.state.requests, key=lambda b: "choice" in json.dumps(b))
    assert bodies[0]["structured_outputs"]["json"]["properties"]["label"]["enum"][0] == "happy"
    assert bodies[1]["structured_outputs"] == {"choice": q.labels}
    assert all("guided_choice" not in b and "guided_json" not in b for b in bodies)


def test_429_retry_after_is_honoured():
    with FakeOpenAIServer(Behaviour(mode="429", fail_first=2, retry_after=0.3)) as srv:
        be = get_backend("openai", base_url=srv.base_url, model="m", backoff_s=0.0)
        t = time.perf_counter()
        (r,) = be.generate(_queries())
        took = time.perf_counter() - t
    assert r.error is None and srv.state.count == 3
    assert took >= 0.55  # two waits of 0.3 s, as the server asked


def test_500_retries_then_gives_up_as_a_value():
    with FakeOpenAIServer(Behaviour(mode="500", fail_first=100)) as srv:
        be = get_backend(
            "openai",
            base_url=srv.base_url,
            model="m",
            max_retries=2,
            backoff_s=0.01,
            api_key="sk-secret-123",
        )
        rs = be.generate(_queries(2))
    assert all(r.error and "500" in r.error for r in rs)
    assert srv.state.count == 6  # 1 + 2 retries each
    assert all("sk-secret-123" not in (r.error or "") for r in rs)


def test_slow_server_times_out_and_deadline_bounds_the_run():
    with FakeOpenAIServer(Behaviour(mode="slow")) as srv:
        be = get_backend("openai", base_url=srv.base_url, model="m", timeout_s=0.3, max_retries=0)
        (r,) = be.generate(_queries())
        assert r.error and r.error.startswith("timeout")  # the whole exchange, cut at 0.3 s
        be = get_backend(
            "openai", base_url=srv.base_url, model="m", timeout_s=10, deadline_s=0.5, max_retries=5
        )
        t = time.perf_counter()
        (r,) = be.generate(_queries())
        assert r.error and time.perf_counter() - t < 2.5


def test_malformed_and_outside_label_answers():
    with FakeOpenAIServer(Behaviour(mode="malformed")) as srv:
        (r,) = get_backend("openai", base_url=srv.base_url, model="m", max_retries=0).generate(
            _queries()
        )
    assert r.error
    with FakeOpenAIServer(Behaviour(mode="outside")) as srv:
        (r,) = get_backend("openai", base_url=srv.base_url, model="m").generate(_queries())
    pred = parse_answer(r.text, _queries()[0].labels)
    assert r.error is None and pred.label is None and pred.parse_status == "invalid"


def test_concurrency_is_bounded_and_adaptive_backs_off():
    with FakeOpenAIServer(Behaviour(latency_s=0.05)) as srv:
        be = get_backend("openai", base_url=srv.base_url, model="m", concurrency=4)
        rs = be.generate(_queries(20))
    assert (
        all(r.error is None for r in rs) and srv.state.peak <= 4 and be.last_peak_concurrency == 4
    )
    # six 429s halve the limit (8 → 1); twelve answers grow it back one step per window, so the
    # session ends below where it started — and a fixed limit stays where it was
    for adaptive, below_start in ((True, True), (False, False)):
        with FakeOpenAIServer(Behaviour(mode="429", fail_first=6, retry_after=0.05)) as srv:
            be = get_backend(
                "openai", base_url=srv.base_url, model="m", concurrency=8, adaptive=adaptive
            )
            rs = be.generate(_queries(12))
        assert all(r.error is None for r in rs) and srv.state.count == 18
        (limit,) = be.last_limits
        assert (limit < 8) is below_start and limit >= 1


def test_facs_reasoner_is_deterministic_and_cites_aus():
    q1 = _queries(spec="sovtp/full", subject=1)[0]
    q2 = _queries(spec="sovtp/full", subject=2)[0]
    be = get_backend("facs")
    a, b = be.generate([q1, q2])
    assert (a.text, b.text) == tuple(r.text for r in be.generate([q1, q2]))
    pa, pb = parse_answer(a.text, q1.labels), parse_answer(b.text, q2.labels)
    assert pa.label == "angry" and "AU4" in pa.rationale
    assert pb.label == "happy" and "AU12" in pb.rationale
    assert set(pa.scores) == set(q1.labels) and abs(sum(pa.scores.values()) - 1) < 0.01


def test_unknown_backend_and_missing_vllm():
    with pytest.raises(BackendError, match="unknown backend"):
        get_backend("nope")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match=r"sovtp\[vllm\]"):
            get_backend("vllm", model="x")


def test_vllm_offline_where_it_imports():
    pytest.importorskip(
        "vllm", reason="vllm is GPU-only and lives in its own environment (extra `vllm`)"
    )
    from sovtp.backends.vllm_offline import VLLMOfflineBackend

    be = VLLMOfflineBackend.__new__(VLLMOfflineBackend)
    q = _queries()[0].model_copy(update={"output": "label"})
    sp = be.sampling_params(q, GenerationConfig())
    assert sp.structured_outputs.choice == q.labels


def test_transformers_backend_on_a_tiny_random_qwen2vl(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("torchvision")
    from tests.tiny_vlm import build_tiny_qwen2vl

    folder = build_tiny_qwen2vl(tmp_path / "tiny")
    be = get_backend(
        "transformers", model=str(folder), device_map="cpu", dtype="float32", batch_size=2
    )
    qs = _queries(3, spec="ladder/plain")
    rs = be.generate(qs, GenerationConfig(max_tokens=6))
    assert [r.query_id for r in rs] == ["q0", "q1", "q2"]
    assert all(
        r.error is None and r.usage.completion_tokens and r.usage.prompt_tokens > 20 for r in rs
    )
    # max_tokens reaches generate(): an answer cut by length has exactly 6 new tokens
    assert all(r.finish_reason in ("stop", "length") for r in rs)
    assert all(
        (r.usage.completion_tokens == 6)
        if r.finish_reason == "length"
        else r.usage.completion_tokens <= 6
        for r in rs
    )
    # the parser's verdict on noise: a label only with an ok/repaired parse, never invented
    for r in rs:
        p = parse_answer(r.text, qs[0].labels)
        assert (p.label is None) == (p.parse_status == "invalid")
        assert p.label is None or p.label in r.text.lower()


def test_endpoints_share_the_load_and_a_dead_one_is_routed_around():
    import socket

    from sovtp.records import Query

    qs = [
        Query(
            id=f"q{i}",
            messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            labels=["happy", "sad"],
        )
        for i in range(60)
    ]
    with (
        FakeOpenAIServer(Behaviour(latency_s=0.02, capacity=4)) as a,
        FakeOpenAIServer(Behaviour(latency_s=0.02, capacity=4)) as b,
    ):
        be = get_backend("openai", base_url=[a.base_url, b.base_url], model="m", concurrency=4)
        assert all(r.ok for r in be.generate(qs))
        assert a.state.count + b.state.count == 60 and min(a.state.count, b.state.count) >= 20
        with socket.socket() as s:  # a port nobody listens on: a server that is down
            s.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        be = get_backend("openai", base_url=f"{dead},{a.base_url}", model="m", backoff_s=0.01)
        n0 = a.state.count
        assert all(r.ok for r in be.generate(qs))  # retries move to the live endpoint
        assert a.state.count - n0 == 60 and be.last_sent[dead] == 0


def test_capabilities_are_declared_and_no_caller_probes_for_methods():
    """A server backend says it is one (``capabilities.remote``): model discovery, its request
    body and its streaming session follow the declaration — callers probed with hasattr in five
    places, so a backend that grew a ``session`` method changed how a run was driven."""
    import re
    from pathlib import Path

    from sovtp.backends.base import get_backend

    assert get_backend("openai", base_url="http://127.0.0.1:9/v1", model="m").capabilities.remote
    assert not get_backend("facs").capabilities.remote
    root = Path(__file__).resolve().parents[2] / "sovtp"
    probes = [
        f"{p.relative_to(root)}:{n}"
        for p in root.rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\bhasattr\(", line)
    ]
    assert probes == [], probes


def test_the_wire_body_is_json_dumps_byte_for_byte_with_the_images_spliced_in(monkeypatch):
    """The request body a server receives is exactly ``json.dumps(body)``: images spliced in as
    bytes when JSON would write them unchanged, encoded as usual when it would not (a quote, a
    backslash, a control character or non-ASCII in a URL), text escaped as always."""
    import base64
    import json

    from sovtp.backends.wire import wire_json

    b64 = "data:image/jpeg;base64," + base64.b64encode(bytes(range(256)) * 40).decode()
    odd = ['data:image/png;base64,a"b', "data:x\\y", "data:a\nb", "data:é", "https://x/y.png"]
    parts = [{"type": "text", "text": 'say "hi" \\ @@sovtp-image-'}]
    parts += [{"type": "image_url", "image_url": {"url": u}} for u in [b64, *odd, b64]]
    body = {
        "model": "m",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": parts}],
        "seed": 0,
    }
    assert wire_json(body) == json.dumps(body).encode()
    assert json.loads(wire_json(body)) == body
    assert wire_json({"model": "m", "messages": []}) == b'{"model": "m", "messages": []}'
    # a prompt that happens to quote this call's placeholder: encoded the plain way
    import sovtp.backends.wire as oc

    monkeypatch.setattr(oc.os, "urandom", lambda n: b"\0" * n)
    quoting = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "@@sovtp-image-" + "00" * 8 + "-0@@"},
                    {"type": "image_url", "image_url": {"url": b64}},
                ],
            }
        ]
    }
    assert wire_json(quoting) == json.dumps(quoting).encode()
