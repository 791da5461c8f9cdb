"""``sovtp train``: a CNN baseline on a benchmark's training split (extra ``cnn``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovtp.cli.options import GoldLabels
from sovtp.errors import SovtpError


def train_cmd(
    dataset: Annotated[
        str,
        typer.Argument(
            help="A manifest (.csv/.jsonl), ADAPTER:ROOT (e.g. dfew:/data/DFEW) or hf:PATH."
        ),
    ],
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
    epochs: Annotated[int, typer.Option(help="Epochs (passes over the face crops).")] = 10,
    batch_size: Annotated[int, typer.Option(help="Crops per step.")] = 64,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (cosine decay).")] = 3e-4,
    size: Annotated[int, typer.Option(help="Crop side in pixels.")] = 224,
    sampling: Annotated[
        str, typer.Option("--sampling", "-s", help="Frames per clip (as in bench).")
    ] = "uniform:8",
    weights: Annotated[
        str | None,
        typer.Option(
            help="'imagenet' (MobileNetV2: pinned torchvision file), a state-dict path, "
            "or none: from scratch."
        ),
    ] = None,
    balance: Annotated[str, typer.Option(help="Class balance: sampler | loss | none.")] = "sampler",
    no_augment: Annotated[
        bool, typer.Option("--no-augment", help="No flip/affine/colour jitter.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda when present).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N training samples.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from OUT/last/ after its epoch.")
    ] = False,
    freq: Annotated[
        bool,
        typer.Option("--freq", help="Add the crop's FFT high-pass as a 4th channel (liveness)."),
    ] = False,
) -> None:
    """Train a CNN baseline on aligned face crops of the subject (from the annotation cache);
    a checkpoint every epoch.  Score it with `sovtp bench ... --system cnn:OUT`."""
    try:
        import torch  # noqa: F401

        from sovtp.recipes.train import run_train
    except ImportError as e:  # torch / torchvision missing
        raise SovtpError(f"sovtp train needs the cnn extra: pip install 'sovtp[cnn]' ({e})") from e
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
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        size=size,
        sampling=sampling,
        weights=weights,
        balance=balance,
        augment=not no_augment,
        seed=seed,
        device=device,
        freq=freq,
    )
    from sovtp.baselines.checkpoint import read_meta

    ck = read_meta(ckpt)  # checkpoint.json: no tensor, nothing unpickled
    h = ck["history"][-1] if ck.get("history") else {}
    typer.echo(
        f"{ckpt}: {ck['config']['model']} · {ck['weights']['weights']} · epoch {h.get('epoch')} "
        f"loss {h.get('loss', float('nan')):.4f} · {ck['train_samples']} samples, "
        f"{ck['train_crops']} crops"
    )
