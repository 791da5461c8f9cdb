"""``sovtp data check``: counts, missing and unreadable media, duplicates and the published
counts of a benchmark copy, before a run spends hours on it (:mod:`sovtp.recipes.data_check`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from sovtp.cli.options import Root

data_app = typer.Typer(help="Benchmark data: check a local copy.", no_args_is_help=True)


def _table(rep) -> None:
    from rich.table import Table

    from sovtp.cli.console import console

    con = console()
    t = Table(title=f"{rep.source}: {rep.total} samples")
    t.add_column("split")
    t.add_column("fold", justify="right")
    t.add_column("samples", justify="right")
    t.add_column("published", justify="right")
    t.add_column("classes")
    pub = {(c["split"], c["fold"]): c["published"] for c in rep.compared}
    for (split, fold), classes in sorted(
        rep.counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)
    ):
        n = sum(classes.values())
        p = pub.get((split, fold))
        shown = "" if p is None else (f"[green]{p}[/green]" if p == n else f"[red]{p}[/red]")
        t.add_row(
            split or "-",
            "-" if fold is None else str(fold),
            str(n),
            shown,
            ", ".join(f"{k} {v}" for k, v in sorted(classes.items())),
        )
    con.print(t)
    con.print(
        f"decoded {rep.decoded} media file(s); missing {len(rep.missing)}, "
        f"unreadable {len(rep.unreadable)}, duplicate IDs {len(rep.duplicate_ids)}",
        highlight=False,
    )
    problems = rep.problems()
    for line in problems:
        con.print(f"[red]✗[/red] {line}", highlight=False)
    if not problems:
        con.print("[green]✓ the data is complete, readable and matches what is published[/green]")


@data_app.command("check")
def check_cmd(
    source: Annotated[
        str,
        typer.Argument(
            help="ADAPTER:ROOT (an official layout, e.g. dfew:/data/DFEW) or a .csv/.jsonl manifest."
        ),
    ],
    fold: Annotated[
        int | None, typer.Option("--fold", help="Check this fold only (default: every fold).")
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="Check this split only (default: every split).")
    ] = None,
    root: Root = None,
    decode: Annotated[
        int,
        typer.Option(
            "--decode",
            help="How many media files to decode (a seeded random sample); -1 all, 0 none.",
        ),
    ] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the decode sample.")] = 0,
    published: Annotated[
        str | None,
        typer.Option(
            "--published",
            help="Compare with this benchmark's published counts (dfew, ferv39k, mer2023, bah); "
            "default: the adapter's name.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Counts per split, fold and class; missing media; unreadable media (a sample, decoded);
    duplicate IDs, media and train/test leaks; and the published counts where known.

    Exit codes: 0 everything checks out; 1 a problem was found (each printed as one line);
    2 the source cannot be read at all."""
    from sovtp.cli.console import progress_bar
    from sovtp.recipes.data_check import check_dataset

    with progress_bar("decoding media", disable=as_json) as bar:
        task = bar.add_task("decode", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        rep = check_dataset(
            source,
            fold=fold,
            split=split,
            root=root,
            decode=decode,
            seed=seed,
            published=published,
            progress=progress,
        )
    if as_json:
        print(json.dumps(rep.as_dict(), indent=1))
    else:
        _table(rep)
    if rep.problems():
        raise typer.Exit(1)
