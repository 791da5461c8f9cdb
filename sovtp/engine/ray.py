"""The Ray Data engine: the same job as the local engine, spread over a Ray cluster.

Samples travel as small JSON dicts (paths, labels — never pixels); each actor builds its own
:class:`~sovtp.engine.runner.Context` (its own MediaPipe landmarkers and backend clients, so each
worker talks to the vLLM endpoints directly) and returns finished rows.  The driver writes them
to the run folder exactly as the local engine does, so ``--resume``, the report and the
predictions are the same whichever engine ran.  Media paths must be readable by the workers (a
shared file system on a multi-node cluster).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sovtp.data.sample import Sample, sample_from_dict, sample_to_dict
from sovtp.engine.config import BenchConfig
from sovtp.engine.items import Stats, rows_of
from sovtp.engine.runner import Context
from sovtp.labels import LabelSet


class _Worker:
    """A Ray Data actor: samples in, rows out."""

    def __init__(
        self,
        cfg_json: str,
        labels: dict[str, Any],
        done: list[str],
        gallery: str | None,
        gallery_samples: list[str],
    ):
        cfg = BenchConfig.model_validate_json(cfg_json)
        ls = LabelSet(labels["name"], labels["labels"], labels["synonyms"])
        self.ctx = Context(
            cfg, ls, gallery_dir=Path(gallery) if gallery else None, gallery_samples=gallery_samples
        )
        self.done = set(done)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        items = []
        for s in batch["sample"]:
            items += self.ctx.prepare(sample_from_dict(json.loads(s)), self.done)
        out: list[str] = []
        self.ctx.answer(
            items, lambda it, r, p: out.append(json.dumps(rows_of(it, r, p), default=str))
        )
        return {"rows": out}


def run_ray(
    cfg: BenchConfig,
    labels: LabelSet,
    samples: Iterable[Sample],
    done: set[str],
    write: Callable[[dict, dict, dict | None], None],
    gallery_dir: Path | None,
    num_cpus: int | None = None,
    gallery_samples: Iterable[str] = (),
) -> Stats:
    try:
        import ray
    except ImportError as e:
        raise RuntimeError("--engine ray needs Ray Data: pip install 'sovtp[ray]'") from e
    own = not ray.is_initialized()
    if own:
        ray.init(
            num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    stats = Stats()
    try:
        # the sample list is small metadata (paths + labels); pixels are only ever read by workers
        items = [{"sample": json.dumps(sample_to_dict(s))} for s in samples]
        if not items:
            return stats
        ds = ray.data.from_items(items)
        lab = {"name": labels.name, "labels": labels.labels, "synonyms": labels.synonyms}
        rows = ds.map_batches(
            _Worker,
            fn_constructor_args=(
                cfg.model_dump_json(),
                lab,
                sorted(done),
                str(gallery_dir) if gallery_dir else None,
                sorted(gallery_samples),  # a resume re-draws these, never adds more
            ),
            batch_size=cfg.chunk,
            concurrency=1,
            num_cpus=1,
        )
        for r in rows.iter_rows():
            resp, pred, gal = json.loads(r["rows"])
            write(resp, pred, gal)
        return stats
    finally:
        if own:
            ray.shutdown()
