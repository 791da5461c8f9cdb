"""A benchmark run against a server that misbehaves: hangs, trickles, tears, fails for a while —
through the real loopback server (sovtp.testing) and the real run folder.  Also the resume rules
(transient rows asked again, a changed config refused, new cells only), the folder lock and the
counts the CLI turns into exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sovtp.engine.config import BenchConfig, SystemSpec
from sovtp.engine.store import RunLocked
from sovtp.errors import SovtpError
from sovtp.jsonl import iter_jsonl
from sovtp.recipes.bench import RunInterrupted, exit_code, run_bench
from sovtp.testing import Behaviour, FakeOpenAIServer
from tests.processes import signal_when


@pytest.fixture(scope="module")
def many(media_dir, astronaut_png_shared) -> Path:
    """8 samples of one image (annotated once, then from the cache): the network is the test."""
    p = media_dir / "many.jsonl"
    rows = [{"id": f"s{i}", "media": astronaut_png_shared.name, "label": "happy"} for i in range(8)]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def cfg(manifest: Path, out: Path, url: str, concurrency: int = 16, **kw) -> BenchConfig:
    system = SystemSpec.of(
        "openai", {"base_url": [url], "model": "fake-vlm", "concurrency": concurrency}
    )
    base = dict(
        data=str(manifest),
        variants=["ladder/plain"],
        sampling="uniform:1",
        out=str(out),
        systems=[system],
        response_cache=False,
        workers=0,
        n_boot=20,
        gallery=2,
        max_retries=0,
    )
    return BenchConfig(**(base | kw))


def rows(run: Path, name: str = "predictions.jsonl") -> list[dict]:
    return list(iter_jsonl(run / name))


def test_a_hung_request_holds_one_slot_not_the_run(many, tmp_path):
    """The first request hangs; with chunks (chunk=2) every later sample would have waited for
    it.  Every other row is written before the hung one's deadline, which cuts it."""
    seen: list[tuple[float, str]] = []
    deadline = 3.0
    with FakeOpenAIServer(Behaviour(script=["hang"], latency_s=0.02)) as srv:
        c = cfg(many, tmp_path / "r", srv.base_url, timeout_s=deadline, chunk=2)
        run, stats = run_bench(
            c, on_row=lambda r: seen.append((time.perf_counter(), r["key"])), report=False
        )
        end = time.perf_counter()
        sent = srv.state.arrived[0]  # when the hung request reached the server
    hung = [r for r in rows(run) if r["error"]]
    assert len(hung) == 1 and "timeout" in hung[0]["error"] and hung[0]["transient"] is True
    assert seen[-1][1] == hung[0]["key"]  # the hung one comes last ...
    assert max(t for t, _ in seen[:-1]) < sent + deadline  # ... the others did not wait ...
    assert sent + deadline - 0.2 <= seen[-1][0] < sent + deadline + 1.0  # ... cut at its deadline
    assert end - seen[-1][0] < 1.0  # ... and the run is over
    assert (stats.rows, stats.errors, stats.answered) == (8, 1, 7)


def test_a_trickling_answer_is_cut_at_the_deadline():
    """Bytes every 0.2 s: no single read times out, the exchange as a whole does."""
    from sovtp.backends import get_backend
    from sovtp.records import Query

    q = Query(id="q", messages=[{"role": "user", "content": "hi"}], labels=["happy", "sad"])
    with FakeOpenAIServer(Behaviour(script=["trickle", "trickle"], trickle_s=0.2)) as srv:
        be = get_backend("openai", base_url=srv.base_url, model="m", timeout_s=1.0, max_retries=0)
        t = time.perf_counter()
        (r,) = be.generate([q])
        took = time.perf_counter() - t
        assert r.error and r.error.startswith("timeout") and 1.0 <= took < 2.5
        # and the next request, on another connection, is answered (trickled well in time)
        be = get_backend("openai", base_url=srv.base_url, model="m", timeout_s=1.0, max_retries=1)
        srv.state.behaviour.trickle_s = 0.0
        assert be.generate([q])[0].error is None


def test_malformed_and_torn_answers_are_asked_again():
    from sovtp.backends import get_backend
    from sovtp.records import Query

    q = Query(id="q", messages=[{"role": "user", "content": "hi"}], labels=["happy", "sad"])
    with FakeOpenAIServer(Behaviour(script=["malformed", "half", "reset"])) as srv:
        be = get_backend("openai", base_url=srv.base_url, model="m", max_retries=3, backoff_s=0)
        (r,) = be.generate([q])
        assert r.error is None and r.text and srv.state.count == 4
    with FakeOpenAIServer(Behaviour(mode="malformed")) as srv:  # bounded: it gives up
        be = get_backend("openai", base_url=srv.base_url, model="m", max_retries=2, backoff_s=0)
        (r,) = be.generate([q])
        assert r.error.startswith("malformed answer") and srv.state.count == 3


def test_resume_asks_transient_errors_again_and_keeps_one_row_per_key(many, tmp_path):
    # two answers (the gallery's two samples), then 3 × 500 and one 401: with no retries, four
    # error rows — three transient, one permanent — none of them in the gallery
    script = ["good", "good", "500", "401", "500", "500"]
    with FakeOpenAIServer(Behaviour(script=script)) as srv:
        c = cfg(many, tmp_path / "r", srv.base_url)
        run, stats = run_bench(c)
        assert (stats.errors, stats.transient_errors) == (4, 3) and exit_code(stats) == 3
        by_key = {r["key"]: r for r in rows(run)}
        flags = sorted(r["transient"] for r in by_key.values() if r["error"])
        assert flags == [False, True, True, True]
        gallery = rows(run, "gallery.jsonl")
        n = srv.state.count
        run, stats = run_bench(c, resume=True)
        assert srv.state.count - n == 3 and stats.retried == 3  # only the transient ones
        assert (stats.rows, stats.errors, stats.transient_errors) == (8, 1, 0)
        for name in ("predictions.jsonl", "responses.jsonl"):
            keys = [r["key"] for r in rows(run, name)]
            assert len(keys) == len(set(keys)) == 8  # superseded rows are gone, not stacked
        # the gallery keeps its samples (not two more), and the report counts 8 rows
        assert [g["sample_id"] for g in gallery] == ["s0", "s1"]
        assert [g["sample_id"] for g in rows(run, "gallery.jsonl")] == ["s0", "s1"]
        rep = json.loads((run / "report.json").read_text())
        assert rep["scoring"]["systems"][0]["n"] == 8
        # retry_errors="all" asks the permanent one again too
        n = srv.state.count
        run, stats = run_bench(c, resume=True, retry_errors="all")
        assert srv.state.count - n == 1 and (stats.errors, exit_code(stats)) == (0, 0)


def test_resume_refuses_a_changed_config_and_names_the_change(many, tmp_path):
    with FakeOpenAIServer() as srv:
        c = cfg(many, tmp_path / "r", srv.base_url, limit=2)
        run_bench(c, report=False)
        config = (tmp_path / "r" / "config.yaml").read_text()
        for change, named in [
            ({"temperature": 0.7}, "settings.temperature: 0.0 → 0.7"),
            ({"sampling": "uniform:2"}, "sampling"),
            ({"variants": ["sovtp/full"]}, "prompts: ladder/plain removed"),
            ({"systems": [SystemSpec.parse(f"openai:other@{srv.base_url}")]}, "systems"),
        ]:
            with pytest.raises(SovtpError, match="would change") as e:
                run_bench(c.model_copy(update=change), resume=True, report=False)
            assert named in str(e.value)
        assert (tmp_path / "r" / "config.yaml").read_text() == config  # nothing rewritten
        other = many.with_name("other.jsonl")  # another manifest under the data option
        other.write_text(many.read_text().replace('"happy"', '"sad"'))
        with pytest.raises(SovtpError, match="data.sha256"):
            run_bench(c.model_copy(update={"data": str(other)}), resume=True, report=False)
        # what only changes how fast answers come is free to change
        n = srv.state.count
        run_bench(
            c.model_copy(update={"timeout_s": 9.0, "workers": 1, "max_retries": 3}),
            resume=True,
            report=False,
        )
        assert srv.state.count == n


def test_resume_with_an_added_variant_runs_only_the_new_cells(many, tmp_path):
    with FakeOpenAIServer() as srv:
        c = cfg(many, tmp_path / "r", srv.base_url, limit=3)
        run_bench(c, report=False)
        assert srv.state.count == 3
        wider = c.model_copy(update={"variants": ["ladder/plain", "sovtp/full"]})
        run, stats = run_bench(wider, resume=True, report=False)
        assert srv.state.count == 6 and stats.rows == 6
        assert {r["variant"] for r in rows(run)[3:]} == {"sovtp/full"}


def test_a_second_process_on_the_same_folder_refuses(many, tmp_path):
    out = tmp_path / "r"
    code = (
        "import sys, time; from sovtp.engine.store import RunStore; "
        f"s = RunStore({str(out)!r}); s.lock(); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with FakeOpenAIServer() as srv:
            busy = rf"in use by another sovtp process \(pid {holder.pid}\)"
            with pytest.raises(RunLocked, match=busy):
                run_bench(cfg(many, out, srv.base_url, limit=1), report=False)
    finally:
        holder.kill()
        holder.wait()
    assert (out / ".lock").exists()  # a killed holder leaves its file; its lock died with it
    with FakeOpenAIServer() as srv:  # the lock dies with its process
        _, stats = run_bench(cfg(many, out, srv.base_url, limit=1), report=False)
    assert stats.rows == 1
    assert not (out / ".lock").exists()  # a finished run leaves no lock file behind
    from sovtp.engine.store import RunStore

    a, b = RunStore(out), RunStore(out)  # two runs in one process: the second refuses too
    a.lock()
    try:
        with pytest.raises(RunLocked, match="already being written by this process"):
            b.lock()
    finally:
        a.close()
    b.lock()
    b.close()


def test_exit_codes_count_answers_and_errors(many, tmp_path):
    with FakeOpenAIServer(Behaviour(mode="401")) as srv:
        _, stats = run_bench(cfg(many, tmp_path / "a", srv.base_url, limit=3), report=False)
    assert (stats.rows, stats.errors, stats.answered, exit_code(stats)) == (3, 3, 0, 4)
    with FakeOpenAIServer() as srv:
        _, stats = run_bench(cfg(many, tmp_path / "b", srv.base_url, limit=3), report=False)
    assert (stats.rows, stats.errors, stats.answered, exit_code(stats)) == (3, 0, 3, 0)


def test_unparseable_answers_are_not_a_result(many, tmp_path):
    """A server that answers prose to a JSON prompt (it ignores the schema): every row holds an
    answer and no row a valid one — exit 4 with the likely cause, not 0; half of them: exit 3."""
    from sovtp.engine.outcome import run_outcome

    prose = "The person in the image seems to be feeling something, hard to say what exactly."
    with FakeOpenAIServer(Behaviour(content=prose)) as srv:
        run, stats = run_bench(cfg(many, tmp_path / "a", srv.base_url, limit=3), report=False)
    assert (stats.rows, stats.errors, stats.invalid, exit_code(stats)) == (3, 0, 3, 4)
    o = run_outcome(run)
    assert (o.valid, o.invalid, o.exit_code) == (0, 3, 4)
    assert "--no-structured" in o.hint and "schema" in o.hint
    # one answer outside the label set among three: some rows invalid → 3, counted, no hint
    with FakeOpenAIServer(Behaviour(script=["good", "outside", "good"])) as srv:
        run, stats = run_bench(cfg(many, tmp_path / "b", srv.base_url, limit=3), report=False)
    o = run_outcome(run)
    assert (stats.invalid, exit_code(stats), o.valid, o.exit_code, o.hint) == (1, 3, 2, 3, None)


def test_bench_command_with_no_valid_answer_exits_4_and_says_why(many, tmp_path):
    """The command a user runs: counts, the likely cause and exit 4 (it exited 0)."""
    prose = "She looks like she might be feeling a mix of things."
    with FakeOpenAIServer(Behaviour(content=prose)) as srv:
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "sovtp",
                "bench",
                str(many),
                "-o",
                str(tmp_path / "r"),
                "--base-url",
                srv.base_url,
                "--model",
                "fake-vlm",
                "-s",
                "uniform:1",
                "--limit",
                "2",
                "--no-report",
                "--no-check",
                "--workers",
                "0",
                "--no-response-cache",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    err = p.stderr
    assert p.returncode == 4, err
    assert "0 valid answers, 2 invalid answers, 0 errors" in err
    assert "no valid answer" in err and "--no-structured" in err


def test_ctrl_c_keeps_the_rows_writes_the_report_and_says_how_to_resume(many, tmp_path):
    def stop_at_three(row: dict) -> None:
        stop_at_three.n += 1  # type: ignore[attr-defined]
        if stop_at_three.n == 3:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    stop_at_three.n = 0  # type: ignore[attr-defined]
    with FakeOpenAIServer(Behaviour(latency_s=0.05)) as srv:
        c = cfg(many, tmp_path / "r", srv.base_url, concurrency=1)
        with pytest.raises(RunInterrupted) as e:
            run_bench(c, on_row=stop_at_three)
        assert e.value.stats.interrupted and exit_code(e.value.stats) == 130
        written = e.value.stats.rows
        assert 3 <= written < 8 and f"{written} rows are written" in str(e.value)
        assert "--resume" in str(e.value) and (tmp_path / "r" / "report.json").exists()
        _, stats = run_bench(c, resume=True, report=False)  # the lock was let go
        assert stats.rows == 8 and stats.errors == 0


def test_sigint_in_a_real_process_exits_130_with_the_rows_and_report(many, tmp_path):
    """Ctrl-C (SIGINT) to a run's process, with its annotation pool: the workers ignore it, the
    parent closes the folder, writes the report and says how to go on."""
    import signal

    driver = (
        "import sys\n"
        "from sovtp.engine.config import BenchConfig\n"
        "from sovtp.recipes.bench import RunInterrupted, run_bench\n"
        "try:\n"
        "    run_bench(BenchConfig.model_validate_json(sys.argv[1]))\n"
        "except RunInterrupted as e:\n"
        "    print(e, flush=True)\n"
        "    sys.exit(130)\n"
    )
    out = tmp_path / "r"
    with FakeOpenAIServer(Behaviour(latency_s=0.3, capacity=1)) as srv:
        c = cfg(many, out, srv.base_url, concurrency=1, workers=2)
        argv = [sys.executable, "-c", driver, c.model_dump_json()]
        rc, stdout, _ = signal_when(argv, lambda: len(rows(out)) >= 2, signal.SIGINT)
    assert rc == 130
    n = len(rows(out))
    assert 2 <= n < 8 and f"{n} rows are written in {out}" in stdout and "--resume" in stdout
    assert (out / "report.json").exists()


@pytest.mark.parametrize("sigint_ignored", [False, True])
def test_sigterm_ends_a_cli_run_as_ctrl_c_does(many, tmp_path, sigint_ignored):
    """A batch scheduler's time limit sends SIGTERM: the run used to die with its `.lock` left
    and no report. `sovtp bench` now ends as on Ctrl-C: exit 130, the rows so far and the
    report kept, the lock let go, the resume hint printed; the annotation workers end too.
    Also when SIGINT is ignored, as a shell script's `cmd &` starts a process."""
    import signal

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    out = tmp_path / "r"
    with FakeOpenAIServer(Behaviour(latency_s=0.3, capacity=1)) as srv:
        argv = [*("bench", many, "-o", out, "-p", "ladder/plain", "-s", "uniform:1"), "--no-check"]
        argv += ["--base-url", srv.base_url, "--model", "fake-vlm", "--concurrency", "1"]
        argv = [sys.executable, "-m", "sovtp.cli", *argv, "--workers", "2"]
        rc, _, stderr = signal_when(
            argv,
            lambda: len(rows(out)) >= 2,
            signal.SIGTERM,
            preexec_fn=ignore_sigint if sigint_ignored else None,
        )
    assert rc == 130, stderr
    n = len(rows(out))
    assert 2 <= n < 8 and "--resume" in stderr, stderr
    assert (out / "report.json").exists() and not (out / ".lock").exists()
