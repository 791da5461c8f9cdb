"""An ablation of k prompt variants costs one annotation pass: detector calls and wall time for
k = 1 and k = 6 variants, same samples, FACS backend, measured in one run.

    python benchmarks/ablation_reuse.py [--samples 12] [--k 6]

Every sample is a distinct file; both runs start from an empty annotation cache (so each pays
for detection) and run without the response cache; both write a full run folder and report.  Target: calls(k=6) = calls(k=1) and wall(k=6) ≤ 1.5 × wall(k=1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _media import make_media, write_manifest  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=12)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--sampling", default="uniform:8")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sovtp-ablate-"))
    models = Path.home() / ".cache" / "sovtp" / "models"
    os.environ["SOVTP_CACHE_DIR"] = str(tmp / "cache")
    (tmp / "cache").mkdir()
    if models.exists():
        (tmp / "cache" / "models").symlink_to(models)
    from sovtp.engine.config import BenchConfig
    from sovtp.prompting.ablation import LADDER
    from sovtp.recipes.bench import run_bench

    names = make_media(tmp / "media")
    manifest = write_manifest(tmp / "media", names, a.samples, distinct=True)
    res = {}
    for k in (1, a.k):
        shutil.rmtree(tmp / "cache" / "annotations", ignore_errors=True)
        cfg = BenchConfig(
            data=str(manifest),
            variants=LADDER[:k],
            sampling=a.sampling,
            out=str(tmp / f"run{k}"),
            n_boot=200,
            response_cache=False,
        )
        t = time.perf_counter()
        _, st = run_bench(cfg)
        res[k] = (time.perf_counter() - t, st.detector_calls, st.annotations)
    (w1, c1, n1), (wk, ck, nk) = res[1], res[a.k]
    print(f"samples {a.samples} ({a.sampling}); FACS backend; report written each time")
    print(f"k=1: {w1:.2f} s, {c1} detector calls, {n1} clips annotated")
    print(f"k={a.k}: {wk:.2f} s, {ck} detector calls, {nk} clips annotated")
    print(f"detector calls k={a.k} / k=1: {ck / c1:.2f} (target 1.00)")
    print(f"wall k={a.k} / k=1: {wk / w1:.2f} (target ≤ 1.5)")


if __name__ == "__main__":
    main()
