"""``sovtp train`` as a recipe: setup (the config and its identity) → the engine's folder rules
(one writer, kind ``train``, ``--resume`` only with the same settings) → the training loop
(:func:`sovtp.baselines.train.train`) → the checkpoint's summary.

Why the folder rules matter here: two trainings into one ``-o`` race on the checkpoint files, and
a resume with another learning rate, seed, crop size, batch size, epoch count, augmentation or
balance would write a checkpoint whose ``config`` claims settings it was not trained with.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sovtp.engine.folder import RunFolder
from sovtp.errors import SovtpError

# TrainConfig fields that change how training runs, never what it learns
COSMETIC = ("device",)


class TrainFolder(RunFolder):
    """A training output folder: ``last/`` (the checkpoint), the crop caches, ``config.json``."""

    def __init__(self, root: str | Path):
        super().__init__(root, kind="train")

    def has_results(self) -> bool:
        from sovtp.baselines.checkpoint import checkpoint_path

        return checkpoint_path(self.root).exists()

    def legacy_identity(self) -> dict[str, Any] | None:
        """A folder from before ``run.json``: its checkpoint's JSON holds config and data."""
        from sovtp.baselines.checkpoint import read_meta

        try:
            ck = read_meta(self.root)
        except Exception:  # an unreadable checkpoint: nothing to compare with
            return None
        return identity(ck.get("config", {}), ck.get("data", {}), ck.get("labels"))


def identity(config: dict[str, Any], data: dict[str, Any], labels: Any = None) -> dict[str, Any]:
    """What a training measured: every TrainConfig field but the device, the data (source,
    split, fold, limit, evaluator) and the label set asked for."""
    keep = ("source", "split", "fold", "limit", "evaluator")
    return {
        "config": {k: v for k, v in sorted(config.items()) if k not in COSMETIC},
        "data": {k: data.get(k) for k in keep},
        **({"labels": labels} if labels is not None else {}),
    }


def run_train(
    dataset: str,
    out: str | Path,
    *,
    model: str = "mobilenet_v2",
    fold: int | None = None,
    split: str = "train",
    evaluator: str | None = None,
    labels: str | None = None,
    limit: int | None = None,
    resume: bool = False,
    progress: bool = True,
    **config: Any,
) -> Path:
    """Train into ``out`` under the run-folder rules; returns the checkpoint path."""
    from sovtp.baselines.train import TrainConfig, train

    try:
        cfg = TrainConfig(model=model, **config)
    except (TypeError, ValueError) as e:
        raise SovtpError(str(e)) from e
    data = {"source": dataset, "split": split, "fold": fold, "limit": limit, "evaluator": evaluator}
    ident = identity(json.loads(json.dumps(asdict(cfg), default=str)), data, labels)
    folder = TrainFolder(out)
    folder.claim(ident, resume)
    try:
        return train(
            dataset,
            model,
            fold,
            out,
            evaluator=evaluator,
            labels=labels,
            split=split,
            limit=limit,
            resume=resume,
            progress=progress,
            **config,
        )
    except ValueError as e:
        raise SovtpError(str(e)) from e
    finally:
        folder.close()
