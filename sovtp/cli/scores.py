"""``sovtp score``, ``report``, ``compare`` and ``judge``: numbers from runs and from elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sovtp.cli.options import GoldLabels
from sovtp.errors import SovtpError


def _print_tables(scoring: dict, title: str, rep: dict | None = None) -> None:
    """The report's metric, comparison and ablation tables, on the terminal — the same rows
    (and the same "not testable" marks) as report.md."""
    from rich.table import Table

    from sovtp.cli.console import console
    from sovtp.report.build import (
        ablation_tables,
        comparisons_table,
        metrics_table,
        untestable_pairs,
    )

    untestable = untestable_pairs(rep) if rep else frozenset()
    tables = [(title, metrics_table(scoring)), ("", comparisons_table(scoring, untestable))]
    tables += ablation_tables(rep) if rep else []
    con = console()
    for name, (head, rows) in tables:
        if rows:
            t = Table(*head, title=name or None)
            for r in rows:
                t.add_row(*map(str, r))
            con.print(t)


def print_summary(run: Path) -> None:
    rep_p = run / "report.json"
    if not rep_p.exists():
        typer.echo(f"run folder: {run}")
        return
    rep = json.loads(rep_p.read_text())
    _print_tables(rep["scoring"], str(run), rep)
    typer.echo(f"report: {run / 'report.html'}")


def report_cmd(
    run: Annotated[Path, typer.Argument(help="A run folder (from bench or ablate).")],
) -> None:
    """Rebuild report.json, report.md and report.html of a run."""
    from sovtp.report.ablation import ablation_notes
    from sovtp.report.build import write_report

    write_report(run)
    print_summary(run)
    for note in ablation_notes(run):
        typer.echo(f"note: {note}")


def compare_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to put side by side.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the table as Markdown here.")
    ] = None,
) -> None:
    """Runs side by side: WAR/UAR with CIs per run × system × variant."""
    from sovtp.cli.console import console
    from sovtp.report.compare import compare_markdown, compare_rows

    md = compare_markdown(compare_rows(list(runs)))
    if out:
        out.write_text(md)
    console().print(md)


def _run_label_set(run: Path):
    """The label set a run was scored against (its config), so ``sovtp score`` on a run's
    predictions agrees with the run's report."""
    import yaml

    from sovtp.engine.config import BenchConfig
    from sovtp.recipes.bench import label_set

    return label_set(BenchConfig(**(yaml.safe_load((run / "config.yaml").read_text()) or {})))


def _task_lines(s: dict) -> str:
    """A plain summary of a binary or interval scoring: each system's metrics with 95% CIs,
    plus the binary decision threshold and where it came from."""
    out = []
    for e in s.get("systems", []):
        name = f"{e.get('system', '')} {e.get('variant', '')}".strip() or "predictions"
        vals, ci = e.get("metrics", {}), e.get("ci", {})
        cells = []
        for m in s.get("metric_names") or list(vals):
            v = vals.get(m)
            if isinstance(v, (int, float)):
                c = ci.get(m) or {}
                rng = f" [{c['low']:.4f}, {c['high']:.4f}]" if "low" in c else ""
                cells.append(f"{m} {v:.4f}{rng}")
        out.append(f"{name} (n {e.get('n', '?')}): " + ", ".join(cells))
        b = e.get("binary")
        if b:
            out.append(f"  threshold {b.get('threshold')} ({b.get('threshold_source', '')})")
    return "\n".join(out) or json.dumps(s, indent=1, default=str)


def score_cmd(
    predictions: Annotated[
        Path,
        typer.Argument(
            help="A run folder (or its predictions.jsonl), or a CSV/JSONL made elsewhere (ranked lists allowed)."
        ),
    ],
    gold: Annotated[
        Path | None,
        typer.Option(
            help="A separate gold list (name,gt): every gold sample is scored; missing predictions count as invalid."
        ),
    ] = None,
    labels: GoldLabels = None,
    evaluator: Annotated[
        str | None, typer.Option(help="Evaluator spec (its label set and synonyms).")
    ] = None,
    n_boot: Annotated[
        int, typer.Option(help="Bootstrap resamples for the CIs (at least 100).")
    ] = 1000,
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
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="single_label | binary (scores: AP, ROC-AUC, EER, macro F1; with attack types "
            "APCER/BPCER/ACER) | intervals (spotting F1, STRS). Default: the evaluator's.",
        ),
    ] = None,
    positive: Annotated[
        str | None, typer.Option("--positive", help="binary: the positive class.")
    ] = None,
    score_column: Annotated[
        str | None,
        typer.Option("--score-column", help="binary: the column holding the positive score."),
    ] = None,
) -> None:
    """Metrics of predictions with 95% CIs, by task: recognition (WAR, UAR, F1s, per class,
    confusion, invalid rate), binary scores, or spotted intervals."""

    from sovtp.jsonl import iter_jsonl
    from sovtp.labels import load_label_set
    from sovtp.scoring.external import external_rows
    from sovtp.scoring.summary import summarise

    if n_boot < 100:
        raise SovtpError(f"--n-boot must be at least 100 for a 95% CI (got {n_boot})")
    if predictions.is_dir() and (predictions / "predictions.jsonl").is_file():
        predictions = predictions / "predictions.jsonl"  # a run folder: its predictions
    if not predictions.is_file():
        raise SovtpError(f"{predictions}: no such file (give predictions or a run folder)")
    ls = load_label_set(labels) if labels else None
    declared: dict = {}
    if evaluator:
        from sovtp.evaluator import load_evaluator

        ev = load_evaluator(evaluator)
        ls = ev.labels()
        declared = ev.scoring()
    task = task or declared.get("task") or "single_label"
    if task not in ("single_label", "binary", "intervals"):
        raise SovtpError(f"--task must be single_label, binary or intervals; got {task!r}")
    if task != "single_label":
        from sovtp.scoring.external_tasks import task_rows

        rows, labs = task_rows(
            task,
            predictions,
            gold,
            labels=ls,
            positive=positive,
            score_column=score_column,
            system=predictions.stem,
        )
        kw = declared if declared.get("task") == task else {"task": task}
        if positive:
            kw = {**kw, "options": {**kw.get("options", {}), "positive": positive}}
        s = summarise(rows, labs, n_boot=n_boot, tier_by=None, **kw)
        print(json.dumps(s, indent=1, default=str) if as_json else _task_lines(s))
        return
    first = next(iter_jsonl(predictions), None) if predictions.suffix == ".jsonl" else None
    if first is not None and "key" in first and "parse_status" in first and gold is None:
        rows = list(iter_jsonl(predictions))  # a sovtp run's own predictions
        if ls is None and (predictions.parent / "config.yaml").exists():
            ls = _run_label_set(predictions.parent)  # the run's labels, as its report uses
        labs = ls.labels if ls else sorted({r["gold"] for r in rows if r.get("gold")})
    else:
        rows, ls2 = external_rows(
            predictions,
            ls,
            gold,
            system=predictions.stem,
            unanswered="drop" if drop_unanswered else "invalid",
        )
        labs = ls2.labels
    s = summarise(rows, labs, n_boot=n_boot, tier_by=None)
    if as_json:
        print(json.dumps(s, indent=1))
        return
    _print_tables(s, predictions.name)


def judge_cmd(
    run: Annotated[
        Path, typer.Argument(help="A run folder whose samples carry reference descriptions.")
    ],
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Judge LLM endpoint (OpenAI-compatible); none (and no --hf): the offline "
            "approximation."
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Judge model on that server.")] = None,
    hf: Annotated[
        str | None,
        typer.Option(
            "--hf",
            help="Judge with a transformers model in-process (a folder, a hub ID, or "
            "smollm2-135m-instruct: offline, resolved from its pinned PyPI wheel).",
        ),
    ] = None,
    repeats: Annotated[
        int,
        typer.Option(
            min=1,
            help="Ask each judgement this many times (sampled, seeds 0..N-1), score by the "
            "median and report how often the judge agrees with itself.",
        ),
    ] = 1,
    structured: Annotated[
        bool,
        typer.Option(
            "--structured/--no-structured",
            help='Constrain the judge\'s answer to {"score": 0..scale} (in-process with '
            "xgrammar; a server must apply it).",
        ),
    ] = True,
) -> None:
    """Reasoning scores (clue and label overlap, 0-10): an LLM judge, or offline word overlap.
    A judgement without a valid score is counted as invalid and left out of the means."""
    from sovtp.recipes.bench import write_reasoning
    from sovtp.report.build import write_report

    if base_url and hf:
        raise typer.BadParameter("give --base-url or --hf, not both")
    be = None
    if base_url or hf:
        from sovtp.backends.base import get_backend

        be = (
            get_backend("openai", base_url=base_url, model=model)
            if base_url
            else get_backend("transformers", model=hf)
        )
    res = write_reasoning(
        run,
        "llm" if be else "offline",
        be,
        **({"repeats": repeats, "structured": structured} if be else {}),
    )
    write_report(run)
    for g, sc in res["scores"].items():
        line = f"{g} [{res['method']}]: " + ", ".join(f"{k} {v}" for k, v in sc.items())
        if g in res.get("judged", {}):
            line += f"; invalid judgements {res['invalid'][g]} of {res['judged'][g]}"
        typer.echo(line)
    c = res.get("consistency")
    if c:
        typer.echo(
            f"consistency over {c['repeats']} repeats: {c['questions']} questions, all agree "
            f"{c['all_agree']}, mean spread {c['mean_spread']}"
        )
