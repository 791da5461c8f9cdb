"""Peak memory does not grow with the benchmark: peak RSS of `sovtp bench` on 10,000 synthetic
samples against 1,000, each in a fresh process, measured in one run.

    python benchmarks/memory.py [--small 1000] [--large 10000]

Samples are manifest rows over a few real-face images (annotations come from the cache after
the first of each), FACS backend, report included.  Target: peak(large) ≤ 1.2 × peak(small).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _media import make_media, write_manifest  # noqa: E402

CHILD = r"""
import json, resource, sys, time
from sovtp.engine.config import BenchConfig
from sovtp.recipes.bench import run_bench
t = time.perf_counter()
run, st = run_bench(BenchConfig(data=sys.argv[1], variants=["sovtp/full"], sampling="uniform:1",
                                out=sys.argv[2], n_boot=200))
rows = sum(1 for _ in open(run / "predictions.jsonl"))
print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rows": rows, "wall": time.perf_counter() - t}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=10000)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sovtp-mem-"))
    names = make_media(tmp / "media", video=False)
    env = os.environ | {"SOVTP_CACHE_DIR": str(tmp / "cache")}
    models = Path.home() / ".cache" / "sovtp" / "models"
    (tmp / "cache").mkdir()
    if models.exists():
        (tmp / "cache" / "models").symlink_to(models)
    res = {}
    for n in (a.small, a.large):
        m = write_manifest(tmp / "media", names, n)
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, str(m), str(tmp / f"run{n}")],
                             env=env, capture_output=True, text=True)  # fmt: skip
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        res[n] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{n:6d} samples: peak RSS {res[n]['peak_kib'] / 1024:.1f} MiB, "
              f"{res[n]['rows']} rows, {time.perf_counter() - t:.1f} s")  # fmt: skip
    ratio = res[a.large]["peak_kib"] / res[a.small]["peak_kib"]
    print(f"peak RSS {a.large} / {a.small}: {ratio:.3f} (target ≤ 1.2)")


if __name__ == "__main__":
    main()
