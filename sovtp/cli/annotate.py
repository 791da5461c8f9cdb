"""``sovtp annotate``, ``prompt`` and ``query``: one clip through the prepare pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sovtp.cli.options import (
    ASK_OPTIONS,
    DEFAULT_MAX_FACES,
    AuSource,
    Cache,
    Hands,
    Labels,
    MaxFaces,
    MaxTokens,
    PromptId,
    Sampling,
    Seed,
    Subject,
    Transcript,
    ask_backend,
    check_deid_mode,
    out_folder,
    prepare_knobs,
    shared_options,
)

Media = Annotated[
    Path, typer.Argument(help="A video (mp4, avi, mov, mkv, webm) or an image.", exists=True)
]


def _console():
    from sovtp.cli.console import console

    return console(stderr=True)


def _options(knobs: dict, seed: int | None = None, outgoing: Path | None = None):
    """The prepare options: the knobs typed over their defaults (checked before any work: a
    --deid-mode without --deid obscures nothing)."""
    from sovtp.prepare import PrepareOptions

    opts = PrepareOptions(**knobs, **({} if seed is None else {"seed": seed}), outgoing=outgoing)
    check_deid_mode(opts.deid, opts.deid_mode)
    return opts


def _preparer(options):
    from sovtp.prepare import Preparer

    return Preparer(options)


def _annotate(prep, media: Path):
    """Annotate with a progress bar (decoding first, so the bar knows its length; ``apex:N``
    chooses its frames by a landmark pass, so its length is known only after it)."""
    from sovtp.cli.console import progress_bar
    from sovtp.media.sampling import Sampling
    from sovtp.media.video import load_frames

    apex = Sampling.parse(prep.options.sampling).kind == "apex"
    frames = None if apex else load_frames(media, prep.options.sampling)
    with progress_bar("annotating {task.description}", remaining=True) as prog:
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
        return Panel(
            f"[bold red]no answer[/]: {why}\n\n{resp.text[:500]}", title=title, expand=False
        )
    conf = "" if pred.confidence is None else f"  (confidence {pred.confidence:.2f})"
    body = f"[bold green]{pred.label}[/]{conf}\n\n"
    if pred.stages:
        body += "\n".join(f"[bold]{STAGE_TITLES[k]}:[/] {v}" for k, v in pred.stages.items())
    else:
        body += pred.rationale
    if pred.ranking[1:]:
        body += f"\n\n[dim]ranking: {', '.join(pred.ranking)}[/dim]"
    # as wide as its content (and title), not the console: a log's console is 4000 wide
    sub = f"parse {pred.parse_status} · {resp.latency_s:.2f}s"
    return Panel(body, title=title, subtitle=sub, expand=False)


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
    annotation_cache: Cache = True,
    au_source: AuSource = "mediapipe",
    hands: Hands = False,
) -> None:
    """Find faces and bodies, measure AUs, head pose, gaze and posture; draw and save them."""
    from PIL import Image

    from sovtp.render.marks import VisualSpec, render_frame

    out = out_folder(out)
    knobs = dict(
        sampling=sampling,
        max_faces=max_faces,
        annotation_cache=annotation_cache,
        pose=pose,
        au_source=au_source,
        hands=hands,
    )
    with _preparer(_options(knobs)) as prep:
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


@prepare_knobs
def prompt_cmd(
    media: Media,
    prompt: PromptId = "sovtp/full",
    labels: Labels = None,
    subject: Subject = "largest",
    transcript: Transcript = None,
    seed: Seed = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the prompt's images and text.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the OpenAI-style messages (images as data URLs).")
    ] = False,
    sample_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="MEDIA is a .csv/.jsonl manifest: build the prompt of the row with this id as "
            "`sovtp bench` does (its interval, transcript, audio, physio, speaker, one prompt "
            "per labelled face) and list the row's columns.",
        ),
    ] = None,
    *,
    knobs: dict,
) -> None:
    """Render the Set-of-Vision-Text prompt for a clip (or a manifest row, --id): print its
    text, write its images."""
    from sovtp.prompting.build import check_subject
    from sovtp.prompting.spec import load_spec

    options = _options(knobs, seed)  # before any work
    check_subject(subject)
    spec = load_spec(prompt)
    if sample_id is not None:
        from sovtp.cli.prompt_row import prompt_row_cmd

        return prompt_row_cmd(media, sample_id, spec, options, labels, subject, out, as_json)
    out = out_folder(out or Path("sovtp-prompt") / Path(media).stem)
    with _preparer(options) as prep:
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


@prepare_knobs
@shared_options(ASK_OPTIONS, into="ask")
def query_cmd(
    media: Media,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="OpenAI-compatible server, e.g. http://localhost:8000/v1 (vllm serve).",
        ),
    ] = None,
    *,
    ask: dict,
    prompt: PromptId = "sovtp/full",
    labels: Labels = None,
    subject: Subject = "largest",
    transcript: Transcript = None,
    max_tokens: MaxTokens = 1024,
    seed: Seed = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Query folder (default runs/query/<clip>).")
    ] = None,
    knobs: dict,
) -> None:
    """Which emotion, and why: one clip through annotation, prompt, a backend and the parser.

    Exit codes: 0 every answer valid; 3 some answers (one per face with --subject all) are errors
    or invalid (counts printed); 4 no valid answer (with the likely cause); 2 usage or input
    error; 130 interrupted."""
    from sovtp.backends.base import GenerationConfig
    from sovtp.prompting.build import check_subject
    from sovtp.query import run_query

    check_subject(subject)  # before any work: not one error per face
    out = out_folder(out or Path("runs") / "query" / Path(media).stem)
    # what left, for `sovtp audit`; checked before any work
    options = _options(knobs, seed, outgoing=out / "outgoing" if knobs.get("deid") else None)
    name, backend_opts = ask_backend(ask, base_url)
    cfg = GenerationConfig(
        max_tokens=max_tokens,
        temperature=ask["temperature"],
        seed=options.seed,
        structured=not ask["no_structured"],
    )
    with _preparer(options) as prep:
        clip, frames = _annotate(prep, media)
        results = run_query(
            prep,
            clip,
            frames,
            prompt,
            name,
            backend_opts,
            out,
            cfg,
            labels=labels,
            subject=subject,
            transcript=transcript,
        )
    from sovtp.cli.console import console, print_outcome
    from sovtp.engine.outcome import outcome_of

    con = console()
    for r in results:
        con.print(_answer_panel(media.name, r))
    con.print(f"[dim]query folder: {out}[/dim]")
    # the exit rule of every command that asks a model (sovtp/engine/outcome.py)
    o = outcome_of(
        [r.prediction.model_dump() for r in results],
        [r.response.model_dump() for r in results],
        structured=cfg.structured,
    )
    if o.exit_code:
        raise typer.Exit(print_outcome(o, console(stderr=True)))
