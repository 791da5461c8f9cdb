"""``sovtp doctor``: what a server really does with images and structured outputs."""

from __future__ import annotations

from typing import Annotated

import typer

from sovtp.cli.options import Model, Timeout


def doctor_cmd(
    base_url: Annotated[
        str, typer.Option("--base-url", help="The OpenAI-compatible server to check.")
    ],
    model: Model = None,
    timeout: Timeout = 60.0,
) -> None:
    """Check a server before a run: its models, images per prompt, whether structured outputs
    are really applied (a server may ignore them and still answer 200), latency; and what to
    change.  Exit 0 when the server can run sovtp as is, 1 when something needs changing."""
    import os

    from sovtp.doctor import diagnose_sync

    key = os.environ.get("SOVTP_API_KEY") or os.environ.get("OPENAI_API_KEY")
    report = diagnose_sync(base_url, model=model, api_key=key, timeout_s=timeout)
    for line in report.lines():
        print(line)
    advice = report.advice()
    for a in advice:
        print(f"advice: {a}")
    if not report.ok:
        raise typer.Exit(1)
