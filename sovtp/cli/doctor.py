"""``sovtp doctor``: what a server really does with images and structured outputs."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from sovtp.cli.options import Model, Timeout


def doctor_cmd(
    base_url: Annotated[
        str, typer.Option("--base-url", help="The OpenAI-compatible server to check.")
    ],
    model: Model = None,
    timeout: Timeout = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a server before a run: its models, images per prompt, whether structured outputs
    are really applied (a server may ignore them and still answer 200), latency; and what to
    change.  Exit 0 when the server answers a chat request, 1 when it does not."""
    import os

    from sovtp.backends.doctor import diagnose_sync
    from sovtp.cli.console import console

    key = os.environ.get("SOVTP_API_KEY") or os.environ.get("OPENAI_API_KEY")
    r = diagnose_sync(base_url, model=model, api_key=key, timeout_s=timeout)
    if as_json:
        print(json.dumps(r.to_dict(), indent=2))
    else:
        con = console()
        for ln in r.lines():
            con.print(ln, markup=False, highlight=False)
        for a in r.advice():
            con.print("→ " + a, markup=False, highlight=False)
    if not (r.reachable and any(p.name == "chat" and p.ok for p in r.probes)):
        raise typer.Exit(1)
