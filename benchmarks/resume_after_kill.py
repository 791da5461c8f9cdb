"""kill -9 half-way through `sovtp bench`, then `--resume`: is anything asked twice or lost?

    python benchmarks/resume_after_kill.py [--samples 120] [--latency 0.05] [--concurrency 4]

A loopback stand-in for vLLM (sovtp.testing, in this process) counts every request it receives.
Three runs of `sovtp bench` (subprocesses) against it, response cache off:
1. uninterrupted — its request count is the number of queries;
2. the same job killed with SIGKILL once about half the rows are written;
3. `--resume` of run 2.
Prints the server's request count for 2+3 against the number of queries (the difference is the
requests that were in flight at the kill: their answers never reached disk, so they are asked
again — at most the concurrency) and whether the predictions equal run 1's.
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


def lines(p: Path) -> int:
    return sum(1 for _ in p.open()) if p.exists() else 0


def preds(run: Path) -> dict[str, str | None]:
    out = {}
    for line in (run / "predictions.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[r["key"]] = r["label"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=120)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args()
    from sovtp.testing import Behaviour, FakeOpenAIServer

    tmp = Path(tempfile.mkdtemp(prefix="sovtp-kill-"))
    names = make_media(tmp / "media")
    manifest = write_manifest(tmp / "media", names, a.samples)
    env = os.environ | {"SOVTP_CACHE_DIR": str(tmp / "cache")}
    models = Path.home() / ".cache" / "sovtp" / "models"
    if models.exists():
        (tmp / "cache").mkdir()
        (tmp / "cache" / "models").symlink_to(models)
    with FakeOpenAIServer(
        Behaviour(latency_s=a.latency, capacity=a.concurrency, record=False)
    ) as srv:

        def bench(out: Path, *extra: str) -> subprocess.Popen:
            cmd = [sys.executable, "-m", "sovtp", "bench", str(manifest), "-o", str(out),
                   "--base-url", srv.base_url, "--model", "m", "--no-response-cache",
                   "--concurrency", str(a.concurrency), "-s", "uniform:2", "--no-report", *extra]  # fmt: skip
            return subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        t = time.perf_counter()
        assert bench(tmp / "ref").wait() == 0
        ref_wall = time.perf_counter() - t
        queries = srv.state.count
        c0 = srv.state.count
        p = bench(tmp / "killed")
        half = queries // 2
        while lines(tmp / "killed" / "predictions.jsonl") < half and p.poll() is None:
            time.sleep(0.01)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        at_kill = lines(tmp / "killed" / "predictions.jsonl")
        sent_before = srv.state.count - c0
        t = time.perf_counter()
        assert bench(tmp / "killed", "--resume").wait() == 0
        resume_wall = time.perf_counter() - t
        total = srv.state.count - c0
    same = preds(tmp / "ref") == preds(tmp / "killed")
    print(f"queries (uninterrupted run's requests): {queries}  in {ref_wall:.1f} s")
    print(
        f"killed at {at_kill} rows written, {sent_before} requests sent; resume took {resume_wall:.1f} s"
    )
    print(
        f"server requests for killed + resumed run: {total}  → ratio to queries {total / queries:.3f}"
    )
    print(
        f"re-sent after the kill: {total - queries} (requests in flight at the kill; concurrency {a.concurrency})"
    )
    print(f"predictions equal to the uninterrupted run: {same}")


if __name__ == "__main__":
    main()
