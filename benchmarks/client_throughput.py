"""Client throughput against a loopback server with fixed latency L and capacity C.

    python benchmarks/client_throughput.py [--latency 0.05 --capacity 10 --requests 1000]

Prompts carry 2 images (JPEG data URLs encoded once when the prompt is built).  Prints achieved
requests/s against the ideal C/L and the client's CPU time per request.  Target: ≥ 95 % of ideal
at an ideal of 200 req/s.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--capacity", type=int, default=10)
    ap.add_argument("--requests", type=int, default=1000)
    a = ap.parse_args()
    from sovtp.backends import get_backend
    from sovtp.testing import Behaviour, FakeOpenAIServer

    qs = _queries(a.requests)
    ideal = a.capacity / a.latency
    with FakeOpenAIServer(Behaviour(latency_s=a.latency, capacity=a.capacity)) as srv:
        be = get_backend("openai", base_url=srv.base_url, model="m", concurrency=a.capacity * 2)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        rs = be.generate(qs)
        wall = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    errors = sum(r.error is not None for r in rs)
    achieved = len(rs) / wall
    cpu = (
        r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    )  # client + in-process server threads
    print(f"requests {len(rs)}, errors {errors}, L={a.latency}s, C={a.capacity}, 2 images/prompt")
    print(
        f"achieved {achieved:.1f} req/s, ideal {ideal:.1f} req/s, ratio {achieved / ideal:.3f} (target >= 0.95)"
    )
    print(
        f"process CPU per request {1000 * cpu / len(rs):.2f} ms (client and loopback server share the process)"
    )


if __name__ == "__main__":
    main()
