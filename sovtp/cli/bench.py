"""``sovtp bench`` and ``sovtp ablate``: systems × prompt variants × samples, into a run folder.

Both build one :class:`~sovtp.engine.config.BenchConfig` from their options (``--config FILE``
reruns a run's ``config.yaml``), run it with a progress bar, print the summary and exit with a
code that says how the run went (see ``EXIT_CODES_HELP``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sovtp.cli.options import (
    EXIT_CODES_HELP,
    BackendName,
    BaseUrl,
    Evaluator,
    Fold,
    Hf,
    MaxRetries,
    MaxTokens,
    Model,
    NoStructured,
    Root,
    Seed,
    Server,
    Split,
    Subject,
    Temperature,
    Timeout,
    backend_options,
    check_deid_mode,
    given_options,
    option,
    out_folder,
    prepare_knobs,
    shared_options,
)
from sovtp.errors import SovtpError

Data = Annotated[
    str | None,
    typer.Argument(
        help="A manifest (.csv/.jsonl), ADAPTER:ROOT (dfew, mafw, ferv39k, affwild2, deemo, bah, "
        "casme_sq, casme_ii, mer2023, mer2024, mer2025, samm, casme2_spot) or hf:PATH (a local HF dataset folder or parquet).  Omit with --config."
    ),
]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/bench).")]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Rerun a run's config.yaml (options given here override it).", exists=True
    ),
]
Tta = Annotated[
    str | None,
    typer.Option(
        "--tta",
        help="Test-time adaptation of the cnn:CKPT systems on the test stream, in sample order: "
        "none | bn (BatchNorm statistics) | tent (entropy, norm affine parameters) | fisher:K "
        "(the K parameters of largest Fisher information). Writes tta.json (F1 before/after, "
        "parameters adapted); a --resume replays the stream from the first sample.",
    ),
]
NoReport = Annotated[bool, typer.Option("--no-report", help="Skip writing report.*.")]


def _precheck(cfg, given: dict[str, Any], no_check: bool) -> None:
    """Before a run against a server named on the command line: does it apply the structured
    outputs the run relies on, and take the images the prompts send?  Warnings only; the run
    goes on."""
    if no_check:
        return
    from sovtp.cli.console import console

    con = console(stderr=True)
    for s in given.get("systems") or []:
        url = s.options.get("base_url") if s.backend == "openai" else None
        if not url:
            continue
        from sovtp.backends.precheck import check_before_bench
        from sovtp.prompting.spec import load_spec

        spec = load_spec(cfg.variants[0])
        for w in check_before_bench(
            ",".join(url) if isinstance(url, list) else url,
            model=s.options.get("model"),
            server=s.options.get("server", "openai"),
            structured=cfg.structured,
            output=cfg.output or spec.output,
            images_per_prompt=spec.max_images,
            timeout_s=min(float(cfg.timeout_s or 30.0), 30.0),
        ):
            con.print(f"warning: {w}", markup=False, highlight=False)


def _systems(backend, base_url, model, hf, system, server, timeout, max_retries):
    """The systems of a run: each --system, plus the one --backend/--base-url/--hf describe
    (the offline FACS reasoner when nothing is given)."""
    from sovtp.engine.config import SystemSpec

    out = [SystemSpec.parse(s) for s in system or []]
    if base_url or hf or backend or model or not out:
        urls = list(base_url) if base_url else None
        # timeout and retries are the run's (config fields), not the system's identity
        name, opts = backend_options(backend, urls, model, hf, server=server)
        out.append(SystemSpec.of(name, opts))
    return out


def evaluator_prompts(evaluator: str | None) -> list[str]:
    """Without --prompt a run asks the evaluator's own prompt (bah/definition, liveness/plain,
    physio/valence, ...); without an evaluator, sovtp/full."""
    if not evaluator:
        return ["sovtp/full"]
    from sovtp.evaluator import load_evaluator

    return [load_evaluator(evaluator).prompt]


def build_config(config_file: Path | None, given: dict[str, Any]):
    """A BenchConfig from a config.yaml (if any) overlaid with the settings the user gave (a
    ``None`` value counts as not given); what neither names keeps the model's default."""
    import yaml

    from sovtp.engine.config import BenchConfig

    base: dict[str, Any] = {}
    if config_file is not None:
        base = yaml.safe_load(config_file.read_text()) or {}
    given = dict(given)
    server = given.pop(SERVER_OVER, None)
    base.update({k: v for k, v in given.items() if v is not None})
    if server is not None:
        base["systems"] = _with_server(base.get("systems"), server)
    if not base.get("variants") and base.get("evaluator"):
        base["variants"] = evaluator_prompts(base["evaluator"])
    if not base.get("data"):
        raise SovtpError("give DATA (a manifest, ADAPTER:ROOT or hf:PATH) or --config FILE")
    known = set(BenchConfig.model_fields)
    unknown = sorted(set(base) - known)
    if unknown:
        raise SovtpError(f"unknown settings in the run config: {', '.join(unknown)}")
    return BenchConfig(**base)


def run_and_exit(cfg, resume: bool, retry_errors: str, no_report: bool, recipe=None) -> None:
    """Run a recipe of the bench engine (``recipe``: default bench) with a progress bar; print
    the summary; exit 0/3/4 (130 on Ctrl-C)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from sovtp.cli.console import console
    from sovtp.cli.scores import print_summary
    from sovtp.engine.outcome import is_invalid
    from sovtp.recipes.bench import RunInterrupted, count, run_bench

    out_folder(Path(cfg.out))
    con = console(stderr=True)
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
            elif is_invalid(row):
                tally["invalid"] += 1
            t = prog.tasks[task]
            rate = f"{t.speed:.1f} rows/s" if t.speed else ""
            prog.update(
                task, advance=1, errors=tally["errors"], invalid=tally["invalid"], rate=rate
            )

        try:
            run, stats = (recipe or run_bench)(
                cfg, resume=resume, on_row=on_row, report=not no_report, retry_errors=retry_errors
            )
        except RunInterrupted as e:
            prog.stop()
            con.print(
                f"[bold]{e}[/] (or: sovtp bench --config {e.run}/config.yaml --resume); "
                f"the report shows what exists: {e.run}/report.html"
            )
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            prog.stop()
            con.print(f"[bold]interrupted[/] before the run folder was opened ({cfg.out})")
            raise typer.Exit(130) from None
    print_summary(run)
    from sovtp.report.ablation import ablation_notes

    for note in ablation_notes(run):
        con.print(f"[yellow]note:[/] {note}")
    from sovtp.cli.console import report_outcome

    code = report_outcome(run, con)
    if stats.errors:
        con.print(
            f"[red]{stats.errors} rows are errors[/] (no answer); ask them again with --resume "
            "(transient) or --resume --retry-errors all"
        )
    if code:
        raise typer.Exit(code)


# options whose value is a BenchConfig field under another name, or its negation
RENAMED = {"prompt": "variants", "timeout": "timeout_s"}
NEGATED = {"no_structured": "structured", "no_response_cache": "response_cache"}
# options that describe the run's systems, or are no setting of the run at all
SYSTEM_OPTIONS = ("backend", "base_url", "model", "hf", "system", "server")
NOT_SETTINGS = (
    "ctx",
    "config",
    "resume",
    "retry_errors",
    "no_report",
    "no_check",
    "ladder",
    "grid",
    "base",
    "knobs",
)


def run_settings(ctx: typer.Context, params: dict[str, Any], knobs: dict[str, Any]):
    """The BenchConfig fields the user typed — click's parameter source, not a comparison with
    defaults: ``--seed 0`` over a config's ``seed: 5`` is 0 — with the prepare knobs typed and,
    when any system option was typed, the systems they describe.  ``--seed`` is also the
    generation seed."""
    typed = given_options(ctx, params)
    d: dict[str, Any] = dict(knobs)
    for k, v in typed.items():
        if k in NOT_SETTINGS or k in SYSTEM_OPTIONS:
            continue
        if k in NEGATED:
            d[NEGATED[k]] = not v
        else:
            d[RENAMED.get(k, k)] = v
    if "seed" in d:
        d["gen_seed"] = d["seed"]
    for k in ("out", "root"):
        if d.get(k) is not None:
            d[k] = str(d[k])
    if any(k in typed for k in SYSTEM_OPTIONS if k != "server"):
        p = params
        d["systems"] = _systems(
            p["backend"], p["base_url"], p["model"], p["hf"], p["system"], p["server"], None, None
        )
    elif "server" in typed:  # alone: the flavour of the run's own server systems
        d[SERVER_OVER] = typed["server"]
    return d


SERVER_OVER = "--server"  # a typed --server without a system of its own (not a config field)


def _with_server(systems: Any, server: str) -> list[Any]:
    """The run's OpenAI-compatible systems with ``server`` as their flavour (``--server vllm``
    typed over a ``--config``); refused when the run has none — it was dropped silently."""
    from sovtp.engine.config import SystemSpec

    specs = [SystemSpec.model_validate(s) for s in systems or []]
    hits = [s for s in specs if s.backend == "openai"]
    if not hits:
        raise SovtpError(
            f"--server {server} describes an OpenAI-compatible server, and the run has none: "
            "give --base-url URL (or --system openai@URL) with it"
        )
    for s in hits:
        s.options["server"] = server
    return [s.model_dump() for s in specs]


# the options bench and ablate share, declared once (name → (type, default))
RUN_OPTIONS: dict[str, tuple[Any, Any]] = {
    "no_structured": (NoStructured, False),
    "evaluator": (Evaluator, None),
    "labels": option(
        str | None, None, "--labels", help="Label set (default: the evaluator's or the prompt's)."
    ),
    "split": (Split, None),
    "fold": (Fold, None),
    "root": (Root, None),
    "allow_outside_root": option(
        bool,
        False,
        "--allow-outside-root",
        help="Let a manifest name media outside its root (absolute paths elsewhere, ../, "
        "symlinks out); refused per sample otherwise.  Recorded in config.yaml; each such row is "
        "marked outside_root.",
    ),
    "backend": (BackendName, None),
    "base_url": (BaseUrl, None),
    "model": (Model, None),
    "hf": (Hf, None),
    "system": option(
        list[str] | None,
        None,
        "--system",
        help="A system, repeatable: facs | openai[:MODEL]@URL[,URL] | transformers:PATH | "
        "cnn:CHECKPOINT (a sovtp train folder). Runs beside the one --base-url/--hf/--backend "
        "names; alone, only the --system ones run.",
    ),
    "server": (Server, "openai"),
    "concurrency": option(
        int | None, None, "--concurrency", help="Requests in flight per endpoint (16)."
    ),
    "timeout": (Timeout, None),
    "max_retries": (MaxRetries, None),
    "workers": option(
        int | None,
        None,
        "--workers",
        help="Annotation processes feeding the requests (default: cores).",
    ),
    "subject": (Subject, None),
    "transcript": option(
        bool | None,
        None,
        "--transcript/--no-transcript",
        help="Word the samples' transcripts (if any).",
    ),
    "no_response_cache": option(
        bool, False, "--no-response-cache", help="Do not reuse cached deterministic answers."
    ),
    "limit": option(
        int | None, None, "--limit", help="Only the first N samples (after --shuffle)."
    ),
    "shuffle": option(bool, False, "--shuffle", help="Shuffle the samples (with --seed)."),
    "seed": (Seed, None),
    "temperature": (Temperature, None),
    "max_tokens": (MaxTokens, None),
    "engine": option(str | None, None, "--engine", help="local | ray (Ray Data; extra `ray`)."),
    "resume": option(
        bool,
        False,
        "--resume",
        help="Continue the run in --out: skip rows written, ask failed ones again. Refused when "
        "the settings changed (except added systems or variants).",
    ),
    "retry_errors": option(
        str,
        "transient",
        "--retry-errors",
        help="On --resume, which error rows to ask again: transient (timeouts, 5xx, 429, "
        "connection, malformed) | all (also 4xx and other permanent ones).",
    ),
    "tier_by": option(
        str | None,
        None,
        "--tier-by",
        help="Difficulty tiers: n_faces (default) or a manifest column.",
    ),
    "no_check": option(
        bool,
        False,
        "--no-check",
        help="Skip the pre-run server check (`sovtp doctor`'s structured-output probe).",
    ),
}


@prepare_knobs
@shared_options(RUN_OPTIONS, into="run")
def bench_cmd(
    ctx: typer.Context,
    data: Data = None,
    out: Out = None,
    config: ConfigFile = None,
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", "-p", help="Prompt spec; repeat for several variants."),
    ] = None,
    no_report: NoReport = False,
    tta: Tta = None,
    *,
    run: dict,
    knobs: dict,
) -> None:
    """Score systems × prompt variants on a benchmark; writes a resumable run folder + report.

    Every setting not given keeps the --config file's value, or else its default."""
    mine = {
        "data": data,
        "out": out,
        "config": config,
        "prompt": prompt,
        "no_report": no_report,
        "tta": tta,
    }
    given = run_settings(ctx, run | mine, knobs)
    cfg = build_config(config, given)
    check_deid_mode(cfg.deid, cfg.deid_mode)  # on the merged settings: a config may set deid
    _precheck(cfg, given, run["no_check"])
    run_and_exit(cfg, run["resume"], run["retry_errors"], no_report)


bench_cmd.__doc__ = f"{bench_cmd.__doc__}\n\n{EXIT_CODES_HELP}"


@prepare_knobs
@shared_options(RUN_OPTIONS, into="run")
def ablate_cmd(
    ctx: typer.Context,
    data: Data = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path("runs/ablate"),
    ladder: Annotated[
        bool,
        typer.Option(
            "--ladder",
            help="The prompt ladder: plain → boxes → IDs → landmarks → AU text → AU overlay → "
            "context → full → sovtp/full (the five stages, answered staged).",
        ),
    ] = False,
    grid: Annotated[
        str | None,
        typer.Option(
            "--grid",
            help="Factorial grid: comma-separated switches (boxes, ids, landmarks, au_overlay, "
            "pose, au, context, self_correct, output or output=json|label: what reasoning "
            "before answering buys). Reports main effects and two-way interactions.",
        ),
    ] = None,
    base: Annotated[str, typer.Option("--base", help="Base spec of a --grid.")] = "sovtp/full",
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", "-p", help="Variants (a list); the first is the base."),
    ] = None,
    config: ConfigFile = None,
    *,
    run: dict,
    knobs: dict,
) -> None:
    """Which prompt element buys how much: one annotation pass, every variant, deltas between
    consecutive rungs with CIs and McNemar p-values."""
    from sovtp.recipes.ablate import ablation_variants, run_ablate

    variants = ablation_variants(out, ladder=ladder, grid=grid, base=base, prompts=prompt or [])
    mine = {"data": data, "ladder": ladder, "grid": grid, "base": base, "prompt": prompt}
    mine["config"] = config  # a run's config.yaml: its data, systems and knobs, these variants
    given = run_settings(ctx, run | mine, knobs) | {"out": str(out), "variants": variants}
    cfg = build_config(config, given)
    check_deid_mode(cfg.deid, cfg.deid_mode)
    _precheck(cfg, given, run["no_check"])
    run_and_exit(cfg, run["resume"], run["retry_errors"], no_report=False, recipe=run_ablate)


ablate_cmd.__doc__ = f"{ablate_cmd.__doc__}\n\n{EXIT_CODES_HELP}"
