"""``sovtp spot``: micro-expression spotting over the long videos of a dataset, into a run folder
(:mod:`sovtp.recipes.spot`), scored by the evaluator's interval metrics (spot F1, STRS)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovtp.cli.options import (
    ASK_OPTIONS,
    EXIT_CODES_HELP,
    BaseUrl,
    Cache,
    MaxTokens,
    Seed,
    ask_backend,
    out_folder,
    shared_options,
)


@shared_options(ASK_OPTIONS, into="ask")
def spot_cmd(
    data: Annotated[
        str,
        typer.Argument(
            help="casme2_spot:ROOT | samm:ROOT | mmme:ROOT, or a manifest (.csv/.jsonl) whose "
            "rows carry onset/apex/offset columns (0-based frames; one row per interval)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")],
    system: Annotated[
        str,
        typer.Option(
            "--system",
            help="flow (optical-flow baseline) or a prompt spec ID (spotting/when) asked by a "
            "vision LLM (--base-url or --hf).",
        ),
    ] = "flow",
    evaluator: Annotated[
        str, typer.Option("--evaluator", help="An intervals evaluator (name or YAML).")
    ] = "casme2_spot",
    labels: Annotated[
        str | None, typer.Option("--labels", help="Label set (default: the evaluator's).")
    ] = None,
    kind: Annotated[
        str, typer.Option("--kind", help="Ground truth scored: micro | macro | all.")
    ] = "micro",
    split: Annotated[str | None, typer.Option("--split", help="e.g. one subject.")] = None,
    root: Annotated[
        Path | None, typer.Option("--root", help="Root of a manifest's relative paths.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="First N videos only.")] = None,
    fps: Annotated[
        float | None, typer.Option("--fps", help="Frame rate (default: the dataset's).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a run folder.")] = False,
    sampling: Annotated[
        str,
        typer.Option(
            "--sampling", "-s", help="flow: frames annotated for landmarks (interpolated)."
        ),
    ] = "fps:5",
    p: Annotated[float, typer.Option("--p", help="flow: threshold = mean + p·(max − mean).")] = 0.5,
    min_height: Annotated[
        float, typer.Option("--min-height", help="flow: absolute floor on a peak (crop px).")
    ] = 0.0,
    me_seconds: Annotated[
        float, typer.Option("--me-seconds", help="flow: default ME length, seconds.")
    ] = 0.4,
    method: Annotated[str, typer.Option("--method", help="flow: dis | farneback.")] = "dis",
    window: Annotated[
        float,
        typer.Option("--window", help="LLM: seconds of video per query (0: the whole video)."),
    ] = 2.0,
    images: Annotated[
        int | None,
        typer.Option("--images", help="LLM: images per query (default: the spec's max)."),
    ] = None,
    base_url: BaseUrl = None,
    *,
    ask: dict,
    max_tokens: MaxTokens = 512,
    seed: Seed = 0,
    annotation_cache: Cache = True,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples (CIs).")] = 1000,
) -> None:
    """Which frames of each long video hold a (micro-)expression: intervals, MEGC-scored."""
    from sovtp.cli.console import console, report_outcome
    from sovtp.recipes.spot import SpotOptions, run_spot
    from sovtp.spotting.flow import FlowConfig

    name, bopts = (None, {}) if system == "flow" else ask_backend(ask, base_url)
    opts = SpotOptions(
        data=data,
        out=out_folder(out),
        system=system,
        evaluator=evaluator,
        labels=labels,
        kind=kind,
        root=root,
        split=split,
        limit=limit,
        fps=fps,
        resume=resume,
        annotation_cache=annotation_cache,
        n_boot=n_boot,
        sampling=sampling,
        flow=FlowConfig(me_seconds=me_seconds, p=p, min_height=min_height, method=method),
        backend=name,
        backend_options=bopts,
        window_s=window,
        images=images,
        max_tokens=max_tokens,
        temperature=ask["temperature"],
        seed=seed,
        structured=not ask["no_structured"],
    )
    con = console(stderr=True)
    run = run_spot(opts, progress=lambda sid: con.print(f"[dim]spotted {sid}[/dim]"))
    con = console()
    if run.report:
        for e in run.report["scoring"]["systems"]:
            shown = ", ".join(f"{k} {v:.3f}" for k, v in e["metrics"].items())
            con.print(
                f"{e['system']} · {e['variant']}: {e['n']} videos, {shown}; errors {e['errors']}"
            )
    con.print(f"[dim]run folder: {run.out} ({run.written} new, {run.skipped} resumed)[/dim]")
    raise typer.Exit(report_outcome(run.out, con))


spot_cmd.__doc__ = (spot_cmd.__doc__ or "") + "\n\n" + EXIT_CODES_HELP
