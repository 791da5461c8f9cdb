"""``sovtp bench`` / ``sovtp ablate`` as a library call: config → run folder → report."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import logging
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from sovtp.bench.config import BenchConfig
from sovtp.bench.runner import Context, Stats, rows_of, run_local
from sovtp.bench.store import RunStore
from sovtp.data.sample import Sample
from sovtp.data.sources import open_dataset, select
from sovtp.errors import SovtpError
from sovtp.evaluator import load_evaluator
from sovtp.jsonl import iter_jsonl
from sovtp.labels import LabelSet, load_label_set
from sovtp.prompting.spec import load_spec

log = logging.getLogger(__name__)


def resolve(cfg: BenchConfig) -> BenchConfig:
    """Fill what the evaluator spec decides (split, fold, sampling, adapter options) where the
    user left it open."""
    if not cfg.evaluator:
        return cfg
    ev = load_evaluator(cfg.evaluator)
    if cfg.split is not None and ev.splits and cfg.split not in ev.splits:
        raise SovtpError(f"{ev.name} has no split {cfg.split!r} (splits: {', '.join(ev.splits)})")
    if cfg.fold is not None and ev.folds and cfg.fold not in ev.folds:
        raise SovtpError(f"{ev.name} has no fold {cfg.fold} (folds: {ev.folds})")
    upd: dict[str, Any] = {}
    if cfg.split is None and ev.split:
        upd["split"] = ev.split
    if cfg.fold is None and ev.fold is not None:
        upd["fold"] = ev.fold
    if not cfg.adapter_options and ev.options:
        upd["adapter_options"] = ev.options
    return cfg.model_copy(update=upd)


def label_set(cfg: BenchConfig) -> LabelSet:
    if cfg.labels:
        return load_label_set(cfg.labels)
    if cfg.evaluator:
        return load_evaluator(cfg.evaluator).labels()
    return load_label_set(load_spec(cfg.variants[0]).label_set)


def samples(cfg: BenchConfig) -> Iterator[Sample]:
    src = open_dataset(
        cfg.data, root=cfg.root, split=cfg.split, fold=cfg.fold, **cfg.adapter_options
    )
    return select(src, cfg.limit, cfg.shuffle, cfg.seed)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in (
        "sovtp",
        "mediapipe",
        "supervision",
        "transformers",
        "torch",
        "vllm",
        "openai",
        "ray",
        "av",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def run_manifest(
    cfg: BenchConfig, labels: LabelSet, frames: dict[str, list[int]]
) -> dict[str, Any]:
    from sovtp.annotate.mediapipe import DetectorConfig

    specs = [load_spec(v) for v in cfg.variants]
    return {
        "versions": versions(),
        "variants": [sp.id for sp in specs],
        "prompts": {sp.id: {"hash": sp.hash, "template": sp.template} for sp in specs},
        "labels": {"name": labels.name, "labels": labels.labels},
        "detector": DetectorConfig(max_faces=cfg.max_faces, pose=cfg.pose).key(),
        "sampling": cfg.sampling,
        "seeds": {"shuffle": cfg.seed, "generation": cfg.gen_seed, "bootstrap": 0},
        "systems": [_public(s.model_dump()) for s in cfg.systems],
        "frames": frames,
    }


def _public(system: dict[str, Any]) -> dict[str, Any]:
    """A system as written to a run folder: never its API key."""
    system["options"] = {k: v for k, v in system["options"].items() if k != "api_key"}
    return system


def count(cfg: BenchConfig) -> int | None:
    """How many rows the run will hold (a cheap pass over the label files, for the progress bar);
    None for HF datasets, whose pass would fetch the media."""
    if cfg.data.startswith("hf:"):
        return None
    n = sum(1 + max(0, len(s.face_labels) - 1) for s in samples(cfg))
    return n * len(cfg.systems) * len(cfg.variants)


def run_bench(
    cfg: BenchConfig,
    resume: bool = False,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    report: bool = True,
) -> tuple[Path, Stats]:
    """Run (or resume) a benchmark; returns the run folder and its counters."""
    cfg = resolve(cfg)
    labels = label_set(cfg)
    store = RunStore(cfg.out)
    done = store.open(resume)
    safe = cfg.model_dump()
    safe["systems"] = [_public(s) for s in safe["systems"]]  # never a secret in a run folder
    (store.root / "config.yaml").write_text(yaml.safe_dump(safe, sort_keys=False))
    old = {}
    mpath = store.root / "manifest.json"
    if resume and mpath.exists():
        import json

        old = json.loads(mpath.read_text()).get("frames", {})
    frames: dict[str, list[int]] = dict(old)
    store.write_json("manifest.json", run_manifest(cfg, labels, frames))

    def write(resp: dict[str, Any], row: dict[str, Any], gallery: dict[str, Any] | None) -> None:
        store.write_row(resp, row)
        if gallery:
            store.append(store.gallery, gallery)
        if "frames" in row:
            frames[row["sample_id"]] = row["frames"]
        if on_row:
            on_row(row)

    if cfg.engine == "ray":
        from sovtp.bench.engines import run_ray

        stats = run_ray(cfg, labels, samples(cfg), done, write, store.root / "gallery")
    elif cfg.engine == "local":
        ctx = Context(cfg, labels, gallery_dir=store.root / "gallery")
        try:
            run_local(samples(cfg), ctx, done, lambda it, r, p: write(*rows_of(it, r, p)))
        finally:
            ctx.close()
        stats = ctx.stats
    else:
        raise ValueError(f"engine must be local or ray, not {cfg.engine!r}")
    store.close()
    store.write_json("manifest.json", run_manifest(cfg, labels, frames))
    if cfg.evaluator and load_evaluator(cfg.evaluator).judge.enabled:
        write_reasoning(store.root)
    if report:
        from sovtp.report.build import write_report

        write_report(store.root)
    return store.root, stats


def write_reasoning(run: Path, method: str = "offline", backend=None) -> dict[str, Any]:
    """Reasoning scores of a run's rationales against the samples' reference descriptions,
    written to ``reasoning.json`` (the report shows them and names the method)."""
    import json

    from sovtp.scoring.reasoning import score_rows

    prompts, scale = None, 10
    cfg = yaml.safe_load((run / "config.yaml").read_text()) or {}
    if cfg.get("evaluator"):
        j = load_evaluator(cfg["evaluator"]).judge
        prompts, scale = j.prompts, j.scale
    res = score_rows(load_rows(run), method, backend, prompts, scale)
    (run / "reasoning.json").write_text(json.dumps(res, indent=1))
    return res


def load_rows(run: str | Path) -> list[dict[str, Any]]:
    return list(iter_jsonl(Path(run) / "predictions.jsonl"))
