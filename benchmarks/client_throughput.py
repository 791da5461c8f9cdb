"""Client throughput against a loopback server with fixed latency L and capacity C.

    python benchmarks/client_throughput.py [--latency 0.05 --capacity 10 --requests 1000]

Prompts carry 2 images (JPEG data URLs encoded once when the prompt is built).  Prints achieved
requests/s against the ideal C/L and the client's CPU time per request (``--profile``: and where
it went).  Targets: ≥ 95 % of ideal at an ideal of 200 req/s, ≤ 2 ms of client CPU per request.
The request body is serialised once per request with the images' base64 spliced in as bytes
(``sovtp.backends.wire.wire_json``: the JSON encoder's pass over ~460 kB of data URLs
was ~1 ms of the ~2.6 ms a request cost).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def _queries(n: int):
    from sovtp.prompting.build import ImageOptions, encode_jpeg
    from sovtp.records import Query

    rng = np.random.default_rng(0)
    imgs = [
        encode_jpeg(rng.integers(0, 255, (360, 640, 3), dtype=np.uint8), ImageOptions())[1]
        for _ in range(2)
    ]
    import base64

    urls = ["data:image/jpeg;base64," + base64.b64encode(b).decode() for b in imgs]
    content = [{"type": "image_url", "image_url": {"url": u}} for u in urls] + [
        {"type": "text", "text": "Emotion?"}
    ]
    return [
        Query(id=f"q{i}", messages=[{"role": "user", "content": content}], labels=["happy", "sad"])
        for i in range(n)
    ]


def _serve(latency: float, capacity: int, ports, stop) -> None:
    """The server in its own process, so the client's CPU is measured alone.  Its handler threads
    hand the GIL over quickly, so a freed slot is refilled at once (the stand-in must not be the
    bottleneck it is there to simulate)."""
    import sys

    from sovtp.testing import Behaviour, FakeOpenAIServer

    sys.setswitchinterval(1e-4)

    import resource

    with FakeOpenAIServer(Behaviour(latency_s=latency, capacity=capacity, record=False)) as srv:
        ports.put((srv.base_url, None))
        stop.wait()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        ports.put(
            (srv.state.count, ru.ru_utime + ru.ru_stime, srv.state.busy_s, srv.state.waiting_peak)
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--capacity", type=int, default=10)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=0, help="client limit (default 2×C)")
    ap.add_argument(
        "--profile", action="store_true", help="also print where the client's CPU went (cProfile)"
    )
    a = ap.parse_args()
    import multiprocessing as mp

    from sovtp.backends import get_backend

    qs = _queries(a.requests)
    ideal = a.capacity / a.latency
    ctx = mp.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(a.latency, a.capacity, ports, stop), daemon=True)
    server.start()
    base_url, _ = ports.get(timeout=60)
    import os

    load0 = os.getloadavg()[0]
    be = get_backend(
        "openai", base_url=base_url, model="m", concurrency=a.concurrency or a.capacity * 2
    )
    be.generate(qs[:20])  # warm up: imports, connection pool
    prof = None
    if a.profile:
        import cProfile

        prof = cProfile.Profile()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    if prof is not None:
        prof.enable()
    rs = be.generate(qs)
    if prof is not None:
        prof.disable()
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    served, server_cpu, busy, waiting_peak = ports.get(timeout=60)
    server.join(timeout=10)
    errors = sum(r.error is not None for r in rs)
    achieved = len(rs) / wall
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime  # this process = the client
    print(
        f"requests {len(rs)} (server counted {served - 20}), errors {errors}, "
        f"L={a.latency}s, C={a.capacity}, 2 images/prompt"
    )
    print(
        f"achieved {achieved:.1f} req/s, ideal {ideal:.1f} req/s, ratio {achieved / ideal:.3f} (target >= 0.95)"
    )
    util = (busy - 20 * a.latency) / (a.capacity * wall)  # the warm-up's 20 requests taken out
    print(
        f"server slot utilisation {util:.3f} (1.0: every slot always busy); "
        f"at most {waiting_peak} requests waited for a slot; mean slot time "
        f"{1000 * busy / served:.1f} ms (L={1000 * a.latency:.0f} ms)"
    )
    print(
        f"client CPU per request {1000 * cpu / len(rs):.2f} ms; stand-in server CPU per request "
        f"{1000 * server_cpu / served:.2f} ms (its own process); load average before {load0:.2f}"
    )
    if prof is not None:  # where the time went (the profiler itself slows the client down)
        import pstats

        print("time inside each function per request (profiled run, wall; epoll is waiting):")
        st = pstats.Stats(prof)
        top = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:12]
        for (file, line, fn), (_, _, tt, _, _) in top:
            print(f"  {1000 * tt / len(rs):6.3f} ms  {fn}  ({file.rsplit('/', 1)[-1]}:{line})")


if __name__ == "__main__":
    main()
