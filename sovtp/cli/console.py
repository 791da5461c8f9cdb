"""Where the CLI prints: rich's own layout on a terminal, every word in a pipe or a log file.

Rich lays text out for a terminal 80 columns wide when it cannot ask one — in a pipe, a file or
CI — so a table cell or a help line longer than its share of 80 columns was cut with "…" and a
long path wrapped mid-sentence: a log lost content.  Off a terminal the consoles here are wide
enough that tables keep their natural width and lines are never wrapped or cut.
"""

from __future__ import annotations

import os
import sys

LOG_WIDTH = 4000  # off a terminal: a table is as wide as its content, a line as long as it is
HELP_WIDTH = 200  # `--help` off a terminal: help panels expand to the width, so not LOG_WIDTH


def console(stderr: bool = False):
    """A rich Console for stdout (or stderr) that never cuts or wraps off a terminal."""
    from rich.console import Console

    c = Console(stderr=stderr)
    if c.is_terminal:
        return c
    return Console(stderr=stderr, width=LOG_WIDTH, soft_wrap=True)


def widen_help() -> None:
    """Typer draws ``--help`` with rich: off a terminal (and unless ``TERMINAL_WIDTH`` says
    otherwise), lay it out HELP_WIDTH wide so no option's text is cut with "…"."""
    if sys.stdout.isatty() or os.environ.get("TERMINAL_WIDTH"):
        return
    import typer.rich_utils

    typer.rich_utils.MAX_WIDTH = HELP_WIDTH


def report_outcome(run, con) -> int:
    """Print how a run folder ended (valid / invalid / error rows, and the likely cause when no
    valid answer came back) and return its exit code (:mod:`sovtp.engine.outcome`)."""
    from sovtp.engine.outcome import run_outcome

    return print_outcome(run_outcome(run), con)


def print_outcome(o, con) -> int:
    """Print an :class:`~sovtp.engine.outcome.Outcome` — its counts, and the likely cause when no
    valid answer came back — and return its exit code."""
    style = "green" if o.exit_code == 0 else "red"
    con.print(f"[{style}]{o.line()}[/{style}]")
    if o.hint:
        con.print(f"[red]no valid answer[/red]: {o.hint}")
    return o.exit_code


def progress_bar(what: str, *, disable: bool = False, remaining: bool = False):
    """The CLI's progress bar on stderr: ``what``, a bar, done/total (and the time left), gone
    when finished (``transient``); ``disable`` for ``--json`` output."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn(what), BarColumn(), MofNCompleteColumn()]
    if remaining:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=console(stderr=True), transient=True, disable=disable)
