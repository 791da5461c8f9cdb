"""``sovtp pad``: liveness / face presentation-attack detection under the leave-one-attack-out
protocol of an evaluator (``evaluators/pad.yaml``): one CNN per held-out attack species, its
threshold fixed at the dev split's EER point and applied to test (extra ``cnn``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sovtp.cli.options import TRAIN_OPTIONS, shared_options
from sovtp.errors import SovtpError

ARCH_ALIASES = {"vit": "vit_b_16"}
PadData = Annotated[
    str,
    typer.Argument(
        help="A PAD manifest (.csv/.jsonl) with columns media, label (bona_fide | attack), "
        "attack (print, replay, mask, digital, ...; empty for bona fide) and split "
        "(train / dev / test), or ADAPTER:ROOT."
    ),
]


@shared_options(TRAIN_OPTIONS, into="train")
def pad_cmd(
    dataset: PadData,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Run folder: pad.json, predictions.jsonl, report.md/html, a checkpoint per fold.",
        ),
    ],
    arch: Annotated[
        str,
        typer.Option(
            help="mobilenet_v2 | resnet50 | vit (ViT-B/16) | any timm name (timm) | none (no "
            "CNN: score only --predictions)."
        ),
    ] = "mobilenet_v2",
    predictions: Annotated[
        list[Path] | None,
        typer.Option(
            "--predictions",
            help="A zero-shot run's predictions.jsonl (or its folder), e.g. `sovtp bench DATASET "
            "--evaluator pad --prompt liveness/plain --split all`: scored under the same folds "
            "(repeatable).",
        ),
    ] = None,
    evaluator: Annotated[
        str, typer.Option(help="Evaluator spec: label set, protocol (splits), task options.")
    ] = "pad",
    species: Annotated[
        list[str] | None,
        typer.Option("--species", help="Hold out only these species (repeat); default: each."),
    ] = None,
    crops: Annotated[
        str,
        typer.Option(
            help="image: the media are face crops (resized, no detection) | face: detect and "
            "align the face in images or videos (MediaPipe, annotation cache)."
        ),
    ] = "image",
    *,
    train: dict,
    steps_per_epoch: Annotated[
        int | None, typer.Option(help="Steps per epoch (default: one pass over the crops).")
    ] = None,
    model_kwargs: Annotated[
        str | None,
        typer.Option(help="Backbone arguments as JSON, e.g. '{\"width_mult\": 0.5}'."),
    ] = None,
    root: Annotated[
        Path | None, typer.Option(help="Media root (default: the manifest's folder).")
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars.")] = False,
) -> None:
    """Train and test a presentation-attack detector per held-out attack species; report APCER
    per species, BPCER, ACER, EER and BPCER20 (pad.json, predictions.jsonl, report.md/html).

    Exit codes: 0 every sample answered validly (by each CNN and zero-shot run); 3 some answers
    are errors or invalid (no face crop, unparseable; counts printed); 4 no valid answer at all
    (with the likely cause); 2 usage or input error, or OUT already holds a pad run;
    130 interrupted."""
    try:
        kwargs = json.loads(model_kwargs) if model_kwargs else {}
    except json.JSONDecodeError as e:
        raise SovtpError(f"--model-kwargs is not JSON: {e}") from e
    if not isinstance(kwargs, dict):
        raise SovtpError("--model-kwargs must be a JSON object")
    try:
        from sovtp.baselines.train import TrainConfig
        from sovtp.recipes.pad import run_pad
    except ImportError as e:  # torch / torchvision missing
        raise SovtpError(f"sovtp pad needs the cnn extra: pip install 'sovtp[cnn]' ({e})") from e
    try:
        cfg = TrainConfig(
            model=ARCH_ALIASES.get(arch.lower(), arch),
            steps_per_epoch=steps_per_epoch,
            model_kwargs=kwargs,
            **train,
        )
        doc = run_pad(
            dataset,
            out,
            cfg,
            evaluator=evaluator,
            species=species,
            crops=crops,
            root=root,
            progress=not no_progress,
            train_cnn=arch.lower() != "none",
            predictions=predictions or [],
        )
    except ValueError as e:
        raise SovtpError(str(e)) from e
    for e in doc["systems"]:
        m = e["mean"]
        typer.echo(
            f"{e['system']} ({e['variant']}): {len(e['folds'])} fold(s) · mean ACER {100 * m['acer']:.1f} % · "
            f"BPCER {100 * m['bpcer']:.1f} % · EER {100 * m['eer']:.1f} %"
        )
    if any(
        "optimistic" in str(f.get("threshold_source", ""))
        for e in doc["systems"]
        for f in e["folds"]
    ):
        typer.echo(
            "warning: no dev rows in some folds — their threshold is the test rows' own "
            "EER point (optimistic); give the manifest a dev split",
            err=True,
        )
    typer.echo(f"{out / 'pad.json'} · {out / 'report.html'}")
    from sovtp.cli.console import console, print_outcome
    from sovtp.engine.outcome import Outcome

    code = print_outcome(Outcome(**doc["answers"]), console(stderr=True))
    if code:
        raise typer.Exit(code)
