"""``sovtp train``: a CNN baseline on a benchmark's training split (extra ``cnn``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovtp.cli.options import TRAIN_OPTIONS, GoldLabels, shared_options
from sovtp.errors import SovtpError

TrainData = Annotated[
    str,
    typer.Argument(
        help="A manifest (.csv/.jsonl), ADAPTER:ROOT (e.g. dfew:/data/DFEW) or hf:PATH."
    ),
]


@shared_options(TRAIN_OPTIONS, into="train")
def train_cmd(
    dataset: TrainData,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for crops, checkpoint (last/) and config.json."),
    ],
    model: Annotated[
        str,
        typer.Option(
            help="mobilenet_v2 | resnet50 | vit_b_16 (any timm name when timm is installed)."
        ),
    ] = "mobilenet_v2",
    fold: Annotated[int | None, typer.Option(help="Cross-validation fold of the split.")] = None,
    split: Annotated[str, typer.Option(help="The training split.")] = "train",
    evaluator: Annotated[
        str | None, typer.Option(help="Evaluator spec (its label set, synonyms, default fold).")
    ] = None,
    labels: GoldLabels = None,
    *,
    train: dict,
    balance: Annotated[str, typer.Option(help="Class balance: sampler | loss | none.")] = "sampler",
    no_augment: Annotated[
        bool, typer.Option("--no-augment", help="No flip/affine/colour jitter.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N training samples.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from OUT/last/ after its epoch.")
    ] = False,
) -> None:
    """Train a CNN baseline on aligned face crops of the subject (from the annotation cache);
    a checkpoint every epoch.  Score it with `sovtp bench ... --system cnn:OUT`.

    Exit codes: 0 trained; 2 usage or input error (or OUT holds another run, or --resume with
    changed settings); 130 interrupted (Ctrl-C or SIGTERM; continue with --resume)."""
    try:
        import torch  # noqa: F401

        from sovtp.recipes.train import run_train
    except ImportError as e:  # torch / torchvision missing
        raise SovtpError(f"sovtp train needs the cnn extra: pip install 'sovtp[cnn]' ({e})") from e
    try:
        ckpt = run_train(
            dataset,
            out,
            model=model,
            fold=fold,
            split=split,
            evaluator=evaluator,
            labels=labels,
            limit=limit,
            resume=resume,
            balance=balance,
            augment=not no_augment,
            **train,
        )
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted: {out}/last holds the last finished epoch; continue it with the same "
            "command and --resume",
            err=True,
        )
        raise typer.Exit(130) from None
    from sovtp.baselines.checkpoint import read_meta

    ck = read_meta(ckpt)  # checkpoint.json: no tensor, nothing unpickled
    h = ck["history"][-1] if ck.get("history") else {}
    typer.echo(
        f"{ckpt}: {ck['config']['model']} · {ck['weights']['weights']} · epoch {h.get('epoch')} "
        f"loss {h.get('loss', float('nan')):.4f} · {ck['train_samples']} samples, "
        f"{ck['train_crops']} crops"
    )
