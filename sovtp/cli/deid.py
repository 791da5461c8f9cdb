"""``sovtp deid`` (de-identified copy of a video, image or audio file) and ``sovtp audit`` (the
faces privacy audit of a folder, a run or a file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

DeidMode = Annotated[str, typer.Option("--mode", help="How faces are obscured: blur | pixelate.")]
BlurWho = Annotated[
    str,
    typer.Option(
        "--blur",
        help="Whose faces: all (default) | others (bystanders only; the subject's face kept).",
    ),
]


def deid_cmd(
    media: Annotated[Path, typer.Argument(help="A video, an image or an audio file.", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The de-identified file to write.")],
    mode: DeidMode = "blur",
    blur: BlurWho = "all",
    voice: Annotated[
        bool,
        typer.Option("--voice/--keep-voice", help="McAdams-anonymise the audio (default on)."),
    ] = True,
    alpha: Annotated[float, typer.Option("--alpha", help="McAdams coefficient.")] = 0.8,
    centerface_every: Annotated[
        int,
        typer.Option(
            "--centerface-every", help="Run CenterFace on every N-th frame (MediaPipe on all)."
        ),
    ] = 1,
) -> None:
    """Write a de-identified copy: every face blurred, the voice anonymised, nothing else kept."""
    from sovtp.deid.media import deid_media

    if out.is_dir():
        out = out / media.name
    info = deid_media(
        media, out, mode, blur, voice=voice, alpha=alpha, centerface_every=centerface_every
    )
    print(json.dumps({"out": str(out), **info}, default=str))


def audit_cmd(
    target: Annotated[
        Path,
        typer.Argument(
            help="De-identified media: a file, a folder of images/videos, or a run folder.",
            exists=True,
        ),
    ],
    raw: Annotated[
        Path | None,
        typer.Option(
            "--raw", help="The raw file the target was made from: adds the re-identification test."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for audit_faces.json / .md.")
    ] = None,
    max_frames: Annotated[
        int, typer.Option("--max-frames", help="Frames checked per video (0: all).")
    ] = 0,
) -> None:
    """Privacy audit (faces): faces still detectable by three detectors, and re-identification
    of raw faces after de-identification.  Exits 1 when the audit fails."""
    from sovtp.deid.audit import audit_images, collect, markdown, media_images, write_audit

    _names, images = collect(target, max_frames)
    raw_images = media_images(raw, max_frames) if raw is not None else None
    if raw_images is not None and len(raw_images) != len(images):
        raise typer.BadParameter(
            f"--raw has {len(raw_images)} frames, the target {len(images)}: they must align"
        )
    summary = audit_images(raw_images, images)
    if out is not None:
        write_audit(summary, out)
    print(markdown(summary), end="")
    if not summary["passed"]:
        raise typer.Exit(1)
