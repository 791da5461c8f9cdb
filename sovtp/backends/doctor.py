"""``sovtp doctor``: what an OpenAI-compatible server really does with sovtp's requests.

A server can answer 200 and still ignore half of a request.  Recent vLLM silently drops the
retired ``guided_*`` fields; ``transformers serve`` logs "Ignoring unsupported fields in the
request: {'response_format'}" and answers unconstrained; a text-only model may accept an image
part and never see it.  A benchmark run on such a server looks healthy and measures the wrong
thing, so the doctor asks the server directly, one small probe at a time:

1. ``models``: ``GET /models`` (which model answers when none is named);
2. ``chat``: a text-only question (the baseline for latency and prompt tokens);
3. ``images:N``: the same question with 1, 2, 4, 8 small images until the server refuses, and
   whether the prompt grew (an image the model never sees costs no tokens);
4. structured outputs, each flavour sovtp can send, constrained to a nonsense token (``zqxjv-7``)
   that no model writes unconstrained — to a question whose honest answer is a colour.  The
   token in the answer proves the constraint was applied; anything else proves it was not:
   ``vllm`` (top-level ``structured_outputs: {"choice": [...]}``, ``--server vllm``), ``openai``
   (``response_format`` json_schema, ``--server openai``) and, where ``vllm`` fails, ``guided``
   (``guided_choice``: vLLM < 0.12, which sovtp no longer sends).

:func:`diagnose` returns a :class:`DoctorReport` whose :meth:`~DoctorReport.lines` and
:meth:`~DoctorReport.advice` are what the CLI prints; :func:`bench_warnings` compares a report
with the settings of a run (what ``bench`` warns about before it starts).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sovtp.redact import redact_url

NONSENSE: tuple[str, ...] = ("zqxjv-7", "qwxkz-3")
IMAGE_COUNTS: tuple[int, ...] = (1, 2, 4, 8)
QUESTION = "What colour is the sky on a clear day? Answer with one word."
# a status of one structured-outputs flavour
APPLIED, IGNORED, REJECTED, ERROR, UNCLEAR, UNTESTED = (
    "applied",
    "ignored",
    "rejected",
    "error",
    "inconclusive",
    "untested",
)
FLAVOURS: dict[str, str] = {
    "vllm": "structured_outputs (--server vllm)",
    "openai": "response_format json_schema (--server openai)",
    "guided": "guided_choice (vLLM < 0.12; retired)",
}


@dataclass
class Probe:
    """One request the doctor sent and what came of it."""

    name: str
    ok: bool
    detail: str = ""
    latency_s: float | None = None
    status: int | None = None  # the HTTP status of a refusal
    prompt_tokens: int | None = None


@dataclass
class DoctorReport:
    base_url: str
    model: str | None = None
    models: list[str] = field(default_factory=list)
    reachable: bool = False
    error: str | None = None  # why the server could not be used at all
    images_per_prompt: int = 0  # the most images one prompt carried without refusal
    images_limit_found: bool = False  # a refusal was seen (else the limit is ≥ the last tried)
    images_seen: bool | None = None  # the prompt grew with an image (None: no usage reported)
    structured: dict[str, str] = field(default_factory=lambda: dict.fromkeys(FLAVOURS, UNTESTED))
    probes: list[Probe] = field(default_factory=list)

    # -- verdicts ---------------------------------------------------------------------------
    @property
    def structured_ok(self) -> bool:
        return APPLIED in (self.structured["vllm"], self.structured["openai"])

    def recommended_server(self) -> str | None:
        """``vllm`` (choice and JSON schema), ``openai`` (JSON schema only) or None (neither is
        applied: run with ``--no-structured``)."""
        if self.structured["vllm"] == APPLIED:
            return "vllm"
        if self.structured["openai"] == APPLIED:
            return "openai"
        return None

    def latency_s(self) -> float | None:
        """The text-only answer's latency: the floor of every request of a run."""
        return next((p.latency_s for p in self.probes if p.name == "chat" and p.ok), None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recommended_server"] = self.recommended_server()
        d["advice"] = self.advice()
        return d

    # -- printing ---------------------------------------------------------------------------
    def lines(self) -> list[str]:
        """What works, one line per finding, then one line per probe (with its latency)."""
        out = [f"server      {self.base_url} ({'reachable' if self.reachable else 'UNREACHABLE'})"]
        if self.error:
            out.append(f"error       {self.error}")
        if self.models:
            out.append(f"models      {', '.join(self.models)}")
        if self.model:
            out.append(f"model       {self.model}")
        if not self.reachable:
            return out
        lat = self.latency_s()
        if lat is not None:
            out.append(f"latency     {lat:.2f} s for a short text answer")
        tried = [p for p in self.probes if p.name.startswith("images:")]
        if tried:
            n = self.images_per_prompt
            bound = "" if self.images_limit_found or not n else " (or more; not tried)"
            seen = {True: "", False: ", but the prompt did not grow: images dropped?", None: ""}
            out.append(f"images      up to {n} per prompt{bound}{seen[self.images_seen]}")
        for k, label in FLAVOURS.items():
            if self.structured[k] != UNTESTED:
                out.append(f"structured  {label}: {self.structured[k]}")
        out.append("probes:")
        for p in self.probes:
            lat = f"{p.latency_s:6.2f} s" if p.latency_s is not None else "      -"
            out.append(f"  {p.name:<18} {'ok  ' if p.ok else 'FAIL'} {lat}  {p.detail}")
        return out

    def advice(self) -> list[str]:
        """What to change, in the words of sovtp's options (empty: nothing to change)."""
        if not self.reachable:
            return [
                f"Cannot use {self.base_url}: {self.error}. Is the server running, and is the URL "
                "its /v1 root (e.g. http://host:8000/v1)?"
            ]
        out: list[str] = []
        if self.model and self.models and self.model not in self.models:
            out.append(
                f"--model {self.model} is not among the served models ({', '.join(self.models)})."
            )
        if not any(p.name == "chat" and p.ok for p in self.probes):
            out.append(
                "A plain text question failed: see the probes above; nothing else will work."
            )
            return out
        if any(p.name.startswith("images:") for p in self.probes):
            if self.images_per_prompt == 0:
                out.append(
                    "The server refused a single image: serve a vision-language model "
                    "(or use the offline FACS reasoner: no --base-url)."
                )
            elif self.images_seen is False:
                out.append(
                    "The server accepted images but the prompt did not grow: the model never sees "
                    "them (a text-only model?). Serve a vision-language model."
                )
            elif self.images_limit_found:
                n = self.images_per_prompt
                out.append(
                    f"At most {n} image(s) per prompt: keep prompts to {n} image(s) (fewer "
                    f"frames, e.g. --sampling uniform:{n}), or raise the server's limit (vLLM: "
                    "--limit-mm-per-prompt '{\"image\": 8}')."
                )
        out.extend(self._structured_advice())
        return out

    def _structured_advice(self) -> list[str]:
        s = self.structured
        why = "; ".join(
            f"{FLAVOURS[k].split(' (')[0]} {s[k]}" for k in ("vllm", "openai") if s[k] != UNTESTED
        )
        server = self.recommended_server()
        if server == "vllm":
            return ["Structured outputs are applied: use --server vllm (JSON schema and choice)."]
        out = []
        if s["guided"] == APPLIED:
            out.append(
                "This server applies only the retired guided_* fields (vLLM < 0.12), which sovtp "
                "no longer sends: upgrade vLLM to use --server vllm."
            )
        if server == "openai":
            out.append(
                "Use --server openai: response_format json_schema is applied, vLLM's "
                "structured_outputs is not. Label-only prompts (--output label) are then "
                "unconstrained: prefer --output staged or json."
            )
            return out
        if UNCLEAR in (s["vllm"], s["openai"]) and APPLIED not in (s["vllm"], s["openai"]):
            out.append(
                f"Could not tell whether structured outputs are applied ({why}): the answer was "
                "empty or cut short (a reasoning model?). Run the doctor with more tokens."
            )
            return out
        out.append(
            f"Structured outputs are NOT applied ({why}): run with --no-structured (the format "
            "is described in words only) and prefer --output text or staged; a constraint the "
            "server ignores would leave answers unconstrained while the run claims otherwise."
        )
        return out


# -- probing ------------------------------------------------------------------------------------
def _api_key(explicit: str | None) -> str:
    return (
        explicit or os.environ.get("SOVTP_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
    )


def _images(n: int, size: int = 64) -> list[str]:
    """``n`` small, distinct JPEG data URLs (a server that dedups identical images would
    otherwise see one)."""
    from PIL import Image

    base = Image.linear_gradient("L").resize((size, size))
    out = []
    for k in range(n):
        hue = (37 * k) % 256
        img = Image.merge("RGB", (base, base.rotate(90), Image.new("L", (size, size), hue)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80)
        out.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode())
    return out


def _error_text(e: Exception) -> str:
    """The server's own words for a refusal: OpenAI's ``{"error": {"message"}}``, FastAPI's
    ``{"detail"}``, or the SDK's message."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        text = body.get("message") or body.get("detail") or json.dumps(body)
        return text if isinstance(text, str) else json.dumps(text)
    if isinstance(body, str) and body:
        return body
    return str(getattr(e, "message", e))


class _Client:
    """One AsyncOpenAI client; every probe is a timed POST whose failure is a value."""

    def __init__(self, base_url: str, api_key: str | None, timeout_s: float):
        from openai import AsyncOpenAI

        self._key = _api_key(api_key)
        self.timeout_s = timeout_s
        self.client = AsyncOpenAI(
            base_url=base_url, api_key=self._key, max_retries=0, timeout=timeout_s
        )

    def scrub(self, text: str) -> str:
        if self._key and self._key != "EMPTY":
            text = text.replace(self._key, "***")
        return text

    async def models(self) -> list[str]:
        # a whole-request deadline: httpx's timeout bounds each read, so a server that trickles
        # a byte at a time would hold the check for ever (issue 24: 300 s on --timeout 3)
        page = await asyncio.wait_for(self.client.models.list(), self.timeout_s)
        return [m.id for m in page.data]

    async def chat(self, body: dict[str, Any]) -> tuple[dict[str, Any] | None, Probe]:
        """(the answer JSON or None, a Probe named by the caller) for one request."""
        import openai

        t0 = time.perf_counter()
        try:
            raw = await asyncio.wait_for(
                self.client.post(
                    "/chat/completions",
                    cast_to=dict,
                    content=json.dumps(body).encode(),
                    options={
                        "timeout": self.timeout_s,
                        "headers": {"Content-Type": "application/json"},
                    },
                ),
                self.timeout_s,
            )
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
            lat = time.perf_counter() - t0
            return None, Probe("", False, f"timeout: no whole answer in {self.timeout_s:g} s", lat)
        except openai.APIStatusError as e:
            msg = self.scrub(_error_text(e))[:200]
            lat = time.perf_counter() - t0
            return None, Probe("", False, f"HTTP {e.status_code}: {msg}", lat, e.status_code)
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            detail = self.scrub(f"{type(e).__name__}: {e}")[:200]
            return None, Probe("", False, detail, time.perf_counter() - t0)
        latency = time.perf_counter() - t0
        choices = raw.get("choices") if isinstance(raw, dict) else None
        if not choices:
            return None, Probe("", False, "the answer has no choices", latency_s=latency)
        usage = raw.get("usage") or {}
        return raw, Probe("", True, latency_s=latency, prompt_tokens=usage.get("prompt_tokens"))

    async def close(self) -> None:
        await self.client.close()


def _content(raw: dict[str, Any]) -> tuple[str, str | None]:
    choice = raw["choices"][0]
    return (choice.get("message") or {}).get("content") or "", choice.get("finish_reason")


PROBE_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": list(NONSENSE)}},
    "required": ["answer"],
    "additionalProperties": False,
}


def _body(model: str, content: Any, max_tokens: int, flavour: str | None = None) -> dict[str, Any]:
    """A probe's request, built by the backend a run uses (:meth:`OpenAIBackend.request_body`),
    so the doctor tests the very fields a run sends: ``vllm`` — vLLM's ``structured_outputs``
    choice of the nonsense tokens; ``openai`` — a ``response_format`` JSON schema whose one field
    must be one of them; ``guided`` — the retired ``guided_choice`` (vLLM < 0.12), which the
    backend no longer sends and the doctor adds by hand; None — no constraint."""
    from sovtp.backends.base import GenerationConfig
    from sovtp.backends.openai_compat import OpenAIBackend
    from sovtp.records import Query

    q = Query(
        id="doctor",
        messages=[{"role": "user", "content": content}],
        output="label" if flavour == "vllm" else "text",
        labels=list(NONSENSE) if flavour == "vllm" else [],
        meta={"json_schema": PROBE_SCHEMA} if flavour == "openai" else {},
    )
    be = OpenAIBackend(
        "http://doctor.invalid",
        model=model,
        api_key="EMPTY",
        server="vllm" if flavour == "vllm" else "openai",
    )
    cfg = GenerationConfig(
        max_tokens=max_tokens, temperature=0.0, seed=0, structured=flavour in ("vllm", "openai")
    )
    body = be.request_body(q, cfg)
    if flavour == "guided":
        body["guided_choice"] = list(NONSENSE)
    return body


def _verdict(raw: dict[str, Any] | None, probe: Probe) -> tuple[str, str]:
    """(status, detail) of one structured probe: the nonsense token in the answer is proof."""
    if raw is None:
        refused = probe.status is not None and 400 <= probe.status < 500
        return (REJECTED if refused else ERROR), probe.detail
    text, finish = _content(raw)
    if any(tok in text for tok in NONSENSE):
        return APPLIED, f"answered {text.strip()[:60]!r}"
    if not text.strip():
        return UNCLEAR, f"empty answer (finish_reason {finish})"
    return IGNORED, f"answered {text.strip()[:60]!r} (not the constrained token)"


async def diagnose(
    base_url: str,
    model: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 60.0,
    image_counts: Sequence[int] = IMAGE_COUNTS,
    max_tokens: int = 64,
) -> DoctorReport:
    """Probe one server (see the module docstring); every failure lands in the report.

    ``image_counts``: how many images to try in one prompt, in order, until one is refused;
    ``max_tokens``: the budget of a structured probe (a reasoning model needs more)."""
    # the report is printed and saved: credentials in the URL never reach it
    report = DoctorReport(base_url=redact_url(base_url.rstrip("/")), model=model)
    client = _Client(report.base_url, api_key, timeout_s)
    try:
        await _probe(client, report, sorted(set(image_counts)), max_tokens)
    finally:
        await client.close()
    return report


async def _probe(
    client: _Client, report: DoctorReport, image_counts: list[int], max_tokens: int
) -> None:
    import openai

    t0 = time.perf_counter()
    try:
        report.models = await client.models()
        report.probes.append(
            Probe("models", True, f"{len(report.models)} listed", time.perf_counter() - t0)
        )
    except (openai.APIConnectionError, openai.APITimeoutError, asyncio.TimeoutError) as e:
        what = f"{type(e).__name__}: {e}" if str(e) else f"timeout after {client.timeout_s:g} s"
        report.error = client.scrub(what)[:200]
        report.probes.append(Probe("models", False, report.error, time.perf_counter() - t0))
        return
    except Exception as e:  # a server without /models can still answer a named model
        detail = client.scrub(f"{type(e).__name__}: {e}")[:200]
        report.probes.append(Probe("models", False, detail, time.perf_counter() - t0))
        if not report.model:
            report.reachable, report.error = True, f"cannot list models ({detail}); name one"
            return
    report.reachable = True
    if not report.model:
        if not report.models:
            report.error = "the server lists no model"
            return
        report.model = report.models[0]
    model = report.model

    async def send(name: str, body: dict[str, Any]) -> tuple[dict[str, Any] | None, Probe]:
        raw, probe = await client.chat(body)
        probe.name = name
        report.probes.append(probe)
        return raw, probe

    # text only: the baseline (and, if it fails, the end)
    raw, chat = await send("chat", _body(model, [{"type": "text", "text": QUESTION}], 16))
    if raw is not None:
        chat.detail = f"answered {_content(raw)[0].strip()[:40]!r}"
    else:
        return
    # images, doubling until a refusal
    urls = _images(max(image_counts, default=0))
    first_tokens: int | None = None
    for n in (c for c in image_counts if c > 0):
        parts = [{"type": "image_url", "image_url": {"url": u}} for u in urls[:n]]
        parts.append({"type": "text", "text": QUESTION})
        raw, probe = await send(f"images:{n}", _body(model, parts, 8))
        if raw is None:
            report.images_limit_found = True
            break
        report.images_per_prompt = n
        probe.detail = f"accepted ({probe.prompt_tokens} prompt tokens)"
        if first_tokens is None:
            first_tokens = probe.prompt_tokens
    if first_tokens is not None and chat.prompt_tokens is not None:
        report.images_seen = first_tokens > chat.prompt_tokens
    # structured outputs, each flavour
    for flavour in ("vllm", "openai", "guided"):
        if flavour == "guided" and report.structured["vllm"] == APPLIED:
            continue
        text = [{"type": "text", "text": QUESTION}]
        raw, probe = await send(f"structured:{flavour}", _body(model, text, max_tokens, flavour))
        status, probe.detail = _verdict(raw, probe)
        probe.ok = status == APPLIED
        report.structured[flavour] = status


def diagnose_sync(base_url: str, **kwargs: Any) -> DoctorReport:
    """:func:`diagnose` for synchronous callers (the CLI)."""
    return asyncio.run(diagnose(base_url, **kwargs))
