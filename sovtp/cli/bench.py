"""``sovtp bench`` and ``sovtp ablate``: systems × prompt variants × samples, into a run folder.

Both build one :class:`~sovtp.bench.config.BenchConfig` from their options (``--config FILE``
reruns a run's ``config.yaml``), run it with a progress bar, print the summary and exit with a
code that says how the run went (see ``EXIT_CODES_HELP``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sovtp.cli.options import (
    DEFAULT_MAX_FACES,
    DEID_MODE,
    EXIT_CODES_HELP,
    VOICE_ALPHA,
    Asr,
    AuSource,
    BackendName,
    BaseUrl,
    Blur,
    Deid,
    DeidMode,
    Hands,
    Hf,
    LabelOrder,
    MaxFaces,
    MaxRetries,
    MaxTokens,
    Model,
    NoCache,
    NoPose,
    NoStructured,
    Output,
    Sampling,
    Seed,
    Server,
    Subject,
    Temperature,
    Timeout,
    VoiceAlpha,
    backend_options,
    check_deid_mode,
    out_folder,
)
from sovtp.errors import SovtpError

Data = Annotated[
    str | None,
    typer.Argument(
        help="A manifest (.csv/.jsonl), ADAPTER:ROOT (dfew, mafw, ferv39k, affwild2, deemo, bah, "
        "casme2) or hf:PATH (a local HF dataset folder or parquet).  Omit with --config."
    ),
]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/bench).")]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Rerun a run's config.yaml (options given here override it).", exists=True
    ),
]
Evaluator = Annotated[
    str | None, typer.Option("--evaluator", help="Evaluator spec (dfew, mafw, ... or a YAML).")
]
RunLabels = Annotated[
    str | None,
    typer.Option("--labels", help="Label set (default: the evaluator's or the prompt's)."),
]
Split = Annotated[str | None, typer.Option("--split", help="Split (test, validation, ...).")]
Fold = Annotated[int | None, typer.Option("--fold", help="Fold (DFEW/MAFW 1-5).")]
Root = Annotated[
    Path | None,
    typer.Option(
        "--root", help="Root the manifest's relative paths resolve under (default: its folder)."
    ),
]
Systems = Annotated[
    list[str] | None,
    typer.Option(
        "--system",
        help="A system, repeatable: facs | openai[:MODEL]@URL[,URL] | transformers:PATH | "
        "cnn:CHECKPOINT (a sovtp train folder). Runs beside the one --base-url/--hf/--backend "
        "names; alone, only the --system ones run.",
    ),
]
Concurrency = Annotated[
    int | None, typer.Option("--concurrency", help="Requests in flight per endpoint (16).")
]
Workers = Annotated[
    int | None,
    typer.Option("--workers", help="Annotation processes feeding the requests (default: cores)."),
]
NoResponseCache = Annotated[
    bool, typer.Option("--no-response-cache", help="Do not reuse cached deterministic answers.")
]
Limit = Annotated[
    int | None, typer.Option("--limit", help="Only the first N samples (after --shuffle).")
]
Shuffle = Annotated[bool, typer.Option("--shuffle", help="Shuffle the samples (with --seed).")]
Engine = Annotated[str, typer.Option("--engine", help="local | ray (Ray Data; extra `ray`).")]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the run in --out: skip rows written, ask failed ones again. Refused when "
        "the settings changed (except added systems or variants).",
    ),
]
RetryErrors = Annotated[
    str,
    typer.Option(
        "--retry-errors",
        help="On --resume, which error rows to ask again: transient (timeouts, 5xx, 429, "
        "connection, malformed) | all (also 4xx and other permanent ones).",
    ),
]
TierBy = Annotated[
    str | None,
    typer.Option("--tier-by", help="Difficulty tiers: n_faces (default) or a manifest column."),
]
UseTranscript = Annotated[
    bool,
    typer.Option("--transcript/--no-transcript", help="Word the samples' transcripts (if any)."),
]
Tta = Annotated[
    str,
    typer.Option(
        "--tta",
        help="Test-time adaptation of the cnn:CKPT systems on the test stream, in sample order: "
        "none | bn (BatchNorm statistics) | tent (entropy, norm affine parameters) | fisher:K "
        "(the K parameters of largest Fisher information). Writes tta.json (F1 before/after, "
        "parameters adapted); a --resume replays the stream from the first sample.",
    ),
]
NoReport = Annotated[bool, typer.Option("--no-report", help="Skip writing report.*.")]
NoCheck = Annotated[
    bool,
    typer.Option(
        "--no-check",
        help="Skip the pre-run server check (`sovtp doctor`'s structured-output probe).",
    ),
]


def _precheck(given: dict[str, Any], no_check: bool) -> None:
    """Before a run against a server: does it apply the structured outputs the run relies on,
    and take the images the prompts send?  Warnings only; the run goes on."""
    if no_check:
        return
    from sovtp.cli.console import console

    con = console(stderr=True)
    for s in given.get("systems") or []:
        url = s.options.get("base_url") if s.backend == "openai" else None
        if not url:
            continue
        from sovtp.doctor import check_before_bench
        from sovtp.prompting.spec import load_spec

        spec = load_spec((given.get("variants") or evaluator_prompts(given.get("evaluator")))[0])
        for w in check_before_bench(
            ",".join(url) if isinstance(url, list) else url,
            model=s.options.get("model"),
            server=s.options.get("server", "openai"),
            structured=given.get("structured", True) is not False,
            output=given.get("output") or spec.output,
            images_per_prompt=spec.max_images,
            timeout_s=min(float(given.get("timeout_s") or 30.0), 30.0),
        ):
            con.print(f"warning: {w}", markup=False, highlight=False)


def _systems(backend, base_url, model, hf, system, server, timeout, max_retries):
    """The systems of a run: each --system, plus the one --backend/--base-url/--hf describe
    (the offline FACS reasoner when nothing is given)."""
    from sovtp.bench.config import SystemSpec

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
    """A BenchConfig from a config.yaml (if any) overlaid with the options the user gave
    (``None`` means not given)."""
    import yaml

    from sovtp.bench.config import BenchConfig

    base: dict[str, Any] = {}
    if config_file is not None:
        base = yaml.safe_load(config_file.read_text()) or {}
    base.update({k: v for k, v in given.items() if v is not None})
    if not base.get("variants") and base.get("evaluator"):
        base["variants"] = evaluator_prompts(base["evaluator"])
    if not base.get("data"):
        raise SovtpError("give DATA (a manifest, ADAPTER:ROOT or hf:PATH) or --config FILE")
    known = set(BenchConfig.model_fields)
    unknown = sorted(set(base) - known)
    if unknown:
        raise SovtpError(f"unknown settings in the run config: {', '.join(unknown)}")
    return BenchConfig(**base)


def run_and_exit(cfg, resume: bool, retry_errors: str, no_report: bool) -> None:
    """Run with a progress bar; print the summary; exit 0/3/4 (130 on Ctrl-C)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from sovtp.bench.run import RunInterrupted, count, run_bench
    from sovtp.cli.console import console
    from sovtp.cli.scores import print_summary

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
            elif row.get("parse_status") == "invalid":
                tally["invalid"] += 1
            t = prog.tasks[task]
            rate = f"{t.speed:.1f} rows/s" if t.speed else ""
            prog.update(
                task, advance=1, errors=tally["errors"], invalid=tally["invalid"], rate=rate
            )

        try:
            run, stats = run_bench(
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
    if stats.rows and stats.answered == 0:
        con.print(
            f"[red]no sample answered[/]: {stats.errors} error rows (see {run}/predictions.jsonl)"
        )
        raise typer.Exit(4)
    if stats.errors:
        con.print(
            f"[red]{stats.errors} rows are errors[/] of {stats.rows}; "
            f"ask them again with --resume (transient) or --resume --retry-errors all"
        )
        raise typer.Exit(3)


def bench_cmd(
    data: Data = None,
    out: Out = None,
    config: ConfigFile = None,
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", "-p", help="Prompt spec; repeat for several variants."),
    ] = None,
    output: Output = None,
    no_structured: NoStructured = False,
    evaluator: Evaluator = None,
    labels: RunLabels = None,
    label_order: LabelOrder = "fixed",
    split: Split = None,
    fold: Fold = None,
    root: Root = None,
    backend: BackendName = None,
    base_url: BaseUrl = None,
    model: Model = None,
    hf: Hf = None,
    system: Systems = None,
    server: Server = "openai",
    concurrency: Concurrency = None,
    timeout: Timeout = 120.0,
    max_retries: MaxRetries = 2,
    workers: Workers = None,
    subject: Subject = "largest",
    transcript: UseTranscript = True,
    sampling: Sampling = "uniform:8",
    max_faces: MaxFaces = DEFAULT_MAX_FACES,
    au_source: AuSource = "mediapipe",
    no_pose: NoPose = False,
    no_cache: NoCache = False,
    no_response_cache: NoResponseCache = False,
    limit: Limit = None,
    shuffle: Shuffle = False,
    seed: Seed = 0,
    temperature: Temperature = 0.0,
    max_tokens: MaxTokens = 1024,
    engine: Engine = "local",
    resume: Resume = False,
    retry_errors: RetryErrors = "transient",
    no_report: NoReport = False,
    tier_by: TierBy = None,
    deid: Deid = False,
    blur: Blur = "all",
    asr: Asr = False,
    hands: Hands = False,
    voice_alpha: VoiceAlpha = VOICE_ALPHA,
    deid_mode: DeidMode = DEID_MODE,
    tta: Tta = "none",
    no_check: NoCheck = False,
) -> None:
    """Score systems × prompt variants on a benchmark; writes a resumable run folder + report."""
    given = _run_settings(
        data=data, out=out, variants=prompt or None, output=output, no_structured=no_structured,
        evaluator=evaluator, labels=labels, label_order=label_order, split=split, fold=fold,
        root=root, backend=backend, base_url=base_url, model=model, hf=hf, system=system,
        server=server, concurrency=concurrency, timeout=timeout, max_retries=max_retries,
        workers=workers, subject=subject, transcript=transcript, sampling=sampling,
        max_faces=max_faces, au_source=au_source, no_pose=no_pose, no_cache=no_cache,
        no_response_cache=no_response_cache, limit=limit, shuffle=shuffle, seed=seed,
        temperature=temperature, max_tokens=max_tokens, engine=engine, tier_by=tier_by,
        deid=deid, blur=blur, asr=asr, hands=hands, tta=tta, voice_alpha=voice_alpha,
        deid_mode=deid_mode, defaults=config is None,
    )  # fmt: skip
    cfg = build_config(config, given)
    check_deid_mode(cfg.deid, cfg.deid_mode)  # on the merged settings: a config may set deid
    _precheck(given, no_check)
    run_and_exit(cfg, resume, retry_errors, no_report)


bench_cmd.__doc__ = f"{bench_cmd.__doc__}\n\n{EXIT_CODES_HELP}"


def _run_settings(
    *, data, out, variants, output, no_structured, evaluator, labels, label_order, split, fold,
    root, backend, base_url, model, hf, system, server, concurrency, timeout, max_retries,
    workers, subject, transcript, sampling, max_faces, au_source, no_pose, no_cache,
    no_response_cache, limit, shuffle, seed, temperature, max_tokens, engine, tier_by, deid,
    blur, asr, defaults: bool, tta: str = "none", hands: bool = False,
    voice_alpha: str = VOICE_ALPHA, deid_mode: str = DEID_MODE,
) -> dict[str, Any]:  # fmt: skip
    """The BenchConfig fields the options give.  Under --config only what differs from an
    option's default counts as given, so a rerun keeps the file's settings."""
    systems = None
    if defaults or base_url or hf or backend or model or system:
        systems = _systems(backend, base_url, model, hf, system, server, timeout, max_retries)
    d: dict[str, Any] = {
        "data": data, "out": str(out) if out else ("runs/bench" if defaults else None),
        "variants": variants, "evaluator": evaluator, "labels": labels, "split": split,
        "fold": fold, "root": str(root) if root else None, "systems": systems,
        "concurrency": concurrency, "workers": workers, "limit": limit, "tier_by": tier_by,
    }  # fmt: skip
    flags: dict[str, tuple[Any, Any]] = {  # field: (value, option default)
        "output": (output, None), "structured": (not no_structured, True),
        "label_order": (label_order, "fixed"), "subject": (subject, "largest"),
        "transcript": (transcript, True), "sampling": (sampling, "uniform:8"),
        "max_faces": (max_faces, DEFAULT_MAX_FACES), "au_source": (au_source, "mediapipe"),
        "pose": (not no_pose, True), "annotation_cache": (not no_cache, True),
        "response_cache": (not no_response_cache, True), "shuffle": (shuffle, False),
        "seed": (seed, 0), "gen_seed": (seed, 0), "temperature": (temperature, 0.0),
        "max_tokens": (max_tokens, 1024),
        "engine": (engine, "local"), "timeout_s": (timeout, 120.0),
        "max_retries": (max_retries, 2), "deid": (deid, False), "blur": (blur, "all"),
        "asr": (asr, False), "tta": (tta, "none"), "hands": (hands, False),
        "voice_alpha": (voice_alpha, VOICE_ALPHA), "deid_mode": (deid_mode, DEID_MODE),
    }  # fmt: skip
    for k, (v, default) in flags.items():
        d[k] = v if (defaults or v != default) else None
    return d


def ablate_cmd(
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
    output: Output = None,
    no_structured: NoStructured = False,
    evaluator: Evaluator = None,
    labels: RunLabels = None,
    label_order: LabelOrder = "fixed",
    split: Split = None,
    fold: Fold = None,
    root: Root = None,
    backend: BackendName = None,
    base_url: BaseUrl = None,
    model: Model = None,
    hf: Hf = None,
    system: Systems = None,
    server: Server = "openai",
    concurrency: Concurrency = None,
    timeout: Timeout = 120.0,
    max_retries: MaxRetries = 2,
    workers: Workers = None,
    subject: Subject = "largest",
    transcript: UseTranscript = True,
    sampling: Sampling = "uniform:8",
    max_faces: MaxFaces = DEFAULT_MAX_FACES,
    au_source: AuSource = "mediapipe",
    no_pose: NoPose = False,
    no_cache: NoCache = False,
    no_response_cache: NoResponseCache = False,
    limit: Limit = None,
    shuffle: Shuffle = False,
    seed: Seed = 0,
    temperature: Temperature = 0.0,
    max_tokens: MaxTokens = 1024,
    engine: Engine = "local",
    resume: Resume = False,
    retry_errors: RetryErrors = "transient",
    tier_by: TierBy = None,
    deid: Deid = False,
    blur: Blur = "all",
    asr: Asr = False,
    hands: Hands = False,
    voice_alpha: VoiceAlpha = VOICE_ALPHA,
    deid_mode: DeidMode = DEID_MODE,
    no_check: NoCheck = False,
) -> None:
    """Which prompt element buys how much: one annotation pass, every variant, deltas between
    consecutive rungs with CIs and McNemar p-values."""
    from sovtp.bench.ablation import LADDER
    from sovtp.bench.ablation import grid as make_grid

    if sum(bool(x) for x in (ladder, grid, prompt)) != 1:
        raise SovtpError("choose one of --ladder, --grid SWITCHES or --prompt (repeated)")
    if ladder:
        variants = list(LADDER)
    elif grid:
        variants = make_grid(
            base, [g.strip() for g in grid.split(",") if g.strip()], out / "prompts"
        )
    else:
        variants = list(prompt or [])
    given = _run_settings(
        data=data, out=out, variants=variants, output=output, no_structured=no_structured,
        evaluator=evaluator, labels=labels, label_order=label_order, split=split, fold=fold,
        root=root, backend=backend, base_url=base_url, model=model, hf=hf, system=system,
        server=server, concurrency=concurrency, timeout=timeout, max_retries=max_retries,
        workers=workers, subject=subject, transcript=transcript, sampling=sampling,
        max_faces=max_faces, au_source=au_source, no_pose=no_pose, no_cache=no_cache,
        no_response_cache=no_response_cache, limit=limit, shuffle=shuffle, seed=seed,
        temperature=temperature, max_tokens=max_tokens, engine=engine, tier_by=tier_by,
        deid=deid, blur=blur, asr=asr, hands=hands, voice_alpha=voice_alpha,
        deid_mode=deid_mode, defaults=True,
    )  # fmt: skip
    cfg = build_config(None, given)
    check_deid_mode(cfg.deid, cfg.deid_mode)
    _precheck(given, no_check)
    run_and_exit(cfg, resume, retry_errors, no_report=False)


ablate_cmd.__doc__ = f"{ablate_cmd.__doc__}\n\n{EXIT_CODES_HELP}"
