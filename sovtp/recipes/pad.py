"""``sovtp pad`` as a recipe: liveness / face presentation-attack detection under the
evaluator's leave-one-attack-out protocol.  Setup (protocol, samples, folds, the zero-shot runs to
score beside) → the engine's folder (kind ``pad``, one writer) → one CNN per held-out species
(:mod:`sovtp.baselines.pad`) → the report kit's PAD tables and DET curve
(:mod:`sovtp.report.pad`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from sovtp.baselines.pad import (
    CROPS,
    PAD_FORMAT,
    face_crops,
    leave_one_attack_out_cnn,
    load_pad_samples,
    pad_protocol,
    prediction_row,
    read_predictions,
    zero_shot_fold_rows,
)
from sovtp.baselines.train import TrainConfig
from sovtp.data.pad import ATTACK, BONA_FIDE, leave_one_attack_out, normalise_label
from sovtp.engine.folder import RunFolder, atomic_write, write_json
from sovtp.engine.outcome import Outcome
from sovtp.errors import SovtpError
from sovtp.report.pad import pad_report, pad_section


def run_pad(
    dataset: str,
    out: str | Path,
    cfg: TrainConfig | None = None,
    *,
    evaluator: str = "pad",
    species: Sequence[str] | None = None,
    crops: str = "image",
    root: str | Path | None = None,
    progress: bool = True,
    train_cnn: bool = True,
    predictions: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """``sovtp pad``: the evaluator's leave-one-attack-out protocol on ``dataset`` — one CNN
    per held-out species, threshold at each fold's dev EER point applied to its test rows —
    written to ``out`` as ``predictions.jsonl``, ``pad.json``, ``report.md``, ``report.html``
    and a checkpoint folder per fold.  ``predictions`` (zero-shot runs' ``predictions.jsonl``)
    are scored under the same folds beside the CNN (:func:`zero_shot_fold_rows`);
    ``train_cnn=False`` scores only those.  Returns what ``pad.json`` holds."""
    from sovtp.evaluator import load_evaluator

    if crops not in CROPS:
        raise SovtpError(f"--crops must be one of {', '.join(CROPS)}; got {crops!r}")
    cfg = cfg or TrainConfig()
    ev = load_evaluator(evaluator)
    protocol = pad_protocol(ev)
    samples = load_pad_samples(dataset, ev, root)
    try:
        folds = leave_one_attack_out(samples, protocol, species)
    except ValueError as e:
        raise SovtpError(f"{dataset}: {e}") from e
    if not train_cnn and not predictions:
        raise SovtpError("nothing to score: no CNN to train (--arch none) and no --predictions")
    zero = [pad_predictions(p) for p in predictions]  # read first: a bad path fails fast
    folder = PadFolder(out)
    folder.claim(None, what=None)  # a finished pad run is not replaced; another kind's: refused
    out = Path(out)
    try:
        rows: list[dict[str, Any]] = []
        crop_fn = CROPS[crops]
        if crops == "face":
            crop_fn = partial(face_crops, sampling=cfg.sampling)
        if train_cnn:
            try:
                rows = leave_one_attack_out_cnn(
                    samples, out, cfg, crops=crop_fn, progress=progress, folds=folds
                )
            except OSError as e:  # an image PIL cannot read (a video needs --crops face)
                raise SovtpError(
                    f"{dataset}: cannot read a face image ({e}); for videos use --crops face"
                ) from e
        for z in zero:
            rows += zero_shot_fold_rows(z, folds)
        answers = pad_outcome(rows, predictions)
        from dataclasses import asdict

        meta = {
            "dataset": str(dataset),
            "evaluator": ev.name,
            "protocol": asdict(protocol),
            "folds": [f.describe() for f in folds],
            "config": {**asdict(cfg), "crops": crops} if train_cnn else None,
            "zero_shot": [str(p) for p in predictions],
            "answers": asdict(answers),  # the engine's exit rule over them (sovtp pad's status)
        }
        opts = ev.task_options
        return write_pad_run(
            out, rows, meta, positive=opts.positive or ATTACK, dev_split=protocol.dev_split
        )
    finally:
        folder.close()


class PadFolder(RunFolder):
    """A pad run folder: it holds results once ``pad.json`` is written (a run stopped before
    then may be run again into it); a finished one is never silently replaced — its fold
    checkpoints would stay beside results that no longer name them."""

    def __init__(self, root: str | Path):
        super().__init__(root, kind="pad")

    def has_results(self) -> bool:
        return (self.root / "pad.json").exists()


def pad_outcome(rows: Sequence[dict[str, Any]], predictions: Sequence[str | Path]) -> Outcome:
    """How the run ended, by the engine's one rule (:mod:`sovtp.engine.outcome`): each
    (system, prompt, sample) once — a zero-shot sample stands in several folds — an error or invalid
    answer counted as such; with no valid answer, the cause read from the zero-shot runs' own
    responses (a server that ignored the schema shows there, not in the scores)."""
    from sovtp.engine.outcome import outcome_of, run_outcome

    once = {(r.get("system"), _cell(r.get("variant")), r.get("sample_id")): r for r in rows}
    o = outcome_of(once.values())
    if o.valid <= 0 and predictions:
        runs = [Path(p) if Path(p).is_dir() else Path(p).parent for p in predictions]
        hints = [h for h in (run_outcome(r).hint for r in runs) if h]
        o.hint = "; ".join(dict.fromkeys(hints)) or o.hint
    return o


def _cell(variant: str | None) -> str:
    """A row's variant without its fold (``liveness/plain loao:print`` → ``liveness/plain``; a
    CNN's ``loao:print`` → ``""``): the prompt a system answered, the same in every fold."""
    return (variant or "").rsplit("loao:", 1)[0].strip()


def pad_predictions(path: str | Path) -> list[dict[str, Any]]:
    """A zero-shot run's rows for ``--predictions``, refused when the run is not a PAD run (its
    gold labels are not bona fide / attack): scoring an emotion run as liveness would report
    100 % error, silently."""
    rows = read_predictions(path)
    foreign = sorted(
        {
            str(r["gold"])
            for r in rows
            if r.get("gold") is not None and normalise_label(r["gold"]) is None
        }
    )
    if not rows or foreign:
        what = f"gold labels {', '.join(foreign[:5])}" if foreign else "no rows"
        raise SovtpError(
            f"{path}: not a PAD run ({what}); give --predictions of a `sovtp bench "
            "--evaluator pad` run"
        )
    return rows


def write_pad_run(
    out: str | Path,
    rows: Sequence[dict[str, Any]],
    meta: dict[str, Any] | None = None,
    *,
    positive: str = ATTACK,
    dev_split: str | None = "dev",
) -> dict[str, Any]:
    """``predictions.jsonl`` (:func:`prediction_row` each), ``pad.json`` (the
    :func:`~sovtp.report.pad.pad_section` of those rows, the rows themselves under ``rows`` and
    ``meta``), ``report.md`` and ``report.html``.  Returns the ``pad.json`` dict."""
    out = Path(out)
    negative = BONA_FIDE if positive == ATTACK else ATTACK
    preds = [prediction_row(r, positive) for r in rows]
    atomic_write(out / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in preds))
    section = pad_section(preds, positive=positive, negative=negative, dev_split=dev_split)
    doc = {
        "format": PAD_FORMAT,
        **section,
        "positive": positive,
        "negative": negative,
        "dev_split": dev_split,
        **(meta or {}),
        "rows": preds,
    }
    write_json(out / "pad.json", doc)
    title = f"Presentation-attack detection: {(meta or {}).get('dataset', out.name)}"
    md, html = pad_report(doc, title)  # the report kit's tables and DET curve, no dict reprs
    atomic_write(out / "report.md", md)
    atomic_write(out / "report.html", html)
    return doc
