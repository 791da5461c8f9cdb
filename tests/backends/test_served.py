"""sovtp against a real server and a real (tiny) VLM: ``transformers serve``.

``transformers serve`` (transformers' own OpenAI-compatible server, extra ``serving``) serves
the tiny random Qwen2-VL of ``tests/tiny_vlm.py`` from a temp folder: the real HTTP stack
(uvicorn + FastAPI), the real chat template, image processor and ``generate``.  It is also a
server that drops constraints: it answers a request with ``response_format`` as if the field
were not there (logging "Ignoring unsupported fields in the request: {'response_format'}") and
refuses vLLM's ``structured_outputs`` with 422 — what the doctor exists to find.

One subprocess builds the model and runs the ``transformers`` CLI's own entry point
(``transformers serve FOLDER``), so torch is imported once; the module-scoped fixture waits for
``/v1/models`` within a bound and ends the server on teardown.  The model's words are noise:
the tests assert the plumbing and the verdicts, never the words.

Slow: the module costs ~23 s of CPU here (a second process imports torch and transformers, builds
the model, starts uvicorn), 31-59 s of wall time on the shared 2 cores.  Run with ``-m slow``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sovtp.backends import GenerationConfig, get_backend
from sovtp.backends.doctor import APPLIED, IGNORED, REJECTED, diagnose_sync
from sovtp.backends.precheck import bench_warnings
from sovtp.prompting.build import build_query
from sovtp.prompting.spec import load_spec
from sovtp.scoring.parse import predict
from tests.prompting.test_prompts import fixed_clip
from tests.serving import free_port, transformers_serve

# a real server (transformers serve) and a real tiny VLM: in the default suite on purpose
ROOT = Path(__file__).resolve().parents[2]
LAUNCH = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.tiny_vlm import build_tiny_qwen2vl
folder, port = sys.argv[2], sys.argv[3]
build_tiny_qwen2vl(Path(folder))
sys.argv = ["transformers", "serve", folder, "--host", "127.0.0.1", "--port", port,
            "--device", "cpu", "--log-level", "warning"]
from transformers.cli.transformers import main
sys.exit(main())
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    for mod in ("transformers.cli.serve", "torchvision", "fastapi", "uvicorn"):
        pytest.importorskip(mod, reason="transformers serve needs the `serving` extra")
    tmp = tmp_path_factory.mktemp("served")
    folder, port = tmp / "tiny-qwen2vl", free_port()
    log_path = tmp / "serve.log"
    with transformers_serve(LAUNCH, [str(ROOT), str(folder), str(port)], port, log_path) as url:
        yield SimpleNamespace(base_url=url, model=str(folder), log=log_path)


def _query(output: str):
    clip, frames = fixed_clip()
    q, images = build_query(clip, frames, load_spec("sovtp/full"), subject=2, query_id="q0")
    assert images  # a prompt with pixels in it
    return q.model_copy(update={"output": output})


def test_a_sovtp_query_with_images_answers_through_transformers_serve(served):
    q = _query("staged")
    be = get_backend("openai", base_url=served.base_url, server="openai", timeout_s=60)
    (r,) = be.generate([q], GenerationConfig(max_tokens=12))
    assert be.model == served.model  # discovered from /v1/models
    assert r.error is None, r.error
    assert r.usage.prompt_tokens and r.usage.prompt_tokens > 64  # the images reached the model
    assert r.usage.completion_tokens and r.usage.completion_tokens <= 12
    pred = predict(r, q.labels, sample_id="s", system="served", variant="staged")
    assert pred.error is None and pred.parse_status in ("ok", "repaired", "invalid")
    assert pred.label is None or pred.label in q.labels
    # the schema went out and was dropped: transformers serve says so in its log
    assert "Ignoring unsupported fields in the request: {'response_format'}" in (
        served.log.read_text()
    )


def test_vllm_flavour_is_refused_and_no_structured_answers(served):
    q = _query("label")
    be = get_backend("openai", base_url=served.base_url, server="vllm", max_retries=0)
    (refused,) = be.generate([q], GenerationConfig(max_tokens=4))
    assert refused.error and "422" in refused.error and "structured_outputs" in refused.error
    pred = predict(refused, q.labels, sample_id="s", system="served", variant="label")
    assert pred.parse_status == "invalid" and pred.error  # counted as invalid, not dropped
    # what the doctor advises (--no-structured) makes the same query answer
    (r,) = be.generate([q], GenerationConfig(max_tokens=4, structured=False))
    assert r.error is None and r.usage.completion_tokens


def test_doctor_finds_that_transformers_serve_drops_constraints(served):
    r = diagnose_sync(served.base_url, timeout_s=60)
    assert r.reachable and r.model == served.model and r.models == [served.model]
    assert r.structured["vllm"] == REJECTED  # 422: Unexpected fields ... structured_outputs
    assert r.structured["openai"] == IGNORED  # 200, answered unconstrained
    assert APPLIED not in r.structured.values() and r.recommended_server() is None
    advice = " ".join(r.advice())
    assert "NOT applied" in advice and "--no-structured" in advice
    assert r.images_per_prompt == 8 and r.images_seen is True  # the prompt grows per image
    assert all(p.latency_s is not None for p in r.probes)
    (w,) = bench_warnings(r, server="vllm", output="staged")
    assert "--no-structured" in w
    assert bench_warnings(r, server="vllm", structured=False) == []


def test_a_system_given_no_model_is_named_by_what_a_real_server_serves(served):
    """bench names `--base-url URL` without `--model` by the model the server lists: against
    transformers serve (not the loopback stand-in) that is the folder it serves."""
    from sovtp.engine.config import BenchConfig, SystemSpec
    from sovtp.recipes.bench import name_served_models

    cfg = BenchConfig(data="x", systems=[SystemSpec.parse(f"openai@{served.base_url}")])
    (s,) = name_served_models(cfg).systems
    assert s.options["model"] == served.model, s
    assert s.name == "openai:tiny-qwen2vl"
