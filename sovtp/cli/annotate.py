"""``sovtp annotate``, ``prompt`` and ``query``: one clip through the prepare pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sovtp.cli.options import (
    DEFAULT_MAX_FACES,
    DEID_MODE,
    VOICE_ALPHA,
    Asr,
    AuSource,
    BackendName,
    Blur,
    Deid,
    DeidMode,
    Hands,
    Hf,
    LabelOrder,
    Labels,
    MaxFaces,
    MaxRetries,
    MaxTokens,
    Model,
    NoCache,
    NoPose,
    NoStructured,
    Output,
    PromptId,
    Sampling,
    Seed,
    Server,
    Subject,
    Temperature,
    Timeout,
    Transcript,
    VoiceAlpha,
    backend_options,
    check_deid_mode,
    out_folder,
)

Media = Annotated[
    Path, typer.Argument(help="A video (mp4, avi, mov, mkv, webm) or an image.", exists=True)
]
ImageSize = Annotated[
    int, typer.Option("--image-size", help="Longest side of each image sent, px.")
]
JpegQuality = Annotated[
    int, typer.Option("--jpeg-quality", help="JPEG quality of the images sent.")
]


def _console():
    from sovtp.cli.console import console

    return console(stderr=True)


def _preparer(
    sampling: str,
    max_faces: int,
    no_cache: bool,
    no_pose: bool,
    au_source: str = "mediapipe",
    output: str | None = None,
    label_order: str = "fixed",
    seed: int = 0,
    image_size: int = 768,
    jpeg_quality: int = 85,
    deid: bool = False,
    blur: str = "all",
    asr: bool = False,
    hands: bool = False,
    outgoing: Path | None = None,
    voice_alpha: str = VOICE_ALPHA,
    deid_mode: str = DEID_MODE,
):
    from sovtp.prepare import PrepareOptions, Preparer
    from sovtp.prompting.build import ImageOptions

    return Preparer(
        PrepareOptions(
            sampling=sampling,
            max_faces=max_faces,
            pose=not no_pose,
            annotation_cache=not no_cache,
            au_source=au_source,
            output=output,
            label_order=label_order,
            seed=seed,
            image=ImageOptions(image_size, jpeg_quality),
            deid=deid,
            blur=blur,
            asr=asr,
            hands=hands,
            outgoing=outgoing,
            voice_alpha=voice_alpha,  # PrepareOptions parses "0.75" / "0.5-0.9"
            deid_mode=deid_mode,
        )
    )


def _annotate(prep, media: Path):
    """Annotate with a progress bar (decoding first, so the bar knows its length; ``apex:N``
    chooses its frames by a landmark pass, so its length is known only after it)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from sovtp.media.sampling import Sampling
    from sovtp.media.video import load_frames

    apex = Sampling.parse(prep.options.sampling).kind == "apex"
    frames = None if apex else load_frames(media, prep.options.sampling)
    with Progress(
        TextColumn("annotating {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_console(),
        transient=True,
    ) as prog:
        task = prog.add_task(media.name, total=None if frames is None else len(frames))
        return prep.annotate(media, frames=frames, progress=lambda n: prog.advance(task, n))


def _answer_panel(name: str, result):
    """One answer as a panel: the label, then the reasoning stage by stage (or the rationale)."""
    from rich.panel import Panel

    from sovtp.contracts import STAGE_TITLES

    pred, resp, q = result.prediction, result.response, result.query
    title = f"{name} · subject {q.subject} · {resp.backend}:{resp.model} · {q.output}"
    if pred.label is None:
        why = resp.error or f"answer could not be parsed ({pred.parse_status})"
        return Panel(f"[bold red]no answer[/]: {why}\n\n{resp.text[:500]}", title=title)
    conf = "" if pred.confidence is None else f"  (confidence {pred.confidence:.2f})"
    body = f"[bold green]{pred.label}[/]{conf}\n\n"
    if pred.stages:
        body += "\n".join(f"[bold]{STAGE_TITLES[k]}:[/] {v}" for k, v in pred.stages.items())
    else:
        body += pred.rationale
    if pred.ranking[1:]:
        body += f"\n\n[dim]ranking: {', '.join(pred.ranking)}[/dim]"
    return Panel(body, title=title, subtitle=f"parse {pred.parse_status} · {resp.latency_s:.2f}s")


def annotate_cmd(
    media: Media,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for annotated PNGs, annotations.json, cues.txt."),
    ],
    sampling: Sampling = "uniform:8",
    max_faces: MaxFaces = DEFAULT_MAX_FACES,
    landmarks: Annotated[
        str, typer.Option("--landmarks", help="Landmarks to draw: none | subset | all.")
    ] = "subset",
    au_overlay: Annotated[
        bool, typer.Option("--au-overlay/--no-au-overlay", help="Draw AU labels beside faces.")
    ] = True,
    pose: Annotated[bool, typer.Option("--pose/--no-pose", help="Detect and draw bodies.")] = True,
    no_cache: NoCache = False,
    au_source: AuSource = "mediapipe",
    hands: Hands = False,
) -> None:
    """Find faces and bodies, measure AUs, head pose, gaze and posture; draw and save them."""
    from PIL import Image

    from sovtp.render.marks import VisualSpec, render_frame

    out = out_folder(out)
    with _preparer(sampling, max_faces, no_cache, not pose, au_source, hands=hands) as prep:
        clip, frames = _annotate(prep, media)
    out.mkdir(parents=True, exist_ok=True)
    spec = VisualSpec(landmarks=landmarks, au_overlay=au_overlay, pose=pose)
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
    print(
        f"{media}: {len(frames)} frames, {len(clip.track_ids)} face ID(s) {clip.track_ids}"
        f"{' (annotation cache hit)' if clip.cached else ''}"
    )
    for ln in lines:
        print("  " + ln)
    print(f"wrote {len(frames)} PNGs, annotations.json, cues.txt to {out}")


def prompt_cmd(
    media: Media,
    prompt: PromptId = "sovtp/full",
    labels: Labels = None,
    subject: Subject = "largest",
    transcript: Transcript = None,
    output: Output = None,
    label_order: LabelOrder = "fixed",
    seed: Seed = 0,
    sampling: Sampling = "uniform:8",
    max_faces: MaxFaces = DEFAULT_MAX_FACES,
    au_source: AuSource = "mediapipe",
    image_size: ImageSize = 768,
    jpeg_quality: JpegQuality = 85,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the prompt's images and text.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the OpenAI-style messages (images as data URLs).")
    ] = False,
    no_pose: NoPose = False,
    no_cache: NoCache = False,
    deid: Deid = False,
    blur: Blur = "all",
    asr: Asr = False,
    hands: Hands = False,
    voice_alpha: VoiceAlpha = VOICE_ALPHA,
    deid_mode: DeidMode = DEID_MODE,
) -> None:
    """Render the Set-of-Vision-Text prompt for a clip: print its text, write its images."""
    check_deid_mode(deid, deid_mode)  # before any work: a mode without --deid obscures nothing
    from sovtp.prompting.spec import load_spec

    spec = load_spec(prompt)
    out = out_folder(out or Path("sovtp-prompt") / Path(media).stem)
    with _preparer(
        sampling, max_faces, no_cache, no_pose, au_source, output, label_order, seed,
        image_size, jpeg_quality, deid, blur, asr, hands, voice_alpha=voice_alpha,
        deid_mode=deid_mode,
    ) as prep:  # fmt: skip
        clip, frames = _annotate(prep, media)
        q, images = prep.query(
            clip, frames, spec, labels=labels, subject=subject, transcript=transcript
        )
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
        f"[dim]prompt {q.spec_id} ({q.spec_hash}), output {q.output}, subject {q.subject}, "
        f"{len(images)} image(s) → {out}[/dim]"
    )


def query_cmd(
    media: Media,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="OpenAI-compatible server, e.g. http://localhost:8000/v1 (vllm serve).",
        ),
    ] = None,
    model: Model = None,
    hf: Hf = None,
    backend: BackendName = None,
    server: Server = "openai",
    prompt: PromptId = "sovtp/full",
    output: Output = None,
    no_structured: NoStructured = False,
    labels: Labels = None,
    label_order: LabelOrder = "fixed",
    subject: Subject = "largest",
    transcript: Transcript = None,
    sampling: Sampling = "uniform:8",
    max_faces: MaxFaces = DEFAULT_MAX_FACES,
    au_source: AuSource = "mediapipe",
    max_tokens: MaxTokens = 1024,
    temperature: Temperature = 0.0,
    seed: Seed = 0,
    timeout: Timeout = 120.0,
    max_retries: MaxRetries = 2,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Query folder (default runs/query/<clip>).")
    ] = None,
    no_pose: NoPose = False,
    no_cache: NoCache = False,
    deid: Deid = False,
    blur: Blur = "all",
    asr: Asr = False,
    hands: Hands = False,
    voice_alpha: VoiceAlpha = VOICE_ALPHA,
    deid_mode: DeidMode = DEID_MODE,
) -> None:
    """Which emotion, and why: one clip through annotation, prompt, a backend and the parser.

    Exit codes: 0 answered; 1 no valid answer; 2 usage or input error; 130 interrupted."""
    from sovtp.backends.base import GenerationConfig
    from sovtp.query import run_query

    check_deid_mode(deid, deid_mode)  # before any work: a mode without --deid obscures nothing
    name, options = backend_options(
        backend, base_url, model, hf, server=server, timeout_s=timeout, max_retries=max_retries
    )
    out = out_folder(out or Path("runs") / "query" / Path(media).stem)
    cfg = GenerationConfig(
        max_tokens=max_tokens, temperature=temperature, seed=seed, structured=not no_structured
    )
    with _preparer(
        sampling, max_faces, no_cache, no_pose, au_source, output, label_order, seed,
        deid=deid, blur=blur, asr=asr, hands=hands, voice_alpha=voice_alpha, deid_mode=deid_mode,
        outgoing=out / "outgoing" if deid else None,  # what left, for `sovtp audit`
    ) as prep:  # fmt: skip
        clip, frames = _annotate(prep, media)
        results = run_query(
            prep, clip, frames, prompt, name, options, out, cfg,
            labels=labels, subject=subject, transcript=transcript,
        )  # fmt: skip
    from sovtp.cli.console import console

    con = console()
    answered = 0
    for r in results:
        con.print(_answer_panel(media.name, r))
        answered += r.prediction.label is not None
    con.print(f"[dim]query folder: {out}[/dim]")
    if not answered:
        raise typer.Exit(1)
