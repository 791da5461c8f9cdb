"""Test media and stand-ins: a real OpenAI-compatible HTTP server on loopback that stands in for
``vllm serve``, synthesised speech (:func:`speech`) and real recorded speech with reference
transcripts (:func:`real_speech`, resolved from PyPI like a model file).

Used by the tests and ``benchmarks/client_throughput.py``.  It speaks the chat-completions and
models endpoints (HTTP/1.1, keep-alive) and can be told to answer well, with 429 + Retry-After,
with 500 or 401, too slowly, with malformed JSON, or with a label outside the label set — and, to
test that a client survives a bad network, to hang, to trickle its answer a byte at a time, to
send half a body, or to reset the connection.  Faults come as one ``mode`` for every request, a
``script`` (the k-th request gets ``script[k-1]``), or ``chaos`` (each request draws a fault at
random with the given probabilities, seeded).  It serves at
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

FAULTS = ("429", "500", "401", "slow", "hang", "trickle", "half", "reset", "malformed")


@dataclass
class Behaviour:
    # good | outside | reasoning, or a fault: 429 | 500 | 401 | slow | hang | trickle | half |
    # reset | malformed
    mode: str = "good"
    fail_first: int = 0  # for 429/500: how many requests fail before it answers well
    script: list[str] | None = None  # the k-th chat request's mode (then ``mode``)
    chaos: dict[str, float] | None = None  # fault → probability per request
    seed: int = 0  # for chaos
    hang_s: float = 3600.0  # "hang": how long the server sits on the request
    trickle_s: float = 0.2  # "trickle": seconds between the answer's bytes
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
    queries: list[str] = field(default_factory=list)  # each request's URL query string
    arrived: list[float] = field(default_factory=list)  # time.perf_counter() of each request
    count: int = 0
    in_flight: int = 0
    peak: int = 0
    waiting: int = 0  # received, waiting for a slot
    waiting_peak: int = 0
    busy_s: float = 0.0  # summed slot time: utilisation = busy_s / (capacity × wall)
    faults: dict[str, int] = field(default_factory=dict)  # injected faults by kind
    good: int = 0  # requests answered well


def _answer(state: ServerState, k: int, body: dict[str, Any], mode: str | None = None) -> bytes:
    """The k-th answer; ``mode`` is this request's (a script's entry), else the behaviour's."""
    b = state.behaviour
    mode = mode or b.mode
    content = b.content or json.dumps(
        {
            "label": "bored" if mode == "outside" else b.label,
            "confidence": 0.9,
            "rationale": "AU6 and AU12 are active.",
            "cues": ["AU12"],
        }
    )
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if mode == "reasoning":
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
        import random

        self.state = ServerState(behaviour or Behaviour())
        self._rng = random.Random(self.state.behaviour.seed)
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
                code, body, extra, how = await self._route(method, path, headers, raw)
                if how == "reset":  # no answer at all: the client sees the connection drop
                    writer.transport.abort()
                    return
                out = [
                    f"HTTP/1.1 {code} X",
                    "Content-Type: application/json",
                    f"Content-Length: {len(body)}",
                ]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode())
                if how == "half":  # a torn answer: half the promised body, then the end
                    writer.write(body[: len(body) // 2])
                    await writer.drain()
                    writer.transport.abort()
                    return
                if how == "trickle":  # every byte arrives, slowly: no single read times out
                    for i in range(len(body)):
                        writer.write(body[i : i + 1])
                        await writer.drain()
                        await asyncio.sleep(self.state.behaviour.trickle_s)
                else:
                    writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:  # the server stops while a request hangs or trickles
            pass
        finally:
            writer.close()

    def _mode(self, k: int) -> str:
        b = self.state.behaviour
        if b.script is not None and k <= len(b.script):
            return b.script[k - 1]
        if b.chaos:
            x = self._rng.random()
            for fault, p in b.chaos.items():
                if x < p:
                    return fault
                x -= p
            return "good"
        if b.mode in ("429", "500") and k > b.fail_first:
            return "good"
        return b.mode

    async def _route(self, method: str, path: str, headers: dict[str, str], raw: bytes):
        state, b = self.state, self.state.behaviour
        path, _, query = path.partition("?")  # a real server routes on the path alone
        state.queries.append(query)
        if method == "GET" and path.rstrip("/").endswith("/models"):
            data = [{"id": b.model, "object": "model", "created": 0, "owned_by": "sovtp"}]
            return 200, json.dumps({"object": "list", "data": data}).encode(), {}, "normal"
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return 404, b'{"error": {"message": "not found"}}', {}, "normal"
        body = json.loads(raw or b"{}")
        state.count += 1
        k = state.count
        if b.record:
            state.requests.append(body)
            state.headers.append(headers)
            state.arrived.append(time.perf_counter())
        mode = self._mode(k)
        if mode in FAULTS:
            state.faults[mode] = state.faults.get(mode, 0) + 1
        if mode in ("429", "500", "401"):
            code = int(mode)
            extra = {"Retry-After": f"{b.retry_after}"} if code == 429 else {}
            err = json.dumps({"error": {"message": f"injected {code}"}}).encode()
            return code, err, extra, "normal"
        if mode == "reset":
            return 0, b"", {}, "reset"
        if mode == "hang":  # a request lost inside the server: it holds no slot (a real server
            await asyncio.sleep(b.hang_s)  # drops a request whose client went away)
        state.waiting += 1
        state.waiting_peak = max(state.waiting_peak, state.waiting)
        async with self._slots:
            state.waiting -= 1
            state.in_flight += 1
            state.peak = max(state.peak, state.in_flight)
            t0 = time.perf_counter()
            delay = max(b.latency_s, 5.0) if mode == "slow" else b.latency_s
            try:
                await asyncio.sleep(delay)
            finally:
                state.in_flight -= 1
                state.busy_s += time.perf_counter() - t0
        if mode == "malformed":
            return 200, b'{"id": "x", "choices": [ {"message": ', {}, "normal"
        answer = _answer(state, k, body, mode)
        if mode in ("trickle", "half"):
            return 200, answer, {}, mode
        state.good += 1
        return 200, answer, {}, "normal"


def speech(text: str, seconds: float, rate: int = 16000, wpm: int = 150, pitch_hz: float = 130.0):
    """Mono float32 speech of exactly ``seconds`` at ``rate``: espeak-ng saying ``text`` when it
    is installed (``./run test`` installs it), else a vowel-like pulse train at ``pitch_hz``
    through a formant resonator — either way a signal with a pitch and a spectral envelope, for
    tests of prosody, anonymisation and de-identified media (nothing third-party is recorded)."""
    import shutil
    import subprocess

    import numpy as np

    n = int(seconds * rate)
    exe = shutil.which("espeak-ng")
    if exe:
        from sovtp.media.audio import read_wav_bytes, resample

        wav = subprocess.run(
            [exe, "--stdout", "-s", str(wpm), text], capture_output=True, check=True
        ).stdout
        x, sr = read_wav_bytes(wav)
        x = resample(x, sr, rate)
    else:
        from scipy.signal import lfilter

        ex = np.zeros(n)
        ex[np.arange(0, n, rate / pitch_hz).astype(int)] = 1.0
        x = lfilter([1.0], [1.0, -1.6, 0.8], ex)
        x = 0.5 * x / np.abs(x).max()
    x = np.asarray(x, np.float32)[:n]
    return np.pad(x, (0, max(0, n - len(x))))


@dataclass(frozen=True)
class SpokenUtterance:
    """One utterance of a real recording: who speaks, the samples, their rate, a key, and what
    is said (the reference transcript)."""

    speaker: str
    samples: Any
    rate: int
    key: str
    text: str


def real_speech(min_seconds: float = 1.5) -> list[SpokenUtterance]:
    """Real recorded speech, with reference transcripts, resolved through the model resolver
    (sha256-pinned, licences in ``sovtp.assets``; nothing is committed):

    - CMU ARCTIC speaker slt, utterances a0007 and a0009 (read speech, 16 kHz);
    - pyannote.audio's sample: a 30 s conversation between two speakers (Diane, Sheila), cut at
      its reference turns (STM) — conversational, telephone-band speech.

    Three real speakers in all.  Turns shorter than ``min_seconds`` (a "Hello?") are left out:
    a speaker embedding of half a second says little.  What synthesised speech cannot show —
    how McAdams anonymisation treats a real vocal tract — these can."""
    import numpy as np

    from sovtp import assets
    from sovtp.media.audio import read_wav_bytes

    out = []
    for name, key, text in (
        (
            "speech_arctic_a0007",
            "slt-a0007",
            "And you always want to see it in the superlative degree.",
        ),
        (
            "speech_arctic_a0009",
            "slt-a0009",
            "He turned sharply, and faced Gregson across the table.",
        ),
    ):
        x, rate = read_wav_bytes(assets.resolve(name).read_bytes())
        out.append(SpokenUtterance("slt", np.asarray(x, np.float32), rate, key, text))
    folder = assets.resolve("speech_pyannote_sample")
    x, rate = read_wav_bytes((folder / "sample.wav").read_bytes())
    for k, line in enumerate((folder / "sample.stm").read_text().splitlines()):
        _uri, _ch, speaker, start, end, *words = line.split()
        a, b = float(start), float(end)
        if b - a < min_seconds:
            continue
        seg = np.asarray(x[int(a * rate) : int(b * rate)], np.float32)
        out.append(SpokenUtterance(speaker, seg, rate, f"{speaker}-{k}", " ".join(words)))
    return out
