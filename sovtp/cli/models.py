"""``sovtp models fetch|list|path|convert-checkpoint`` and ``sovtp prompts list``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovtp.errors import SovtpError


def prompts_list() -> None:
    """List prompt specs with their output contracts, descriptions and hashes."""
    from sovtp.prompting.spec import list_specs, load_spec

    for sid in list_specs():
        s = load_spec(sid)
        print(f"{sid:28s} {s.hash}  {s.output:6s}  {s.description}")


def models_fetch(
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds per network attempt.")
    ] = 20.0,
) -> None:
    """Download (or find) every MediaPipe model file and check its sha256."""
    from sovtp import assets

    for name, path in assets.fetch(timeout=timeout).items():
        print(f"{name}: {path}")


def models_list() -> None:
    """Every model file sovtp can use: pinned sha256, licence, and where it is (or not)."""
    from sovtp import assets

    for a in assets.ASSETS.values():
        try:
            p = assets.locate(a.name)
            if p:
                state = str(p)
            elif getattr(a, "default", True):
                state = "missing (run `sovtp models fetch`)"
            else:
                state = f"optional, not fetched (`sovtp models fetch {a.name}`)"
        except SovtpError as e:
            state = f"BAD: {e}"
        licence = getattr(a, "licence", "") or "?"
        print(f"{a.name:24s} {a.sha256[:16]}…  {licence:12s} {state}")


def models_path(
    name: Annotated[str, typer.Argument(help="face_landmarker | pose_landmarker_full")],
) -> None:
    """Print the verified local path of one model file (fetching it if needed)."""
    from sovtp import assets

    print(assets.resolve(name))


def models_convert_checkpoint(
    file: Annotated[Path, typer.Argument(help="An old sovtp (or foreign) .pt checkpoint.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Checkpoint folder to write (default: FILE minus .pt)."),
    ] = None,
    i_trust_this_file: Annotated[
        bool,
        typer.Option(
            "--i-trust-this-file",
            help="Allow the functions and classes the file's pickle names to run while it is "
            "read (only for a file whose author you trust: they can do anything).",
        ),
    ] = False,
) -> None:
    """Convert a .pt checkpoint into a checkpoint folder (weights as safetensors, config as
    JSON, optimiser state weights-only), which sovtp reads without running anything."""
    try:
        from sovtp.baselines.convert import convert_checkpoint
    except ImportError as e:  # torch / safetensors missing
        raise SovtpError(f"converting needs the cnn extra: pip install 'sovtp[cnn]' ({e})") from e
    folder = convert_checkpoint(file, out, trust=i_trust_this_file)
    print(f"{folder}: converted; score it with --system cnn:{folder}")
