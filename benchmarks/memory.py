"""Peak memory does not grow with the benchmark: peak RSS of `sovtp bench` on 10,000 synthetic
samples against 1,000 — and of `sovtp spot` (the flow spotter) on a 10-minute video against a
2-minute one — each in a fresh process, measured in one run.

    python benchmarks/memory.py [--small 1000] [--large 10000]
    python benchmarks/memory.py --spot [--minutes 2 10] [--fps 25]

Bench: manifest rows over a few real-face images (annotations come from the cache after the
first of each), FACS backend, report included.  Spot: a 640×360 clip of the astronaut's head
drifting a few pixels, built here at benchmark time (streamed to the encoder, never held),
one ground-truth interval, the flow system with its default ``fps:5`` landmark pass, no
annotation cache.  Target for both: peak(large) ≤ 1.2 × peak(small).

Measured here (2 cores, 25 fps): spot 2 min 497.9 MiB, 10 min 412.6 MiB, ratio 0.829 (the
difference is allocator noise; before streaming, 0.80 GB and 2.78 GB).
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


SPOT_CHILD = r"""
import json, resource, sys, time
from sovtp.recipes.spot import SpotOptions, run_spot
t = time.perf_counter()
run = run_spot(SpotOptions(sys.argv[1], sys.argv[2], annotation_cache=False, n_boot=100))
print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "errors": run.errors, "wall": time.perf_counter() - t}))
"""


def spot_clip(path: Path, seconds: float, fps: int, size: tuple[int, int] = (640, 360)) -> Path:
    """A ``seconds`` clip of the astronaut's head drifting by a few pixels (and, in its middle,
    moving its brows up for 0.3 s), encoded frame by frame: no frame list is held."""
    import av
    import numpy as np
    from PIL import Image

    from sovtp.media.sample import astronaut

    w, h = size
    head = np.asarray(Image.fromarray(astronaut()[0:260, 100:350]).resize((240, 250)))
    n = int(seconds * fps)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast"}
        for k in range(n):
            c = np.full((h, w, 3), 50, np.uint8)
            dx = int(round(4 * np.sin(2 * np.pi * k / (fps * 7))))
            dy = int(round(3 * np.sin(2 * np.pi * k / (fps * 5))))
            x, y = (w - 240) // 2 + dx, (h - 250) // 2 + dy
            c[y : y + 250, x : x + 240] = head
            if abs(k - n // 2) < 0.15 * fps:  # a brief brow raise: the upper face moves up
                c[y + 40 : y + 95, x + 40 : x + 200] = np.roll(
                    c[y + 40 : y + 95, x + 40 : x + 200], -3, axis=0
                )
            for pkt in s.encode(av.VideoFrame.from_ndarray(c, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def _scratch(prefix: str) -> tuple[Path, dict[str, str]]:
    """A scratch folder and the child's environment: an empty annotation/response cache of its
    own (so each run measures the work, not a hit), the user's model files linked in."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    env = os.environ | {"SOVTP_CACHE_DIR": str(tmp / "cache")}
    models = Path.home() / ".cache" / "sovtp" / "models"
    (tmp / "cache").mkdir()
    if models.exists():
        (tmp / "cache" / "models").symlink_to(models)
    return tmp, env


def spot_main(minutes: list[float], fps: int) -> None:
    import csv

    tmp, env = _scratch("sovtp-mem-spot-")
    res = {}
    for m in minutes:
        t = time.perf_counter()
        d = tmp / f"m{m:g}"
        d.mkdir()
        spot_clip(d / "v.mp4", m * 60, fps)
        made = time.perf_counter() - t
        mid = int(m * 60 * fps) // 2
        with (d / "m.csv").open("w", newline="") as f:
            csv.writer(f).writerows(
                [["id", "media", "onset", "apex", "offset"], ["a", "v.mp4", mid - 4, mid, mid + 4]]
            )
        res[m] = _child(SPOT_CHILD, [d / "m.csv", d / "run"], env)
        print(
            f"spot {m:g} min 640x360 @ {fps} fps ({int(m * 60 * fps)} frames): peak RSS "
            f"{res[m]['peak_kib'] / 1024:.1f} MiB, errors {res[m]['errors']}, "
            f"spot {res[m]['wall']:.1f} s (clip made in {made:.1f} s)"
        )
    lo, hi = min(minutes), max(minutes)
    ratio = res[hi]["peak_kib"] / res[lo]["peak_kib"]
    print(f"spot peak RSS {hi:g} min / {lo:g} min: {ratio:.3f} (target ≤ 1.2)")


def _child(script: str, args: list, env: dict) -> dict:
    """Run ``script`` in a fresh process (its peak RSS is its own) and read the JSON line it
    prints last; a failure ends the benchmark with the child's error."""
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], env=env, capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=10000)
    ap.add_argument("--spot", action="store_true", help="the spot case instead of bench")
    ap.add_argument("--minutes", type=float, nargs=2, default=[2.0, 10.0])
    ap.add_argument("--fps", type=int, default=25)
    a = ap.parse_args()
    if a.spot:
        spot_main(a.minutes, a.fps)
        return
    tmp, env = _scratch("sovtp-mem-")
    names = make_media(tmp / "media", video=False)
    res = {}
    for n in (a.small, a.large):
        m = write_manifest(tmp / "media", names, n)
        t = time.perf_counter()
        res[n] = _child(CHILD, [m, tmp / f"run{n}"], env)
        print(
            f"{n:6d} samples: peak RSS {res[n]['peak_kib'] / 1024:.1f} MiB, "
            f"{res[n]['rows']} rows, {time.perf_counter() - t:.1f} s"
        )
    ratio = res[a.large]["peak_kib"] / res[a.small]["peak_kib"]
    print(f"peak RSS {a.large} / {a.small}: {ratio:.3f} (target ≤ 1.2)")


if __name__ == "__main__":
    main()
