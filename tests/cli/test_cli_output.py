"""Output to a pipe or a log keeps every word: rich lays out for 80 columns when it cannot ask a
terminal, which cut `--help` option text and bench table cells with "…" and wrapped a resume
line after a long temporary path (a test failed on another machine for that alone)."""

from __future__ import annotations

import pytest


def _commands(group, prefix=()):
    """Every command path of a click group (typer vendors its own click: duck-typed)."""
    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))


def test_every_help_piped_is_whole(capsys):
    """`sovtp … --help | cat`: no "…" in any command's help (bench's --system help was cut at
    80 columns: 'openai[:MODEL]@URL…')."""
    import typer

    from sovtp.cli import app, main

    paths = [(), *_commands(typer.main.get_command(app))]
    assert ("bench",) in paths and ("models", "fetch") in paths
    for path in paths:
        assert main([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        assert "Usage" in out and "…" not in out, (
            path,
            [ln for ln in out.splitlines() if "…" in ln],
        )
    main(["bench", "--help"])
    flat = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "openai[:MODEL]@URL[,URL] | transformers:PATH" in flat  # the whole choice list


def test_console_off_a_terminal_neither_cuts_nor_wraps(capsys):
    from rich.table import Table

    from sovtp.cli.console import console

    long = "/tmp/" + "a-very-long-temporary-folder-name/" * 12 + "run"
    con = console()
    assert not con.is_terminal
    con.print(f"resuming {long} (0 new, 2 resumed)")
    t = Table("system", "note")
    t.add_row("cnn:" + "x" * 150, "y" * 200)
    con.print(t)
    out = capsys.readouterr().out
    assert f"resuming {long} (0 new, 2 resumed)\n" in out
    assert "cnn:" + "x" * 150 in out and "y" * 200 in out and "…" not in out


@pytest.mark.parametrize("stderr", [False, True])
def test_a_terminal_keeps_riches_own_width(monkeypatch, stderr):
    """On a terminal the console is rich's own (its width, its wrapping)."""
    from rich.console import Console

    from sovtp.cli.console import LOG_WIDTH, console

    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    assert console(stderr=stderr).width != LOG_WIDTH


def test_a_panel_off_a_terminal_is_as_wide_as_its_content(capsys):
    """The query answer is a panel: off a terminal (where the console is wide so that nothing is
    cut) it must not stretch to the console's width — `./run sovtp | cat` printed 4000-wide
    boxes."""
    from sovtp.cli.annotate import _answer_panel
    from sovtp.cli.console import console
    from sovtp.records import Prediction, Response

    r = Response(query_id="q", backend="facs", model="m", text='{"label": "happy"}')
    p = Prediction(sample_id="s", system="facs", variant="v", label="happy", parse_status="ok")
    from types import SimpleNamespace

    q = SimpleNamespace(subject=1, output="json")
    console().print(_answer_panel("clip.mp4", SimpleNamespace(response=r, prediction=p, query=q)))
    out = capsys.readouterr().out
    assert "clip.mp4" in out and max(map(len, out.splitlines())) < 200
