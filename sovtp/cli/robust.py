"""``sovtp robust``: a CNN checkpoint's accuracy under FGSM/PGD (L∞) against ε, and the
perturbed frames for a vision-LLM run (extra ``cnn``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovtp.errors import SovtpError


def robust_cmd(
    source: Annotated[
        str,
        typer.Argument(
            help="A run folder (its data, split, fold, evaluator, limit), a manifest, "
            "ADAPTER:ROOT or hf:PATH."
        ),
    ],
    system: Annotated[
        str,
        typer.Option(
            "--system",
            help="cnn:CHECKPOINT (a `sovtp train` folder, its last/ checkpoint, or a file in it).",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for robust.json/.svg (default: SOURCE when it is a run folder, whose "
            "report then shows the figure; the perturbed crops go to its robust/ subfolder).",
        ),
    ] = None,
    eps: Annotated[
        str, typer.Option(help="L-inf budgets in grey levels (1/255), comma-separated.")
    ] = "0,1,2,4,8",
    attack: Annotated[str, typer.Option(help="fgsm | pgd.")] = "pgd",
    steps: Annotated[int, typer.Option(help="PGD steps.")] = 10,
    alpha: Annotated[
        float | None, typer.Option(help="PGD step in grey levels (default 2.5*eps/steps).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split (default: the evaluator's).")] = None,
    fold: Annotated[int | None, typer.Option(help="Cross-validation fold.")] = None,
    evaluator: Annotated[str | None, typer.Option(help="Evaluator spec.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N samples.")] = None,
    batch_size: Annotated[int, typer.Option(help="Crops per attack batch.")] = 64,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ...")] = None,
    seed: Annotated[int, typer.Option(help="PGD random start seed.")] = 0,
    frames: Annotated[
        bool,
        typer.Option(
            "--frames",
            help="Also write the perturbed full frames (PNG) + manifest.csv per eps, "
            "for `sovtp bench` on a vision-LLM system.",
        ),
    ] = False,
) -> None:
    """Attack a CNN baseline's face crops with FGSM or PGD at each eps; write robust.json, a
    figure of accuracy against eps (robust.svg) and the perturbed crops.

    Exit codes: 0 written; 2 usage or input error (or OUT holds another recipe's run);
    130 interrupted."""
    backend, _, ckpt = system.partition(":")
    if backend != "cnn" or not ckpt:
        raise SovtpError(f"--system {system!r}: sovtp robust attacks a CNN checkpoint: cnn:PATH")
    try:
        from sovtp.baselines.robust import Attack, parse_eps
        from sovtp.recipes.robust import robust_recipe

        eps_list = parse_eps(eps)
        settings = Attack(attack, steps=steps, alpha=alpha, seed=seed)
    except ValueError as e:
        raise SovtpError(str(e)) from e
    except ImportError as e:
        raise SovtpError(f"sovtp robust needs the cnn extra: pip install 'sovtp[cnn]' ({e})") from e
    res, out, into_run = robust_recipe(
        source,
        ckpt,
        out,
        eps_list,
        settings,
        split=split,
        fold=fold,
        evaluator=evaluator,
        limit=limit,
        batch_size=batch_size,
        device=device,
        frames=frames,
    )
    for r in res["rows"]:
        acc = r["accuracy"]
        typer.echo(
            f"eps {r['eps']:g}: accuracy {acc if acc is None else f'{acc:.3f}'} "
            f"(frames {r['frame_accuracy']:.3f}, L-inf {r['linf']})"
        )
    typer.echo(f"{out / 'robust.json'} · {out / 'robust.svg'}")
    if into_run is not None:
        typer.echo(f"{into_run / 'report.html'} (with the robustness figure)")
    for e, man in res.get("frames", {}).items():
        typer.echo(f"eps {e}: sovtp bench {man} ...  (frames written under {Path(man).parent})")


def flips_cmd(
    clean: Annotated[Path, typer.Argument(help="Run folder on the clean frames (eps 0).")],
    perturbed: Annotated[Path, typer.Argument(help="Run folder on the perturbed frames.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the flip rates as JSON here.")
    ] = None,
) -> None:
    """Answer flip rate of each system · variant between a clean and a perturbed run (samples
    paired by ID and face)."""
    import json

    from sovtp.baselines.robust import flip_rate_runs

    for p in (clean, perturbed):
        if not (p / "predictions.jsonl").exists():
            raise SovtpError(f"{p}: no predictions.jsonl (not a run folder)")
    res = flip_rate_runs(clean, perturbed)
    if not res:
        raise SovtpError("no system · variant appears in both runs")
    for k, f in res.items():
        typer.echo(
            f"{k}: flip rate {f['flip_rate']:.3f} ({f['flips']}/{f['n']}), "
            f"correct→wrong {f['correct_to_wrong']}, →invalid {f['to_invalid']}"
        )
    if out is not None:
        out.write_text(json.dumps(res, indent=1))
