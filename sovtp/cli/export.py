"""``sovtp export lmms-eval``: a benchmark as a task folder lmms-eval loads with
``--include_path`` (:mod:`sovtp.export.lmms_eval`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovtp.cli.options import Fold, Labels, MaxTokens, Root, Split, Subject, prepare_knobs

export_app = typer.Typer(help="Export benchmarks to other harnesses.", no_args_is_help=True)


@export_app.command("lmms-eval")
@prepare_knobs
def lmms_eval_cmd(
    evaluator: Annotated[
        str, typer.Argument(help="Evaluator spec (dfew, mafw, ferv39k, ... or a YAML path).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The task folder to write.")],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            "--manifest",
            help="The samples: a .csv/.jsonl manifest or ADAPTER:ROOT (read as `sovtp bench` "
            "reads them).",
        ),
    ],
    split: Split = None,
    fold: Fold = None,
    root: Root = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N samples.")] = None,
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", "-p", help="Prompt spec ID (default: the evaluator's)."),
    ] = None,
    labels: Labels = None,
    subject: Subject = "largest",
    max_tokens: MaxTokens = 1024,
    task: Annotated[
        str | None, typer.Option("--task", help="Task name (default: sovtp_<evaluator>).")
    ] = None,
    *,
    knobs: dict,
) -> None:
    """Write an lmms-eval task folder: the samples as local JSONL, sovtp's prompts with their
    annotated frames (built by the prepare pipeline `sovtp bench` uses), a YAML using
    doc_to_messages, and a utils.py that scores WAR/UAR with sovtp's parser and metrics.

    Run it with: lmms-eval --model openai --model_args model_version=M,base_url=URL
    --include_path DIR --tasks TASK.  Exit codes: 0 written; 1 written, but some samples
    failed (listed); 2 usage or input error."""
    from sovtp.cli.bench import evaluator_prompts
    from sovtp.cli.console import console, progress_bar
    from sovtp.engine.config import BenchConfig
    from sovtp.export.lmms_eval import export_lmms_eval

    cfg = BenchConfig(  # the samples and prompts exactly as `sovtp bench` would read them
        data=data,
        root=str(root) if root else None,
        split=split,
        fold=fold,
        evaluator=evaluator,
        labels=labels,
        variants=[prompt] if prompt else evaluator_prompts(evaluator),
        subject=subject,
        limit=limit,
        max_tokens=max_tokens,
        **knobs,
    )

    con = console(stderr=True)
    with progress_bar("preparing prompts") as bar:
        t = bar.add_task("export", total=limit)
        res = export_lmms_eval(cfg, out, task=task, progress=lambda n: bar.update(t, completed=n))
    print(
        f"{res.task}: {res.docs} documents from {res.samples} samples, {res.images} images → {res.folder}"
    )
    print(
        f"run: lmms-eval --model openai --model_args model_version=MODEL,base_url=URL "
        f"--include_path {res.folder} --tasks {res.task}"
    )
    if res.dropped_audio:
        con.print(
            f"[yellow]{res.dropped_audio} audio part(s) left out (lmms-eval's chat "
            "messages carry no audio for the openai model)[/yellow]"
        )
    for f in res.failed:
        con.print(f"[red]✗[/red] {f}", highlight=False)
    if res.failed:
        raise typer.Exit(1)
