"""Does the streaming runner keep both halves busy?  Annotation (CPU, a process pool) feeds a
loopback server of capacity C and latency L (sovtp.testing, in its own process).

    python benchmarks/pipeline_throughput.py [--samples 48 --workers 2 --latency 0.5 --capacity 0]

Three kinds of run of `run_bench` over N distinct clips, annotation cache off (every clip goes
through the detectors):
1. annotation alone — a server with no latency and no limit — with 1 worker and with W: the
   annotation capacity A(w) in samples/s, and the speed-up A(W)/A(1) (target ≥ 0.8 × W, W up to
   the cores);
2. the pipeline, against a server of capacity C/L requests/s (``--capacity 0``: C chosen so that
   C/L ≈ A(W), where the two halves must overlap perfectly to reach either).
Prints achieved samples/s ÷ min(A(W), C/L) (target ≥ 0.9).  Rates are steady-state: from the
first row written to the last (start-up — forking workers, opening landmarkers — is reported
apart).  On a shared machine the load average is printed alongside: read the ratios with it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _media import make_media, write_manifest  # noqa: E402


def _serve(latency: float, capacity: int, urls, stop) -> None:
    """The stand-in server in its own process, so its work is not the client's."""
    sys.setswitchinterval(1e-4)
    from sovtp.testing import Behaviour, FakeOpenAIServer

    with FakeOpenAIServer(Behaviour(latency_s=latency, capacity=capacity, record=False)) as srv:
        urls.put(srv.base_url)
        stop.wait()
        urls.put((srv.state.count, srv.state.busy_s))


class Server:
    def __init__(self, latency: float, capacity: int):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.q, self.stop = ctx.Queue(), ctx.Event()
        self.p = ctx.Process(target=_serve, args=(latency, capacity, self.q, self.stop))

    def __enter__(self) -> Server:
        self.p.start()
        self.url = self.q.get(timeout=120)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.count, self.busy = self.q.get(timeout=60)
        self.p.join(timeout=10)


def run(manifest: Path, out: Path, url: str, workers: int, concurrency: int) -> dict:
    from sovtp.engine.config import BenchConfig, SystemSpec
    from sovtp.recipes.bench import run_bench

    times: list[float] = []
    system = SystemSpec.of("openai", {"base_url": [url], "model": "m", "concurrency": concurrency})
    cfg = BenchConfig(
        data=str(manifest),
        variants=["ladder/plain"],
        systems=[system],
        sampling="uniform:4",
        out=str(out),
        workers=workers,
        annotation_cache=False,
        response_cache=False,
        gallery=0,
    )
    t0 = time.perf_counter()
    _, stats = run_bench(cfg, on_row=lambda r: times.append(time.perf_counter()), report=False)
    n = len(times)
    steady = (n - 1) / (times[-1] - times[0]) if n > 1 else float("nan")
    return {
        "rows": stats.rows,
        "errors": stats.errors,
        "wall": time.perf_counter() - t0,
        "startup": times[0] - t0,
        "rate": steady,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--workers", type=int, default=0, help="W (default: the cores)")
    ap.add_argument("--latency", type=float, default=0.5, help="L, seconds per request")
    ap.add_argument("--capacity", type=int, default=0, help="C (0: match A(W))")
    a = ap.parse_args()
    from sovtp.engine.workers import default_workers

    cores = default_workers()
    W = a.workers or cores
    tmp = Path(tempfile.mkdtemp(prefix="sovtp-pipe-"))
    os.environ.setdefault("SOVTP_CACHE_DIR", str(tmp / "cache"))
    models = Path.home() / ".cache" / "sovtp" / "models"
    if models.exists() and not (Path(os.environ["SOVTP_CACHE_DIR"]) / "models").exists():
        (Path(os.environ["SOVTP_CACHE_DIR"])).mkdir(parents=True, exist_ok=True)
        (Path(os.environ["SOVTP_CACHE_DIR"]) / "models").symlink_to(models)
    names = make_media(tmp / "media")
    video = [n for n in names if n.endswith(".mp4")]
    manifest = write_manifest(tmp / "media", video, a.samples, distinct=True)
    load0 = os.getloadavg()[0]
    print(f"{a.samples} distinct clips (4 frames each), cores {cores}, W={W}, load {load0:.2f}")

    ann = {}
    with Server(0.0, 1_000_000) as srv:
        run(manifest, tmp / "warm", srv.url, 1, 64)  # imports, models, page cache
        for w in sorted({1, W}):
            ann[w] = run(manifest, tmp / f"ann{w}", srv.url, w, 64)
            r = ann[w]
            print(
                f"annotation alone, {w} worker(s): A = {r['rate']:.2f} samples/s "
                f"(start-up {r['startup']:.2f} s, wall {r['wall']:.2f} s, errors {r['errors']})"
            )
    speedup = ann[W]["rate"] / ann[1]["rate"]
    print(
        f"speed-up with {W} workers: {speedup:.2f}× (target ≥ {0.8 * min(W, cores):.2f}×, "
        f"0.8 × workers up to the cores)"
    )
    capacity = a.capacity or max(1, round(ann[W]["rate"] * a.latency))
    server_rate = capacity / a.latency
    with Server(a.latency, capacity) as srv:
        p = run(manifest, tmp / "pipe", srv.url, W, 2 * capacity)
    ideal = min(ann[W]["rate"], server_rate)
    util = srv.busy / (capacity * p["wall"])
    print(
        f"pipeline: server C={capacity}, L={a.latency}s → {server_rate:.2f} req/s; annotation "
        f"A({W}) = {ann[W]['rate']:.2f} samples/s"
    )
    print(
        f"achieved {p['rate']:.2f} samples/s ÷ min(A, C/L) = {ideal:.2f} → ratio "
        f"{p['rate'] / ideal:.3f} (target ≥ 0.9); server slot utilisation over the whole wall "
        f"{util:.2f}; errors {p['errors']}; load average now {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
