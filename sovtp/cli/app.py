"""The ``sovtp`` command: the Typer app, logging set-up, error handling and exit codes.

Thin: parse options, call library functions, print.  Heavy modules (mediapipe, supervision,
openai, torch) are imported inside the commands, so ``sovtp --help`` is instant and needs none
of them.  Errors meant for the user (:class:`~sovtp.errors.SovtpError`, bad option values) print
as one line with exit code 2.  The command modules define plain functions; this module registers
them, so nothing imports back up (no import circle).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Annotated, Any

import typer

from sovtp.cli import annotate as annotate_cmds
from sovtp.cli import bench as bench_cmds
from sovtp.cli import deid as deid_cmds
from sovtp.cli import doctor as doctor_cmds
from sovtp.cli import models as model_cmds
from sovtp.cli import pad as pad_cmds
from sovtp.cli import robust as robust_cmds
from sovtp.cli import scores as score_cmds
from sovtp.cli import spot as spot_cmds
from sovtp.cli import train as train_cmds
from sovtp.cli.data import data_app
from sovtp.cli.export import export_app
from sovtp.errors import SovtpError

app = typer.Typer(
    help="sovtp — zero-shot emotion recognition and reasoning with vision LLMs "
    "(Set-of-Vision-Text prompting).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Model files: fetch, list, locate.", no_args_is_help=True)
prompts_app = typer.Typer(help="Prompt specs shipped in prompts/.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(prompts_app, name="prompts")
app.add_typer(data_app, name="data")
app.add_typer(export_app, name="export")

app.command("annotate")(annotate_cmds.annotate_cmd)
app.command("prompt")(annotate_cmds.prompt_cmd)
app.command("query")(annotate_cmds.query_cmd)
app.command("bench")(bench_cmds.bench_cmd)
app.command("ablate")(bench_cmds.ablate_cmd)
app.command("report")(score_cmds.report_cmd)
app.command("compare")(score_cmds.compare_cmd)
app.command("score")(score_cmds.score_cmd)
app.command("judge")(score_cmds.judge_cmd)
app.command("doctor")(doctor_cmds.doctor_cmd)
app.command("train")(train_cmds.train_cmd)
app.command("robust")(robust_cmds.robust_cmd)
app.command("flips")(robust_cmds.flips_cmd)
app.command("spot")(spot_cmds.spot_cmd)
app.command("pad")(pad_cmds.pad_cmd)
app.command("deid")(deid_cmds.deid_cmd)
app.command("audit")(deid_cmds.audit_cmd)
models_app.command("fetch")(model_cmds.models_fetch)
models_app.command("list")(model_cmds.models_list)
models_app.command("path")(model_cmds.models_path)
models_app.command("convert-checkpoint")(model_cmds.models_convert_checkpoint)
prompts_app.command("list")(model_cmds.prompts_list)


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
    from sovtp.redact import RedactingFilter

    if not verbose:
        _quiet_native_stderr()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())  # credentials in URLs never reach a log line
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


def _version(value: bool) -> None:
    if value:
        from sovtp import __version__

        print(f"sovtp {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    _setup_logging(verbose)


def _one_line(e: BaseException) -> str:
    """A user error as one line: a settings model's validation error (query and prompt build
    the prepare settings directly) lists each field and why, not pydantic's multi-line dump."""
    errors = getattr(e, "errors", None)
    if type(e).__name__ == "ValidationError" and callable(errors):
        return "; ".join(
            f"{'.'.join(map(str, x.get('loc', ())))}: {x.get('msg', '')}".removeprefix(": ")
            for x in errors()
        )
    return str(e)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM (a batch scheduler's time limit, ``kill``) ends a run as Ctrl-C does: the rows so
    far kept, the report written, the folder's lock let go, exit 130 — not a dead process with a
    stale ``.lock`` and no report.  Raised as SIGINT, so asyncio's own Ctrl-C path handles it —
    unless SIGINT is ignored, as in a process a script started in the background (``cmd &``,
    ``nohup``): then it is the KeyboardInterrupt Ctrl-C would have raised."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        raise KeyboardInterrupt
    signal.raise_signal(signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and exit code 2; Ctrl-C (and SIGTERM)
    exits 130."""
    from sovtp.cli.console import widen_help

    widen_help()  # `--help | cat` and logs keep every word
    before = None
    if threading.current_thread() is threading.main_thread():  # signals go to the main thread
        before = signal.signal(signal.SIGTERM, _terminated)
    try:
        return _run(argv)
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)


def _run(argv: list[str] | None) -> int:
    try:
        rc = app(args=argv, standalone_mode=False)  # returns typer.Exit's code in this mode
    except (SovtpError, ValueError, FileNotFoundError, NotADirectoryError) as e:
        print(f"sovtp: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sovtp: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:
        return int(e.code or 0)
    except typer.Abort:
        print("sovtp: aborted", file=sys.stderr)
        return 1
    except typer.TyperException as e:  # click's usage errors (typer vendors click)
        show = getattr(e, "show", None)
        if show is None:
            raise
        show()
        return int(getattr(e, "exit_code", 2))
    return rc if isinstance(rc, int) else 0
