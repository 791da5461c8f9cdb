"""``sovtp bench``, ``ablate``, ``score``, ``report`` and ``compare`` (registered on the main app).

Thin: each parses options, calls the library and prints; heavy imports happen inside.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sovtp.cli import (
    BackendName,
    Hf,
    MaxFaces,
    MaxTokens,
    Model,
    NoCache,
    NoPose,
    Sampling,
    Server,
    Temperature,
    app,
)
from sovtp.errors import SovtpError

Data = Annotated[
    str,
    typer.Argument(
        help="A manifest (.csv/.jsonl), ADAPTER:ROOT (dfew, mafw, ferv39k, affwild2, deemo, bah, "
        "casme2) or hf:PATH (a local HF dataset folder or parquet)."
    ),
]
BaseUrl = Annotated[
    list[str] | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible endpoint (vllm serve); repeat for several, load-balanced.",
    ),
]


def _systems(backend, base_url, model, hf, system, server, concurrency):
    """The systems of a run: each --system, plus the one --backend/--base-url/--hf describe
    (the offline FACS reasoner when nothing is given)."""
    from sovtp.bench.config import SystemSpec
    from sovtp.cli import backend_options

    out = [SystemSpec.parse(s) for s in system or []]
    if base_url or hf or backend or not out:
        urls = list(base_url) if base_url else None
        name, opts = backend_options(
            backend, urls, model, hf, server=server, concurrency=concurrency
        )
        out.append(SystemSpec.of(name, opts))
    return out


def _run(cfg, resume: bool, no_report: bool) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from sovtp.bench.run import count, run_bench

    con = Console(stderr=True)
    total = count(cfg)
    tally = {"errors": 0, "invalid": 0}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("[red]{task.fields[errors]} errors[/] · [yellow]{task.fields[invalid]} invalid"),
        console=con,
    ) as prog:
        task = prog.add_task("bench", total=total, errors=0, invalid=0, rate="")

        def on_row(row: dict) -> None:
            if row.get("error"):
                tally["errors"] += 1
            elif row.get("parse_status") == "invalid":
                tally["invalid"] += 1
            t = prog.tasks[task]
            rate = f"{t.speed:.1f} rows/s" if t.speed else ""
            prog.update(
                task, advance=1, errors=tally["errors"], invalid=tally["invalid"], rate=rate
            )

        if resume:
            from sovtp.jsonl import iter_jsonl

            prog.update(
                task, completed=sum(1 for _ in iter_jsonl(Path(cfg.out) / "predictions.jsonl"))
            )
        run, _ = run_bench(cfg, resume=resume, on_row=on_row, report=not no_report)
    _print_summary(run)


def _print_tables(scoring: dict, title: str) -> None:
    """The report's metric and comparison tables, on the terminal."""
    from rich.console import Console
    from rich.table import Table

    from sovtp.report.build import comparisons_table, metrics_table

    con = Console()
    for (head, rows), name in ((metrics_table(scoring), title), (comparisons_table(scoring), "")):
        if rows:
            t = Table(*head, title=name or None)
            for r in rows:
                t.add_row(*map(str, r))
            con.print(t)


def _print_summary(run: Path) -> None:
    rep_p = run / "report.json"
    if not rep_p.exists():
        typer.echo(f"run folder: {run}")
        return
    _print_tables(json.loads(rep_p.read_text())["scoring"], str(run))
    typer.echo(f"report: {run / 'report.html'}")


def _config(**kw):
    from sovtp.bench.config import BenchConfig

    return BenchConfig(**{k: v for k, v in kw.items() if v is not None})


Out = Annotated[Path, typer.Option("--out", "-o", help="Run folder.")]
Evaluator = Annotated[str | None, typer.Option(help="Evaluator spec (dfew, mafw, ... or a YAML).")]
RunLabels = Annotated[
    str | None, typer.Option(help="Label set (default: the evaluator's or the prompt's).")
]
Split = Annotated[str | None, typer.Option(help="Split (test, validation, ...).")]
Fold = Annotated[int | None, typer.Option(help="Fold (DFEW/MAFW 1-5).")]
Root = Annotated[
    Path | None, typer.Option(help="Root the manifest's paths resolve under (default: its folder).")
]
Systems = Annotated[
    list[str] | None,
    typer.Option(help="A further system: facs | openai[:MODEL]@URL[,URL] | transformers:PATH."),
]
Concurrency = Annotated[int, typer.Option(help="Requests in flight per endpoint.")]
NoResponseCache = Annotated[
    bool, typer.Option("--no-response-cache", help="Do not reuse cached deterministic answers.")
]
Limit = Annotated[int | None, typer.Option(help="Only the first N samples (after --shuffle).")]
Shuffle = Annotated[bool, typer.Option("--shuffle", help="Shuffle the samples (with --seed).")]
Seed = Annotated[int, typer.Option(help="Shuffle seed.")]
Engine = Annotated[str, typer.Option(help="local | ray (Ray Data; extra `ray`).")]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue the run in --out, skipping rows already written.")
]
TierBy = Annotated[
    str | None, typer.Option(help="Difficulty tiers: n_faces (default) or a manifest column.")
]


def _bench(
    variants, data, out, evaluator, labels, split, fold, root, backend, base_url, model, hf,
    system, server, concurrency, sampling, max_faces, no_pose, no_cache, no_response_cache,
    limit, shuffle, seed, temperature, max_tokens, engine, resume, no_report, tier_by,
) -> None:  # fmt: skip
    """What bench and ablate share once the variants are known."""
    cfg = _config(
        data=data, out=str(out), evaluator=evaluator, variants=variants, labels=labels,
        split=split, fold=fold, root=str(root) if root else None,
        systems=_systems(backend, base_url, model, hf, system, server, concurrency),
        sampling=sampling, max_faces=max_faces, pose=not no_pose, annotation_cache=not no_cache,
        response_cache=not no_response_cache, limit=limit, shuffle=shuffle, seed=seed,
        temperature=temperature, max_tokens=max_tokens, engine=engine, tier_by=tier_by,
    )  # fmt: skip
    _run(cfg, resume, no_report)


@app.command("bench")
def bench_cmd(
    data: Data,
    out: Out = Path("runs/bench"),
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", "-p", help="Prompt spec; repeat for several variants."),
    ] = None,
    evaluator: Evaluator = None,
    labels: RunLabels = None,
    split: Split = None,
    fold: Fold = None,
    root: Root = None,
    backend: BackendName = None,
    base_url: BaseUrl = None,
    model: Model = None,
    hf: Hf = None,
    system: Systems = None,
    server: Server = "openai",
    concurrency: Concurrency = 16,
    sampling: Sampling = "uniform:8",
    max_faces: MaxFaces = 4,
    no_pose: NoPose = False,
    no_cache: NoCache = False,
    no_response_cache: NoResponseCache = False,
    limit: Limit = None,
    shuffle: Shuffle = False,
    seed: Seed = 0,
    temperature: Temperature = 0.0,
    max_tokens: MaxTokens = 512,
    engine: Engine = "local",
    resume: Resume = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip writing report.*.")] = False,
    tier_by: TierBy = None,
) -> None:
    """Score systems × prompt variants on a benchmark; writes a resumable run folder + report."""
    kw = dict(locals())  # exactly the options above, by name
    _bench(kw.pop("prompt") or None, **kw)


@app.command("ablate")
def ablate_cmd(
    data: Data,
    out: Out = Path("runs/ablate"),
    ladder: Annotated[
        bool,
        typer.Option(
            "--ladder",
            help="The prompt ladder: plain → boxes → IDs → landmarks → AU text → AU overlay → context → full.",
        ),
    ] = False,
    grid: Annotated[
        str | None,
        typer.Option(
            help="Factorial grid: comma-separated switches (boxes, ids, landmarks, au_overlay, pose, au, context, self_correct)."
        ),
    ] = None,
    base: Annotated[str, typer.Option(help="Base spec of a --grid.")] = "sovtp/full",
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", "-p", help="Variants (a list); the first is the base."),
    ] = None,
    evaluator: Evaluator = None,
    labels: RunLabels = None,
    split: Split = None,
    fold: Fold = None,
    root: Root = None,
    backend: BackendName = None,
    base_url: BaseUrl = None,
    model: Model = None,
    hf: Hf = None,
    system: Systems = None,
    server: Server = "openai",
    concurrency: Concurrency = 16,
    sampling: Sampling = "uniform:8",
    max_faces: MaxFaces = 4,
    no_pose: NoPose = False,
    no_cache: NoCache = False,
    no_response_cache: NoResponseCache = False,
    limit: Limit = None,
    shuffle: Shuffle = False,
    seed: Seed = 0,
    temperature: Temperature = 0.0,
    max_tokens: MaxTokens = 512,
    engine: Engine = "local",
    resume: Resume = False,
    tier_by: TierBy = None,
) -> None:
    """Which prompt element buys how much: one annotation pass, every variant, deltas with CIs
    and McNemar p-values against the base."""
    kw = dict(locals())  # exactly the options above, by name (before any import adds a local)
    from sovtp.bench.ablation import LADDER
    from sovtp.bench.ablation import grid as make_grid

    ladder, grid, base, prompt = (kw.pop(k) for k in ("ladder", "grid", "base", "prompt"))
    if sum(bool(x) for x in (ladder, grid, prompt)) != 1:
        raise SovtpError("choose one of --ladder, --grid SWITCHES or --prompt (repeated)")
    if ladder:
        variants = LADDER
    elif grid:
        variants = make_grid(
            base, [g.strip() for g in grid.split(",") if g.strip()], out / "prompts"
        )
    else:
        variants = list(prompt or [])
    _bench(variants, no_report=False, **kw)


@app.command("report")
def report_cmd(
    run: Annotated[Path, typer.Argument(help="A run folder (from bench or ablate).")],
) -> None:
    """Rebuild report.json, report.md and report.html of a run."""
    from sovtp.report.build import write_report

    write_report(run)
    _print_summary(run)


@app.command("compare")
def compare_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to put side by side.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the table as Markdown here.")
    ] = None,
) -> None:
    """Runs side by side: WAR/UAR with CIs per run × system × variant."""
    from rich.console import Console

    from sovtp.report.compare import compare_markdown, compare_rows

    md = compare_markdown(compare_rows(list(runs)))
    if out:
        out.write_text(md)
    Console().print(md)


@app.command("score")
def score_cmd(
    predictions: Annotated[
        Path,
        typer.Argument(
            help="predictions.jsonl of a run, or a CSV/JSONL made elsewhere (ranked lists allowed)."
        ),
    ],
    gold: Annotated[
        Path | None,
        typer.Option(
            help="A separate gold list (name,gt): every gold sample is scored; missing predictions count as invalid."
        ),
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help="Label set (default: the gold vocabulary).")
    ] = None,
    evaluator: Annotated[
        str | None, typer.Option(help="Evaluator spec (its label set and synonyms).")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 1000,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full scoring as JSON.")
    ] = False,
    drop_unanswered: Annotated[
        bool,
        typer.Option(
            "--drop-unanswered",
            help="Leave out gold samples with no prediction row (default: invalid).",
        ),
    ] = False,
) -> None:
    """Recognition metrics (WAR, UAR, F1s, per class, confusion, invalid rate) with 95% CIs."""

    from sovtp.jsonl import iter_jsonl
    from sovtp.labels import load_label_set
    from sovtp.scoring.external import external_rows
    from sovtp.scoring.summary import summarise

    ls = load_label_set(labels) if labels else None
    if evaluator:
        from sovtp.evaluator import load_evaluator

        ls = load_evaluator(evaluator).labels()
    first = next(iter_jsonl(predictions), None) if predictions.suffix == ".jsonl" else None
    if first is not None and "key" in first and "parse_status" in first and gold is None:
        rows = list(iter_jsonl(predictions))  # a sovtp run's own predictions
        labs = ls.labels if ls else sorted({r["gold"] for r in rows if r.get("gold")})
    else:
        rows, ls2 = external_rows(
            predictions, ls, gold, system=predictions.stem,
            unanswered="drop" if drop_unanswered else "invalid",
        )  # fmt: skip
        labs = ls2.labels
    s = summarise(rows, labs, n_boot=n_boot, tier_by=None)
    if as_json:
        print(json.dumps(s, indent=1))
        return
    _print_tables(s, predictions.name)


@app.command("judge")
def judge_cmd(
    run: Annotated[
        Path, typer.Argument(help="A run folder whose samples carry reference descriptions.")
    ],
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Judge LLM endpoint (OpenAI-compatible); none: the offline approximation."
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Judge model on that server.")] = None,
) -> None:
    """Reasoning scores (clue and label overlap, 0-10): an LLM judge, or offline word overlap."""
    from sovtp.bench.run import write_reasoning
    from sovtp.report.build import write_report

    be = None
    if base_url:
        from sovtp.backends.base import get_backend

        be = get_backend("openai", base_url=base_url, model=model)
    res = write_reasoning(run, "llm" if be else "offline", be)
    write_report(run)
    for g, sc in res["scores"].items():
        typer.echo(f"{g} [{res['method']}]: " + ", ".join(f"{k} {v}" for k, v in sc.items()))
