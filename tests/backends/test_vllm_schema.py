"""Every request sovtp builds validates against vLLM's own ``ChatCompletionRequest``.

vLLM cannot be installed beside the test environment (it pins its own torch and an older
transformers), but its request model is plain pydantic.  This test fetches the vLLM wheel from
the package index (``pip download vllm==VERSION --no-deps``; never installed, never committed),
unpacks its Python sources into a cache, and in a subprocess imports
``vllm.entrypoints.openai.chat_completion.protocol`` (``vllm.entrypoints.openai.protocol`` in
older releases) with light stubs in place of what a request model does not need: vLLM's compiled
``_C``, its engine config, platforms, distributed and model-executor packages, and third-party
packages vLLM's modules import that are not installed here.  Torch, transformers, pydantic and
the openai types are the real ones.

What it proves, per output mode (staged, text, json, label) and flavour (``--server vllm`` and
``--server openai``): the body validates, **no field lands in ``model_extra``** (vLLM's request
model allows extra fields and drops them with a log line — the way the retired ``guided_*``
fields fail silently), and the constraint vLLM parses is the one the contract meant
(``structured_outputs.json``/``.choice``, or ``response_format`` json_schema).  What it cannot
prove: message parts — the ``messages`` field's union includes a stubbed type (openai_harmony's
message), so vLLM validates message content only later, when it renders the prompt.

Slow (tens of seconds: the wheel is ~340 MB, importing vLLM's modules costs torch's import and
more); cached under ``~/.cache/sovtp/test`` (or ``SOVTP_TEST_CACHE``).  ``SOVTP_VLLM_WHEEL``
points at a wheel already on disk; ``SOVTP_VLLM_VERSION`` picks another release.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sovtp.backends import GenerationConfig
from sovtp.backends.doctor import _body
from sovtp.backends.openai_compat import OpenAIBackend
from sovtp.contracts import OUTPUTS, constraint
from sovtp.prompting.build import build_query
from sovtp.prompting.spec import load_spec
from tests.prompting.test_prompts import fixed_clip

# in the default suite: the wheel is fetched from PyPI once (cached); without it the test skips

VLLM_VERSION = os.environ.get("SOVTP_VLLM_VERSION", "0.33.0")
CACHE = Path(os.environ.get("SOVTP_TEST_CACHE", Path.home() / ".cache" / "sovtp" / "test"))

HARNESS = r'''
import dataclasses, importlib.abc, importlib.machinery, json, sys, types

SRC = sys.argv[1]
sys.path.insert(0, SRC)
# vLLM packages a request model does not need (engine config, kernels, devices)
HEAVY = ("vllm._C", "vllm.config", "vllm.platforms", "vllm.distributed", "vllm.model_executor")


class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub

    def __getitem__(cls, item):
        return _Stub

    def __or__(cls, other):
        return _Stub

    __ror__ = __or__


class _Stub(metaclass=_Meta):
    """Anything: a class to subclass or annotate with, a value to call."""

    def __init__(self, *a, **k):
        pass

    def __init_subclass__(cls, **kw):
        pass

    def __call__(self, *a, **k):
        return _Stub()

    def __getattr__(self, name):
        return _Stub()

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        from pydantic_core import core_schema

        return core_schema.any_schema()


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub


STUBBED = []


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        heavy = any(name == h or name.startswith(h + ".") for h in HEAVY)
        if not heavy:
            if top in sys.stdlib_module_names or top == "vllm":
                return None
            if importlib.machinery.PathFinder.find_spec(top) is not None:
                return None  # installed: the real one
            f = sys._getframe(1)  # only imports made by vLLM's own modules
            while f is not None and (
                f.f_code.co_filename.startswith("<frozen") or "importlib" in f.f_code.co_filename
            ):
                f = f.f_back
            if f is None or not str(f.f_globals.get("__name__", "")).startswith("vllm"):
                return None
        STUBBED.append(name)
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        m = _StubModule(spec.name)
        m.__path__ = []
        return m

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Finder())
try:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
except ImportError:
    from vllm.entrypoints.openai.protocol import ChatCompletionRequest

out = []
for body in json.load(sys.stdin):
    try:
        r = ChatCompletionRequest.model_validate(body)
    except Exception as e:
        out.append({"ok": False, "error": f"{type(e).__name__}: {e}"[:500]})
        continue
    so = r.structured_outputs
    rf = r.response_format
    out.append({
        "ok": True,
        "extra": sorted((r.model_extra or {}).keys()),
        "structured_outputs": None if so is None else {
            k: v for k, v in dataclasses.asdict(so).items()
            if k in ("json", "choice", "regex", "grammar") and v is not None
        },
        "response_format": None if rf is None else rf.model_dump(mode="json", by_alias=True),
        "max_completion_tokens": r.max_completion_tokens,
        "n_messages": len(list(r.messages)),
    })
stub_fields = [n for n, f in ChatCompletionRequest.model_fields.items() if "_Stub" in repr(f.annotation)]
print("RESULT:" + json.dumps({"results": out, "stub_fields": stub_fields,
                             "stubbed": sorted({n.split(".")[0] for n in STUBBED})}))
'''


def _wheel() -> Path:
    given = os.environ.get("SOVTP_VLLM_WHEEL")
    if given:
        return Path(given)
    wheels = CACHE / "wheels"
    found = sorted(wheels.glob(f"vllm-{VLLM_VERSION}-*.whl"))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", f"vllm=={VLLM_VERSION}", "--no-deps"]
    try:
        p = subprocess.run([*cmd, "-d", str(wheels)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip download vllm=={VLLM_VERSION} took over 10 minutes")
    found = sorted(wheels.glob(f"vllm-{VLLM_VERSION}-*.whl"))
    if p.returncode != 0 or not found:
        pytest.skip(f"the vLLM {VLLM_VERSION} wheel cannot be had: {p.stderr.strip()[-300:]}")
    return found[0]


def _sources(wheel: Path) -> Path:
    """The wheel's Python files (not its 800 MB of kernels), unpacked once per wheel."""
    dest = CACHE / f"src-{wheel.stem}"
    done = dest / ".complete"
    if not done.exists():
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith("vllm/") and name.endswith(".py"):
                    z.extract(name, dest)
        done.touch()
    return dest


@pytest.fixture(scope="module")
def vllm_validate():
    src = _sources(_wheel())

    def validate(bodies: list[dict]) -> dict:
        p = subprocess.run(
            [sys.executable, "-c", HARNESS, str(src)],
            input=json.dumps(bodies),
            capture_output=True,
            text=True,
            timeout=600,
        )
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT:")), None)
        if line is None:
            pytest.fail(f"vLLM's request model did not import:\n{p.stderr[-3000:]}")
        return json.loads(line[len("RESULT:") :])

    return validate


def _bodies() -> list[tuple[str, str, dict, object]]:
    clip, frames = fixed_clip()
    q, images = build_query(clip, frames, load_spec("sovtp/full"), subject=2, query_id="q0")
    assert images
    out = []
    for server in ("vllm", "openai"):
        be = OpenAIBackend("http://127.0.0.1:1/v1", model="served-vlm", server=server)
        for mode in OUTPUTS:
            qm = q.model_copy(update={"output": mode})
            body = be.request_body(qm, GenerationConfig(max_tokens=256))
            out.append((server, mode, body, constraint(mode, q.labels)))
    return out


def test_every_mode_validates_against_vllms_chat_completion_request(vllm_validate):
    cases = _bodies()
    # two bodies that must be caught: the retired guided_* field (silently dropped by vLLM)
    # and two constraints at once (refused)
    base = cases[0][2]
    retired = {k: v for k, v in base.items() if k != "structured_outputs"}
    retired["guided_choice"] = ["happy", "sad"]
    both = dict(base, structured_outputs={"choice": ["a"], "json": {"type": "object"}})
    # and the doctor's own probes
    probes = [_body("m", [{"type": "text", "text": "q"}], 8, f) for f in ("vllm", "openai")]
    got = vllm_validate([c[2] for c in cases] + [retired, both, *probes])
    results = got["results"]
    assert got["stub_fields"] in ([], ["messages"]), got["stub_fields"]

    for (server, mode, body, cons), r in zip(cases, results, strict=False):
        where = f"--server {server} --output {mode}"
        assert r["ok"], f"{where}: {r['error']}"
        assert r["extra"] == [], f"{where}: vLLM would drop {r['extra']}"
        assert r["max_completion_tokens"] == 256 and r["n_messages"] == len(body["messages"])
        if server == "vllm":
            assert r["response_format"] is None
            want = None if cons is None else {cons[0]: cons[1]}
            assert r["structured_outputs"] == want, where
        else:
            assert r["structured_outputs"] is None
            if cons is not None and cons[0] == "json":
                rf = r["response_format"]
                assert rf["type"] == "json_schema", where
                assert rf["json_schema"]["schema"] == cons[1], where
            else:  # text; label has no choice in the OpenAI API
                assert r["response_format"] is None, where

    retired_r, both_r, *probe_rs = results[len(cases) :]
    assert retired_r["ok"] and retired_r["extra"] == ["guided_choice"]  # the silent drop, seen
    assert not both_r["ok"] and "one kind" in both_r["error"]
    assert probe_rs[0]["structured_outputs"] == {"choice": ["zqxjv-7", "qwxkz-3"]}
    assert probe_rs[1]["response_format"]["type"] == "json_schema"
    assert all(r["extra"] == [] for r in probe_rs)
