"""Leave-one-attack-out training and evaluation of a CNN presentation-attack detector.

For each attack species (:func:`sovtp.data.pad.leave_one_attack_out`): train a two-class
(bona_fide / attack) CNN with :func:`sovtp.baselines.train.fit` on the fold's training samples,
then predict its dev samples (the threshold, seen species only) and its test samples (bona fide
+ the held-out species).  The result is prediction rows in the bench's shape (``sample_id``,
``system``, ``variant``, ``gold``, ``label``, ``scores``, ``confidence``, ``split``,
``attack_type``, ``held_out``): :func:`sovtp.report.pad.pad_section` reads them, and so does
:func:`sovtp.scoring.summary.summarise` (one variant per fold, its threshold on its dev rows).

``TrainConfig.freq`` adds the frequency channel (:mod:`sovtp.baselines.freq`); ``fit`` and
``predict.load`` read it from there, the one place it is set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
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
        cfg["model"],
        len(ckpt["labels"]),
        None,
        size=cfg["size"],
        freq=freq,
        **cfg.get("model_kwargs", {}),
    )
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
    crops: CropFn = image_crops,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Train on one fold and return its dev and test prediction rows."""
    from sovtp.baselines.predict import predict_crops
    from sovtp.baselines.train import fit
    from sovtp.records import Prediction

    train = cropset(fold.train, cfg.size, crops)
    extra = {"freq": cfg.freq, "pad": fold.describe()}
    ck = fit(train, cfg, out, progress=progress, extra=extra)
    m = load_fold_model(ck, cfg.device)
    variant = f"loao:{fold.held_out}"
    by_id = {s.id: s for s in [*fold.dev, *fold.test]}
    rows = []
    for split, samples in (("dev", fold.dev), ("test", fold.test)):
        if not samples:
            continue
        try:
            preds = predict_crops(m, cropset(samples, cfg.size, crops), variant)
        except ValueError:  # not one sample with a face crop
            preds = []
        # a sample without a crop (no face found: an attack a detector misses, often) is an
        # invalid row — counted wrong, never dropped, or APCER would flatter the detector
        seen = {p.sample_id for p in preds}
        preds += [
            Prediction(
                sample_id=s.id,
                system=m.name,
                variant=variant,
                gold=normalise_label(s.label),
                parse_status="invalid",
                error="no face crop",
            )
            for s in samples
            if s.id not in seen
        ]
        rows += _rows(preds, by_id, fold.held_out, split)
    return rows


def fold_dir(out: str | Path, held_out: str, freq: bool) -> Path:
    """Where a fold's checkpoint goes: ``out/<held-out species>[-freq]/``."""
    return Path(out) / (held_out + ("-freq" if freq else ""))


def leave_one_attack_out_cnn(
    samples: Iterable[Any],
    out: str | Path,
    cfg: TrainConfig | None = None,
    *,
    protocol: PadProtocol | None = None,
    species: Sequence[str] | None = None,
    crops: CropFn = image_crops,
    progress: bool = False,
    folds: Sequence[PadFold] | None = None,
) -> list[dict[str, Any]]:
    """Every fold of the leave-one-attack-out protocol (or the ``folds`` given): checkpoints
    under :func:`fold_dir`, prediction rows returned (see the module doc).  With ``progress`` a
    bar over the folds, and each fold's training bar under it."""
    from tqdm.auto import tqdm

    cfg = cfg or TrainConfig()
    if folds is None:
        folds = leave_one_attack_out(list(samples), protocol, species)
    rows: list[dict[str, Any]] = []
    bar = tqdm(folds, desc="leave-one-attack-out", unit="fold", disable=not progress)
    for f in bar:
        bar.set_postfix(held_out=f.held_out)
        log.info("fold holding out %s: %s", f.held_out, f.describe())
        sub = fold_dir(out, f.held_out, cfg.freq)
        rows += run_fold(f, cfg, sub, crops=crops, progress=progress)
    return rows


# ------------------------------------------------------------------------ the `sovtp pad` run

PAD_FORMAT = "sovtp-pad/1"
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson")
CROPS = {"image": image_crops, "face": face_crops}
ROW_KEYS = (
    "sample_id",
    "system",
    "variant",
    "fold",
    "held_out",
    "split",
    "gold",
    "label",
    "score",
    "scores",
    "confidence",
    "attack",
    "attack_type",
    "parse_status",
    "error",
)


def check_columns(columns: Sequence[str], where: str) -> None:
    """Refuse a manifest without ``label``, ``split`` and ``attack`` (or ``attack_type``),
    naming what is missing and what it has — before any crop is cut."""
    from sovtp.errors import SovtpError

    have = {str(c).strip().lower() for c in columns}
    missing = [c for c in ("label", "split") if c not in have]
    if not have & {"attack", "attack_type"}:
        missing.append("attack")
    if missing:
        raise SovtpError(
            f"{where}: a PAD manifest needs the column(s) {', '.join(missing)} (label: bona_fide "
            "| attack; attack: the species — print, replay, mask, digital ..., empty for bona "
            f"fide; split: train / dev / test); its columns are {', '.join(map(str, columns))}"
        )


def pad_protocol(ev: Any) -> PadProtocol:
    """The evaluator's leave-one-out protocol as a :class:`PadProtocol` (refused when it has
    none, or regroups by a column other than the attack species)."""
    from sovtp.data.pad import ATTACK_COLUMNS
    from sovtp.errors import SovtpError

    p = ev.protocol
    if p is None:
        raise SovtpError(
            f"evaluator {ev.name!r} declares no protocol; sovtp pad needs "
            "leave_one_out by attack (see evaluators/pad.yaml)"
        )
    if p.by not in ATTACK_COLUMNS:
        raise SovtpError(
            f"evaluator {ev.name!r}: protocol.by is {p.by!r}; sovtp pad holds out "
            f"attack species ({' or '.join(ATTACK_COLUMNS)})"
        )
    return PadProtocol(p.train_split, p.dev_split, p.test_split)


def load_pad_samples(dataset: str, ev: Any, root: str | Path | None = None) -> list[Any]:
    """Every sample of ``dataset`` (all splits), gold normalised by the evaluator's label set;
    a missing column or a gold label outside it raises :class:`~sovtp.errors.SovtpError`."""
    from sovtp.data.manifest import check_gold, manifest_columns
    from sovtp.data.sources import open_dataset
    from sovtp.errors import SovtpError

    p = Path(dataset)
    if p.suffix.lower() in MANIFEST_SUFFIXES and p.exists():
        check_columns(manifest_columns(p), str(p))
    samples = list(open_dataset(dataset, root=root, **dict(ev.options)))
    if not samples:
        raise SovtpError(f"{dataset}: no samples")
    ls = ev.labels()
    check_gold(samples, ls)
    for s in samples:
        if s.label is not None:
            s.label = ls.normalize(s.label)
    if not any(s.split for s in samples):
        raise SovtpError(f"{dataset}: no sample has a split (train / dev / test)")
    return samples


def prediction_row(r: dict[str, Any], positive: str = ATTACK) -> dict[str, Any]:
    """A row of ``predictions.jsonl``: what :func:`sovtp.report.pad.pad_section` reads, plus
    ``fold`` (the held-out species), ``score`` (the attack score the threshold is applied to)
    and ``attack`` (the row's species, None for bona fide) — enough to recompute every rate."""
    from sovtp.scoring.summary import positive_score

    negative = BONA_FIDE if positive == ATTACK else ATTACK
    sc = positive_score(r, positive, negative)
    out = {
        **r,
        "fold": r.get("held_out"),
        "attack": attack_of(r),
        "score": sc if sc == sc else None,
    }
    return {k: out.get(k) for k in ROW_KEYS}


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``predictions.jsonl`` (a ``sovtp bench`` run's, or its folder)."""
    import json

    p = Path(path)
    p = p / "predictions.jsonl" if p.is_dir() else p
    if not p.exists():
        from sovtp.errors import SovtpError

        raise SovtpError(f"no such predictions file: {p}")
    try:
        return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]
    except (UnicodeDecodeError, ValueError) as e:  # a binary file (a pickle) or not JSON lines
        from sovtp.errors import SovtpError

        raise SovtpError(f"{p}: not a predictions.jsonl (one JSON object a line): {e}") from None


def zero_shot_fold_rows(preds: Iterable[dict[str, Any]], folds: Sequence[PadFold]) -> list[dict]:
    """A zero-shot system's answers (e.g. ``sovtp bench --evaluator pad --prompt
    liveness/plain --split all``) scored under the same folds as the CNNs: nothing is trained,
    but each fold's threshold is still the EER point of its dev samples *without* the held-out
    species, applied to bona fide + that species on test.  Rows are matched to the folds'
    samples by ``sample_id`` (the last row of a sample wins, per system × variant: run the
    bench with one subject per sample); a fold sample the system never answered is an invalid
    row — counted wrong, never dropped.  Variant ``<variant> loao:<species>`` (one threshold per fold in the
    summary; one entry per system in :func:`~sovtp.report.pad.pad_section`)."""
    last: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in preds:
        key = (str(r.get("system") or ""), str(r.get("variant") or ""))
        last.setdefault(key, {})[str(r["sample_id"])] = r
    out = []
    for (system, variant), by_id in sorted(last.items()):
        for f in folds:
            for split, group in (("dev", f.dev), ("test", f.test)):
                for smp in group:
                    r = by_id.get(smp.id) or {
                        "sample_id": smp.id,
                        "parse_status": "invalid",
                        "error": "not answered by this system",
                    }
                    out.append(
                        {
                            **r,
                            "system": system,
                            "variant": f"{variant} loao:{f.held_out}".strip(),
                            "gold": normalise_label(smp.label),
                            "split": split,
                            "attack_type": attack_of(smp),
                            "held_out": f.held_out,
                        }
                    )
    return out
