"""``sovtp ablate`` as a recipe: which prompt element buys how much.

Setup turns the study into prompt variants — the ladder (plain → boxes → IDs → landmarks → AU
text → AU overlay → context → full → staged), a factorial grid over switches of a base spec, or a
list — and the run is the bench engine over them (one annotation pass per sample serves every
variant; :mod:`sovtp.recipes.bench`).  The report adds deltas between consecutive rungs with CIs
and McNemar p-values, or main effects and interactions for a grid (:mod:`sovtp.report.ablation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sovtp.engine.config import BenchConfig
from sovtp.engine.items import Stats
from sovtp.errors import SovtpError


def ablation_variants(
    out: Path,
    *,
    ladder: bool = False,
    grid: str | None = None,
    base: str = "sovtp/full",
    prompts: Sequence[str] = (),
) -> list[str]:
    """The study's variants: exactly one of the ladder, a grid (its specs written under
    ``out/prompts``, so the run folder holds what it asked) or a list of prompts."""
    from sovtp.prompting.ablation import LADDER
    from sovtp.prompting.ablation import grid as make_grid

    if sum(bool(x) for x in (ladder, grid, prompts)) != 1:
        raise SovtpError("choose one of --ladder, --grid SWITCHES or --prompt (repeated)")
    if ladder:
        return list(LADDER)
    if grid:
        return make_grid(base, [g.strip() for g in grid.split(",") if g.strip()], out / "prompts")
    return list(prompts)


def run_ablate(cfg: BenchConfig, **options: Any) -> tuple[Path, Stats]:
    """Run the variants through the bench engine (``options``: :func:`~sovtp.recipes.bench.
    run_bench`'s — resume, on_row, report, retry_errors); the report's ablation sections read
    the variants' order (the first is the base)."""
    from sovtp.recipes.bench import run_bench

    if len(cfg.variants) < 2:
        raise SovtpError("an ablation compares at least two prompt variants")
    return run_bench(cfg, **options)
