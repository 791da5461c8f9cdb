"""Leave-one-attack-out training and evaluation of a CNN presentation-attack detector.

For each attack species (:func:`sovtp.data.pad.leave_one_attack_out`): train a two-class
(bona_fide / attack) CNN with :func:`sovtp.baselines.train.fit` on the fold's training samples,
then predict its dev samples (the threshold, seen species only) and its test samples (bona fide
+ the held-out species).  The result is prediction rows in the bench's shape (``sample_id``,
``system``, ``variant``, ``gold``, ``label``, ``scores``, ``confidence``, ``split``,
``attack_type``, ``held_out``): :func:`sovtp.report.pad.pad_section` reads them, and so does
:func:`sovtp.scoring.summary.summarise` (one variant per fold, its threshold on its dev rows).

``freq=True`` adds the frequency channel (:mod:`sovtp.baselines.freq`) through
``TrainConfig.freq``, which ``fit`` and ``predict.load`` read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sovtp.baselines.train import TrainConfig
from sovtp.data.pad import (
    ATTACK,
    BONA_FIDE,
    PadFold,
    PadProtocol,
    attack_of,
    image_crops,
    leave_one_attack_out,
    normalise_label,
)

log = logging.getLogger(__name__)
LABELS = [BONA_FIDE, ATTACK]
CropFn = Callable[[Sequence[Any], int], list[Any]]


def face_crops(samples: Sequence[Any], size: int, sampling: str = "uniform:8") -> list[Any]:
    """Aligned face crops from the annotation cache (the bench's own faces), per sample."""
    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
    from sovtp.baselines.data import sample_crops

    with MediaPipeAnnotator(DetectorConfig()) as det:
        return [sample_crops(s, size, sampling, detector=det) for s in samples]


def cropset(samples: Sequence[Any], size: int, crops: CropFn = image_crops):
    """A two-class CropSet of ``samples`` (gold normalised to bona_fide / attack)."""
    from sovtp.baselines.data import CropSet

    per = crops(samples, size)
    ys = [normalise_label(s.label) for s in samples]
    return CropSet.from_arrays(per, ys, [s.id for s in samples], LABELS)


def load_fold_model(ckpt: dict[str, Any], device: str | None = None):
    """A :class:`sovtp.baselines.predict.Loaded` from a fold's checkpoint dict (frequency
    channel rebuilt when the checkpoint says it was trained with one)."""
    from sovtp.baselines.freq import build_freq_model
    from sovtp.baselines.predict import Loaded
    from sovtp.baselines.train import pick_device

    cfg = ckpt["config"]
    freq = bool(ckpt.get("freq"))
    model, _ = build_freq_model(
        cfg["model"], len(ckpt["labels"]), None, size=cfg["size"], freq=freq,
        **cfg.get("model_kwargs", {}),
    )  # fmt: skip
    model.load_state_dict(ckpt["model"])
    dev = pick_device(device or cfg.get("device"))
    model.to(dev).eval()
    name = f"cnn:{cfg['model']}" + ("+freq" if freq else "")
    return Loaded(model, list(ckpt["labels"]), cfg, dev, name)


def _rows(preds: Iterable[Any], by_id: dict[str, Any], fold: str, split: str) -> list[dict]:
    out = []
    for p in preds:
        s = by_id[p.sample_id]
        r = p.model_dump()
        r.update(split=split, attack_type=attack_of(s), held_out=fold)
        out.append(r)
    return out


def run_fold(
    fold: PadFold,
    cfg: TrainConfig,
    out: str | Path,
    *,
    freq: bool = False,
    crops: CropFn = image_crops,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Train on one fold and return its dev and test prediction rows."""
    from sovtp.baselines.predict import predict_crops
    from sovtp.baselines.train import fit

    train = cropset(fold.train, cfg.size, crops)
    extra = {"freq": freq, "pad": fold.describe()}
    ck = fit(train, replace(cfg, freq=freq), out, progress=progress, extra=extra)
    m = load_fold_model(ck, cfg.device)
    variant = f"loao:{fold.held_out}"
    by_id = {s.id: s for s in [*fold.dev, *fold.test]}
    rows = []
    for split, samples in (("dev", fold.dev), ("test", fold.test)):
        if samples:
            preds = predict_crops(m, cropset(samples, cfg.size, crops), variant)
            rows += _rows(preds, by_id, fold.held_out, split)
    return rows


def leave_one_attack_out_cnn(
    samples: Iterable[Any],
    out: str | Path,
    cfg: TrainConfig | None = None,
    *,
    freq: bool = False,
    protocol: PadProtocol | None = None,
    species: Sequence[str] | None = None,
    crops: CropFn = image_crops,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Every fold of the leave-one-attack-out protocol: checkpoints under
    ``out/<held-out species>[-freq]/``, prediction rows returned (see the module doc)."""
    cfg = cfg or TrainConfig()
    folds = leave_one_attack_out(list(samples), protocol, species)
    rows: list[dict[str, Any]] = []
    for f in folds:
        log.info("fold holding out %s: %s", f.held_out, f.describe())
        sub = Path(out) / (f.held_out + ("-freq" if freq else ""))
        rows += run_fold(f, replace(cfg), sub, freq=freq, crops=crops, progress=progress)
    return rows
