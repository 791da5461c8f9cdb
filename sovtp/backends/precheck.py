"""Before a run against a server: the :mod:`sovtp.backends.doctor` probe, read for what this run
needs — does the server apply the structured outputs the run's contract sends, does it take the
images its prompts carry?  Warnings only (``sovtp bench`` prints them and goes on); every wait
honours the run's ``--timeout``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sovtp.backends.doctor import APPLIED, ERROR, FLAVOURS, IMAGE_COUNTS, DoctorReport, diagnose


def bench_warnings(
    report: DoctorReport,
    *,
    server: str = "openai",
    structured: bool = True,
    output: str = "staged",
    images_per_prompt: int | None = None,
) -> list[str]:
    """What would go wrong in a run with these settings on the server the report describes."""
    from sovtp.contracts import constraint

    where = report.base_url
    if not report.reachable or report.error:
        return [f"{where}: {report.error or 'unreachable'}"]
    out: list[str] = []
    if report.model and report.models and report.model not in report.models:
        out.append(f"{where}: model {report.model!r} is not served ({', '.join(report.models)})")
    if not any(p.name == "chat" and p.ok for p in report.probes):
        out.append(f"{where}: a plain text question failed; see `sovtp doctor`")
        return out
    if report.images_seen is False:
        out.append(f"{where}: the server accepts images but the model does not see them")
    elif (
        images_per_prompt
        and report.images_limit_found
        and images_per_prompt > report.images_per_prompt
    ):
        out.append(
            f"{where}: prompts carry {images_per_prompt} images; the server refuses more "
            f"than {report.images_per_prompt}"
        )
    c = constraint(output, ["a", "b"]) if structured else None
    if c is None:
        return out
    kind = c[0]
    sent = "vllm" if server == "vllm" else "openai" if kind == "json" else None
    if sent is None:  # --server openai sends no choice: label prompts go unconstrained
        if report.structured["vllm"] == APPLIED:
            out.append(
                f"{where}: --output label is unconstrained with --server openai; this server "
                "applies --server vllm's choice"
            )
        return out
    status = report.structured[sent]
    if status != APPLIED:
        better = report.recommended_server()
        fix = f"use --server {better}" if better and better != server else "use --no-structured"
        out.append(
            f"{where}: --server {server} sends {FLAVOURS[sent].split(' (')[0]}, which this "
            f"server {status if status != ERROR else 'failed on'}: answers would not be "
            f"constrained; {fix}"
        )
    return out


async def acheck_before_bench(
    base_url: str | Sequence[str],
    *,
    model: str | None = None,
    api_key: str | None = None,
    server: str = "openai",
    structured: bool = True,
    output: str = "staged",
    images_per_prompt: int | None = None,
    timeout_s: float = 30.0,
) -> list[str]:
    """Diagnose every endpoint of a run (comma-separated or a list) and return the warnings."""
    urls = base_url.split(",") if isinstance(base_url, str) else list(base_url)
    out: list[str] = []
    for url in (u.strip() for u in urls if u.strip()):
        # the run's own image count is the one that matters (1 first: a refusal of any image)
        counts = (1, images_per_prompt) if images_per_prompt else IMAGE_COUNTS
        report = await diagnose(
            url, model=model, api_key=api_key, timeout_s=timeout_s, image_counts=counts
        )
        out += bench_warnings(
            report,
            server=server,
            structured=structured,
            output=output,
            images_per_prompt=images_per_prompt,
        )
    return out


def check_before_bench(base_url: str | Sequence[str], **kwargs: Any) -> list[str]:
    """:func:`acheck_before_bench` for synchronous callers (``sovtp bench`` before it starts)."""
    return asyncio.run(acheck_before_bench(base_url, **kwargs))
