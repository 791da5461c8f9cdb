"""kill -9 half-way through a bench run, then resume: is anything asked twice, lost or torn —
and, with ``--chaos``, does a server that fails in every way cost rows or stall the run?

    python benchmarks/resume_after_kill.py [--samples 120] [--latency 0.05] [--concurrency 4]
                                           [--chaos] [--timeout 2]

A loopback stand-in for vLLM (sovtp.testing, in this process) counts every request it receives.
Runs of ``run_bench`` in subprocesses (the library call the CLI makes; response cache off):
1. uninterrupted — its request count is the number of queries (with ``--chaos``, more: retries);
2. the same job killed with SIGKILL once about half the rows are written;
3. resume of run 2, then resumes until no transient error row is left (at most 3).
``--chaos``: each request draws a fault — 20 % HTTP 500, 10 % 429 with Retry-After, 5 % hangs,
5 % malformed JSON, 3 % connection resets — and ``--timeout`` is the whole-request deadline.
Prints requests against queries (the difference after the kill is what was in flight, at most
the concurrency, plus retries), rows lost / duplicated / torn, whether the predictions equal run
1's, the error rows left and the exit codes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _media import make_media, write_manifest  # noqa: E402

DRIVER = """
import sys
from sovtp.engine.config import BenchConfig
from sovtp.recipes.bench import exit_code, run_bench
_, stats = run_bench(BenchConfig.model_validate_json(sys.argv[1]), resume=sys.argv[2] == "1",
                     report=False)
sys.exit(exit_code(stats))
"""
CHAOS = {"500": 0.20, "429": 0.10, "hang": 0.05, "malformed": 0.05, "reset": 0.03}


def lines(p: Path) -> int:
    return sum(1 for _ in p.open()) if p.exists() else 0


def audit(run: Path) -> dict:
    """Rows per key, torn lines and error rows of a run's predictions."""
    keys, torn, errors, labels, failed = [], 0, 0, {}, set()
    for line in (run / "predictions.jsonl").read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            torn += 1
            continue
        keys.append(r["key"])
        errors += bool(r.get("error"))
        if r.get("error"):
            failed.add(r["key"])
        labels[r["key"]] = r["label"]
    return {
        "rows": len(keys),
        "keys": len(set(keys)),
        "torn": torn,
        "errors": errors,
        "labels": labels,
        "failed": failed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=120)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--chaos", action="store_true")
    ap.add_argument("--timeout", type=float, default=2.0)
    a = ap.parse_args()
    from sovtp.engine.config import BenchConfig, SystemSpec
    from sovtp.testing import Behaviour, FakeOpenAIServer

    tmp = Path(tempfile.mkdtemp(prefix="sovtp-kill-"))
    names = make_media(tmp / "media")
    manifest = write_manifest(tmp / "media", names, a.samples)
    env = os.environ | {"SOVTP_CACHE_DIR": str(tmp / "cache")}
    models = Path.home() / ".cache" / "sovtp" / "models"
    if models.exists():
        (tmp / "cache").mkdir()
        (tmp / "cache" / "models").symlink_to(models)
    behaviour = Behaviour(
        latency_s=a.latency,
        capacity=a.concurrency,
        record=False,
        chaos=CHAOS if a.chaos else None,
        hang_s=3600,
    )
    with FakeOpenAIServer(behaviour) as srv:
        system = SystemSpec.of(
            "openai", {"base_url": [srv.base_url], "model": "m", "concurrency": a.concurrency}
        )

        def bench(out: Path, resume: bool = False) -> subprocess.Popen:
            cfg = BenchConfig(
                data=str(manifest),
                out=str(out),
                systems=[system],
                sampling="uniform:2",
                response_cache=False,
                timeout_s=a.timeout,
                max_retries=4,
            )
            cmd = [sys.executable, "-c", DRIVER, cfg.model_dump_json(), "1" if resume else "0"]
            return subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        t = time.perf_counter()
        ref_rc = bench(tmp / "ref").wait()
        ref_wall = time.perf_counter() - t
        queries = lines(tmp / "ref" / "predictions.jsonl")
        ref_requests = srv.state.count
        c0 = srv.state.count
        p = bench(tmp / "killed")
        while lines(tmp / "killed" / "predictions.jsonl") < queries // 2 and p.poll() is None:
            time.sleep(0.01)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        at_kill = lines(tmp / "killed" / "predictions.jsonl")
        sent_before = srv.state.count - c0
        t = time.perf_counter()
        rcs = [bench(tmp / "killed", resume=True).wait()]
        while audit(tmp / "killed")["errors"] and len(rcs) < 3:
            rcs.append(bench(tmp / "killed", resume=True).wait())
        resume_wall = time.perf_counter() - t
        total = srv.state.count - c0
        faults = dict(srv.state.faults)
    ref, got = audit(tmp / "ref"), audit(tmp / "killed")
    print(
        f"queries: {queries}; uninterrupted run: {ref_requests} requests in {ref_wall:.1f} s, "
        f"exit {ref_rc}, {ref['errors']} error rows"
    )
    print(
        f"killed at {at_kill} rows written, {sent_before} requests sent; {len(rcs)} resume(s) "
        f"took {resume_wall:.1f} s, exit codes {rcs}"
    )
    print(f"requests for killed + resumed run: {total} → ratio to queries {total / queries:.3f}")
    print(
        f"rows {got['rows']} for {got['keys']} keys (lost {queries - got['keys']}, "
        f"duplicated {got['rows'] - got['keys']}), torn lines {got['torn']}, "
        f"error rows left {got['errors']}"
    )
    both = [k for k in ref["labels"] if k not in ref["failed"] and k not in got["failed"]]
    same = set(ref["labels"]) == set(got["labels"]) and all(
        ref["labels"][k] == got["labels"][k] for k in both
    )
    print(
        f"predictions equal to the uninterrupted run (keys; labels where both answered, "
        f"{len(both)}): {same}"
    )
    if a.chaos:
        print(f"faults injected (all runs): {faults}")


if __name__ == "__main__":
    main()
