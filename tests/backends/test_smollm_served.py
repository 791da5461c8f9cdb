"""A real instruction-tuned model behind a real server: ``transformers serve`` serving
SmolLM2-135M-Instruct (the resolver's ``smollm2-135m-instruct``, converted once; see
``tests/smollm.py``), beside the tiny random VLM of ``tests/backends/test_served.py``.

What it shows that the tiny VLM cannot: a model that answers in words, through the server's own
chat template and stop tokens; ``sovtp doctor`` on a text-only model (it drops images, ignores
``response_format``, refuses vLLM's ``structured_outputs``); a ``sovtp bench`` row against it;
and the failures a user meets against such a server, each with what to do.

Slow: a second process imports torch + transformers and loads the 135 M model (34 s to the
first /v1/models on the shared 2 cores under load); the module took 70 s in all here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.serving import free_port, transformers_serve
from tests.smollm import smollm_folder

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = """
import sys
folder, port = sys.argv[1], sys.argv[2]
sys.argv = ["transformers", "serve", folder, "--host", "127.0.0.1", "--port", port,
            "--device", "cpu", "--log-level", "warning"]
from transformers.cli.transformers import main
sys.exit(main())
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    for mod in ("transformers.cli.serve", "fastapi", "uvicorn"):
        pytest.importorskip(mod, reason="transformers serve needs the `serving` extra")
    folder = smollm_folder()
    tmp = tmp_path_factory.mktemp("smollm-served")
    port = free_port()
    log_path = tmp / "serve.log"
    # one torch thread, like the suite's own process: on 2 shared cores two OpenMP threads per
    # process wait on each other (measured here under load: a 311-token prefill took 48 s on
    # 2 threads, 2.7 s on 1)
    env = {"OMP_NUM_THREADS": "1"}
    with transformers_serve(LAUNCH, [str(folder), str(port)], port, log_path, env) as url:
        yield SimpleNamespace(base_url=url, model=str(folder), log=log_path, tmp=tmp)


def test_doctor_on_the_served_real_model(served):
    """The doctor tells what this server does: it lists the model, answers in words, takes
    images without the (text-only) model seeing them, refuses vLLM's field and ignores
    ``response_format`` — and advises --no-structured."""
    from sovtp.backends.doctor import APPLIED, IGNORED, REJECTED, diagnose_sync

    r = diagnose_sync(served.base_url, timeout_s=120, image_counts=(1,))
    assert r.reachable and r.models == [served.model]
    (chat,) = [p for p in r.probes if p.name == "chat"]
    assert chat.ok and chat.detail.startswith("answered '") and len(chat.detail) > 14
    assert r.images_seen is False  # the prompt did not grow with an image
    assert r.structured["vllm"] == REJECTED and r.structured["openai"] == IGNORED
    assert APPLIED not in r.structured.values()
    advice = " ".join(r.advice())
    assert "text-only" in advice and "--no-structured" in advice


def test_a_bench_row_against_the_served_real_model_and_the_fix_it_names(served):
    """One ``sovtp bench`` row (the CLI, as a user runs it) against the real served model.
    Asked for one label in 8 tokens without a constraint the server applies, the model talks on
    and is cut: the row is counted invalid, never guessed, and the run names the fix."""
    from sovtp.jsonl import iter_jsonl
    from sovtp.media.sample import make_sample

    clip = make_sample(served.tmp / "media")
    manifest = served.tmp / "m.jsonl"
    manifest.write_text(json.dumps({"id": "astro", "media": str(clip.name), "label": "happy"}))
    run = served.tmp / "run"
    cmd = [
        sys.executable,
        "-m",
        "sovtp",
        "bench",
        str(manifest),
        "--root",
        str(clip.parent),
        "--base-url",
        served.base_url,
        "-o",
        str(run),
        "-s",
        "uniform:1",
        "--no-pose",
        "--output",
        "label",
        "--max-tokens",
        "8",
        "--timeout",
        "300",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=served.tmp)
    out = res.stdout + res.stderr
    assert "the model does not see them" in out  # the pre-run check on a text-only model
    (row,) = list(iter_jsonl(run / "responses.jsonl"))
    resp = row.get("response") or row
    assert resp.get("error") is None and resp["finish_reason"] == "length"
    assert resp["usage"]["completion_tokens"] == 8 and resp["text"]  # real words, cut
    (pred,) = list(iter_jsonl(run / "predictions.jsonl"))
    assert pred["parse_status"] == "invalid" or pred["label"] in resp["text"].lower()
    if pred["parse_status"] == "invalid":
        assert res.returncode == 4 and "raise --max-tokens" in out, out[-1500:]


def test_vllm_flavour_against_the_served_model_says_use_server_openai(served):
    """``--server vllm`` against a server that is not vLLM: a 422 on ``structured_outputs``,
    and the cause a run prints says what to do."""
    from sovtp.backends import GenerationConfig, get_backend
    from sovtp.engine.outcome import likely_cause
    from sovtp.records import Query

    q = Query(
        id="q",
        messages=[{"role": "user", "content": [{"type": "text", "text": "How do you feel?"}]}],
        labels=["happy", "sad"],
        output="label",
    )
    be = get_backend("openai", base_url=served.base_url, server="vllm", max_retries=0)
    (r,) = be.generate([q], GenerationConfig(max_tokens=4))
    assert r.error and "422" in r.error
    cause = likely_cause([{"error": r.error}], [])
    assert "not vLLM" in cause and "--server openai" in cause
