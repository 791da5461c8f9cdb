"""The ``sovtp`` command.  Thin: parse options, call library functions, print.

Heavy modules (mediapipe, supervision, openai, torch) are imported inside the commands, so
``sovtp --help`` is instant and needs none of them.  Errors meant for the user
(:class:`~sovtp.errors.SovtpError`, bad option values) print as one line with exit code 2.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from sovtp.errors import SovtpError

app = typer.Typer(
    help="sovtp — zero-shot emotion recognition and reasoning with vision LLMs "
    "(Set-of-Vision-Text prompting).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="MediaPipe model files: fetch, list, locate.", no_args_is_help=True)
prompts_app = typer.Typer(help="Prompt specs shipped in prompts/.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(prompts_app, name="prompts")

Sampling = Annotated[
    str, typer.Option("--sampling", "-s", help="uniform:N | fps:F | indices:I,J,... | all")
]
MaxFaces = Annotated[int, typer.Option(help="Most faces to look for per frame.")]
NoCache = Annotated[
    bool, typer.Option("--no-cache", help="Ignore the annotation cache (detect again).")
]
NoPose = Annotated[bool, typer.Option("--no-pose", help="Skip body pose (faster).")]
PromptId = Annotated[
    str, typer.Option("--prompt", "-p", help="Prompt spec ID (see `sovtp prompts list`).")
]
Labels = Annotated[str | None, typer.Option(help="Label set name (basic7, mafw11) or 'a,b,c'.")]
Subject = Annotated[str, typer.Option(help="largest | central | a face ID.")]
Transcript = Annotated[str | None, typer.Option(help="What is said in the clip (quoted verbatim).")]
Model = Annotated[
    str | None,
    typer.Option(help="Model name on the server (default: its first /v1/models entry)."),
]
Hf = Annotated[
    str | None,
    typer.Option("--hf", help="Run a transformers model in-process (hub ID or folder)."),
]
BackendName = Annotated[
    str | None, typer.Option(help="facs (offline, default) | openai | transformers | vllm.")
]
Server = Annotated[
    str, typer.Option(help="openai | vllm (vllm: structured_outputs via extra_body).")
]
MaxTokens = Annotated[int, typer.Option(help="Most tokens the model may answer with.")]
Temperature = Annotated[float, typer.Option(help="Sampling temperature.")]


def backend_options(
    backend: str | None,
    base_url: str | list[str] | None,
    model: str | None,
    hf: str | None,
    **server_options,
) -> tuple[str, dict]:
    """Backend name and constructor options from the CLI's --backend/--base-url/--model/--hf
    (shared by query, bench and ablate): a URL means openai, --hf means transformers, else the
    offline FACS reasoner.  ``server_options`` (server, timeout_s, concurrency) go to openai."""
    name = backend or ("openai" if base_url else "transformers" if hf else "facs")
    if name == "openai":
        if not base_url:
            raise SovtpError("--backend openai needs --base-url")
        opts = {"base_url": base_url, **server_options}
        return name, opts | ({"model": model} if model else {})
    if name in ("transformers", "vllm"):
        if not (hf or model):
            raise SovtpError(f"--backend {name} needs --hf MODEL (or --model)")
        return name, {"model": hf or model}
    return name, {}


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _quiet_native_stderr() -> None:
    """MediaPipe's C++ (glog/absl/TFLite) prints banners on fd 2 that no flag silences.  Point fd 2
    at /dev/null and give Python's own stderr a private duplicate of the terminal instead."""
    import os

    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(saved, "w", buffering=1)
    except OSError:
        pass


def _setup_logging(verbose: bool) -> None:
    if not verbose:
        _quiet_native_stderr()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
) -> None:
    _setup_logging(verbose)


def _annotate(media: Path, sampling: str, max_faces: int, no_cache: bool, no_pose: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from sovtp.annotate.mediapipe import DetectorConfig
    from sovtp.annotate.pipeline import annotate
    from sovtp.media.video import load_frames

    cfg = DetectorConfig(max_faces=max_faces, pose=not no_pose)
    frames = load_frames(media, sampling)
    with Progress(
        TextColumn("annotating {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_console(),
        transient=True,
    ) as prog:
        task = prog.add_task(media.name, total=len(frames))
        clip, frames = annotate(
            media,
            sampling,
            cfg,
            cache=not no_cache,
            frames=frames,
            progress=lambda n: prog.advance(task, n),
        )
    return clip, frames


@app.command("annotate")
def annotate_cmd(
    media: Annotated[Path, typer.Argument(help="A video (mp4, avi, mov, mkv, webm) or an image.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for annotated PNGs, annotations.json, cues.txt."),
    ],
    sampling: Sampling = "uniform:8",
    max_faces: MaxFaces = 6,
    landmarks: Annotated[
        str, typer.Option(help="Landmarks to draw: none | subset | all.")
    ] = "subset",
    au_overlay: Annotated[bool, typer.Option(help="Draw AU labels beside each face.")] = True,
    pose: Annotated[bool, typer.Option(help="Draw the body skeleton.")] = True,
    no_pose: NoPose = False,
    no_cache: NoCache = False,
) -> None:
    """Find faces and bodies, measure AUs, head pose, gaze and posture; draw and save them."""
    from PIL import Image

    from sovtp.render.marks import VisualSpec, render_frame

    clip, frames = _annotate(media, sampling, max_faces, no_cache, no_pose)
    out.mkdir(parents=True, exist_ok=True)
    spec = VisualSpec(landmarks=landmarks, au_overlay=au_overlay, pose=pose and not no_pose)
    by_index = {fa.index: fa for fa in clip.frames}
    for fr in frames:
        img = render_frame(fr, by_index[fr.index], spec)
        Image.fromarray(img).save(out / f"frame_{fr.index:06d}.png")
    (out / "annotations.json").write_text(json.dumps(clip.to_dict()))
    lines = [
        f"[{c.kind}]{'' if c.subject is None else f' person {c.subject}:'} {c.text}"
        for c in clip.cues
    ]
    (out / "cues.txt").write_text("\n".join(lines) + "\n")
    n_faces = len(clip.track_ids)
    print(
        f"{media}: {len(frames)} frames, {n_faces} face ID(s) {clip.track_ids}"
        f"{' (annotation cache hit)' if clip.cached else ''}"
    )
    for ln in lines:
        print("  " + ln)
    print(f"wrote {len(frames)} PNGs, annotations.json, cues.txt to {out}")


@app.command("prompt")
def prompt_cmd(
    media: Annotated[Path, typer.Argument(help="A video or an image.")],
    prompt: PromptId = "sovtp/full",
    labels: Labels = None,
    subject: Subject = "largest",
    transcript: Transcript = None,
    sampling: Sampling = "uniform:8",
    max_faces: MaxFaces = 6,
    image_size: Annotated[int, typer.Option(help="Longest side of each image sent, px.")] = 768,
    jpeg_quality: Annotated[int, typer.Option(help="JPEG quality of the images sent.")] = 85,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the prompt's images and text.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the OpenAI-style messages (images as data URLs).")
    ] = False,
    no_pose: NoPose = False,
    no_cache: NoCache = False,
) -> None:
    """Render the Set-of-Vision-Text prompt for a clip: print its text, write its images."""
    from sovtp.prompting.build import ImageOptions, build_query
    from sovtp.prompting.spec import load_spec

    spec = load_spec(prompt)
    clip, frames = _annotate(media, sampling, max_faces, no_cache, no_pose)
    q, images = build_query(
        clip,
        frames,
        spec,
        labels=labels,
        subject=subject,
        transcript=transcript,
        image_options=ImageOptions(image_size, jpeg_quality),
    )
    out = out or Path("sovtp-prompt") / Path(media).stem
    out.mkdir(parents=True, exist_ok=True)
    for k, im in enumerate(images):
        (out / f"image_{k}.jpg").write_bytes(im.jpeg)
    (out / "prompt.txt").write_text(q.text() + "\n")
    (out / "query.json").write_text(json.dumps(q.redacted(), indent=1))
    if as_json:
        print(json.dumps(q.messages))
        return
    print(q.text())
    _console().print(
        f"[dim]prompt {spec.id} ({spec.hash}), subject {q.subject}, {len(images)} image(s) → {out}[/dim]"
    )


@app.command("query")
def query_cmd(
    media: Annotated[Path, typer.Argument(help="A video or an image.")],
    base_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible server, e.g. http://localhost:8000/v1 (vllm serve)."),
    ] = None,
    model: Model = None,
    hf: Hf = None,
    backend: BackendName = None,
    server: Server = "openai",
    prompt: PromptId = "sovtp/full",
    labels: Labels = None,
    subject: Subject = "largest",
    transcript: Transcript = None,
    sampling: Sampling = "uniform:8",
    max_faces: MaxFaces = 6,
    max_tokens: MaxTokens = 512,
    temperature: Temperature = 0.0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 120.0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Query folder (default runs/query/<clip>).")
    ] = None,
    no_pose: NoPose = False,
    no_cache: NoCache = False,
) -> None:
    """Which emotion, and why: one clip through annotation, prompt, a backend and the parser."""
    from sovtp.query import run_query

    name, options = backend_options(backend, base_url, model, hf, server=server, timeout_s=timeout)
    clip, frames = _annotate(media, sampling, max_faces, no_cache, no_pose)
    out = out or Path("runs") / "query" / Path(media).stem
    result = run_query(
        clip,
        frames,
        prompt,
        name,
        options,
        out,
        labels=labels,
        subject=subject,
        transcript=transcript,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
    )
    from rich.console import Console
    from rich.panel import Panel

    pred, resp = result.prediction, result.response
    con = Console()
    if pred.label is None:
        why = resp.error or f"answer could not be parsed ({pred.parse_status})"
        con.print(
            Panel(
                f"[bold red]no answer[/]: {why}\n\n{resp.text[:500]}",
                title=f"{media.name} · {resp.backend}",
            )
        )
        con.print(f"[dim]query folder: {out}[/dim]")
        raise typer.Exit(1)
    conf = "" if pred.confidence is None else f"  (confidence {pred.confidence:.2f})"
    body = f"[bold green]{pred.label}[/]{conf}\n\n{pred.rationale}"
    if pred.ranking[1:]:
        body += f"\n\n[dim]ranking: {', '.join(pred.ranking)}[/dim]"
    con.print(
        Panel(
            body,
            title=f"{media.name} · subject {result.query.subject} · {resp.backend}:{resp.model}",
            subtitle=f"parse {pred.parse_status} · {resp.latency_s:.2f}s",
        )
    )
    con.print(f"[dim]query folder: {out}[/dim]")


@prompts_app.command("list")
def prompts_list() -> None:
    """List prompt specs with their descriptions and hashes."""
    from sovtp.prompting.spec import list_specs, load_spec

    for sid in list_specs():
        s = load_spec(sid)
        print(f"{sid:28s} {s.hash}  {s.description}")


@models_app.command("fetch")
def models_fetch(
    timeout: Annotated[float, typer.Option(help="Seconds per network attempt.")] = 20.0,
) -> None:
    """Download (or find) every MediaPipe model file and check its sha256."""
    from sovtp.annotate import models

    for name, path in models.fetch(timeout=timeout).items():
        print(f"{name}: {path}")


@models_app.command("list")
def models_list() -> None:
    """The model files sovtp needs, their pinned sha256, and whether each is present."""
    from sovtp.annotate import models

    for a in models.ASSETS.values():
        try:
            p = models.locate(a.name)
            state = str(p) if p else "missing (run `sovtp models fetch`)"
        except SovtpError as e:
            state = f"BAD: {e}"
        print(f"{a.name:22s} {a.sha256[:16]}…  {state}")


@models_app.command("path")
def models_path(
    name: Annotated[str, typer.Argument(help="face_landmarker | pose_landmarker_full")],
) -> None:
    """Print the verified local path of one model file (fetching it if needed)."""
    from sovtp.annotate import models

    print(models.resolve(name))


def _register() -> None:
    """The benchmark commands live in cli_bench (registered here, so this file stays small)."""
    from sovtp import cli_bench  # noqa: F401


def _click_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """ClickException and Abort classes of whichever click typer runs on (its vendored copy
    and/or the click package)."""
    usage: list[type] = []
    abort: list[type] = []
    for mod in ("typer._click.exceptions", "click.exceptions"):
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        usage.append(m.ClickException)
        if hasattr(m, "Abort"):
            abort.append(m.Abort)
    return tuple(usage), tuple(abort)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and exit code 2."""
    _register()
    try:
        rc = app(args=argv, standalone_mode=False)  # returns typer.Exit's code in this mode
    except (SovtpError, ValueError, FileNotFoundError) as e:
        print(f"sovtp: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sovtp: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:
        return int(e.code or 0)
    except Exception as e:  # click's own usage errors (typer ≥ 0.2x vendors click as typer._click)
        usage, abort = _click_errors()
        if isinstance(e, usage):
            e.show()
            return e.exit_code
        if isinstance(e, abort):
            return 1
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":  # `python -m sovtp.cli`: run the importable module, whose app
    from sovtp import cli as _cli  # the benchmark commands register on

    sys.exit(_cli.main())
