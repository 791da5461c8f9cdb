"""``sovtp robust`` as a recipe: a CNN baseline's face crops attacked with FGSM or PGD at each
ε (:mod:`sovtp.baselines.robust`) → ``robust.json`` and its figure, into a folder of its own (kind
``robust``) or into the bench run it was given (held by the engine's lock while its report is
rewritten with the robustness section)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sovtp.baselines.robust import EPS_DEFAULT, Attack, accuracy_vs_eps, open_samples
from sovtp.baselines.robust_frames import write_perturbed_set
from sovtp.engine.folder import RunFolder, atomic_write, write_json
from sovtp.errors import SovtpError
from sovtp.report.robust import robust_svg


def run_folder(p: Path) -> Path | None:
    """``p`` when it is a bench (or ablate) run folder, whose report can take the robustness
    section.  A spot or pad folder has a ``predictions.jsonl`` too, but its report is drawn by
    its own recipe: it is no run to write into (claimed as ``robust``, it is refused by kind)."""
    if not (p.is_dir() and (p / "predictions.jsonl").exists()):
        return None
    return p if RunFolder(p, "bench").marker().get("kind") == "bench" else None


def run_n_boot(run: Path) -> int:
    """The run's own bootstrap size, so rewriting its report keeps its CIs as they were."""
    import yaml

    cfg = run / "config.yaml"
    doc = (yaml.safe_load(cfg.read_text()) or {}) if cfg.exists() else {}
    return int(doc.get("n_boot") or 1000)


def robust_recipe(
    source: str, ckpt: str, out: Path | None, eps: Sequence[float], attack: Attack, **kw: Any
) -> tuple[dict[str, Any], Path, Path | None]:
    """Setup → run → report: returns the results, the folder written and the bench run whose
    report now shows them (None for a folder of its own)."""
    into_run = run_folder(out if out is not None else Path(source))  # its report gets the figure
    if out is None:
        if into_run is None:
            raise SovtpError("give --out FOLDER (SOURCE is not a run folder to write into)")
        out = into_run
    folder = RunFolder(out, "bench" if into_run is not None else "robust")
    # a bench run is only locked (its kind and rows stay); a folder of its own is claimed
    # (another recipe's folder refused; a rerun replaces its files)
    if into_run is not None:
        folder.lock()
    else:
        folder.claim(None, resume=True)
    try:
        res = run_robust(
            source, ckpt, out, eps, attack, files_dir=out / "robust" if into_run else None, **kw
        )
        if into_run is not None:
            from sovtp.report.build import write_report

            write_report(into_run, n_boot=run_n_boot(into_run))
    except (ValueError, FileNotFoundError) as e:
        raise SovtpError(str(e)) from e
    finally:
        folder.close()
    return res, out, into_run


def run_robust(
    source: str,
    ckpt: str | Path,
    out: str | Path,
    eps: Sequence[float] = EPS_DEFAULT,
    attack: Attack = Attack(),
    *,
    split: str | None = None,
    fold: int | None = None,
    evaluator: str | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    device: str | None = None,
    frames: bool = False,
    progress: bool = True,
    files_dir: str | Path | None = None,
) -> dict[str, Any]:
    """``sovtp robust``: crops of the samples → accuracy vs ε → ``out/robust.json``,
    ``out/robust.svg``, the perturbed crops ``crops-eps<e>.safetensors`` (a CropSet each); with
    ``frames`` also ``frames-eps<e>/`` (PNG frames + ``manifest.csv``) for a vision-LLM run.
    The crops and frames go to ``files_dir`` (default ``out``): a run folder keeps them in a
    subfolder, beside the ``robust.json`` its report shows."""
    from sovtp.baselines.data import CropSet, build_cropset
    from sovtp.baselines.predict import load
    from sovtp.systems import system_name

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = Path(files_dir) if files_dir is not None else out
    files.mkdir(parents=True, exist_ok=True)
    m = load(ckpt, device)
    samples, facts = open_samples(source, split=split, fold=fold, evaluator=evaluator, limit=limit)
    samp = m.config.get("sampling", "uniform:8")
    crops = build_cropset(
        samples, m.labels, m.size, samp, subject=m.config.get("subject"), progress=progress
    )
    res = accuracy_vs_eps(m, crops, eps, attack, batch_size=batch_size, keep=True)
    kept = res.pop("crops")
    # named as bench and query name the same checkpoint (cnn:<its folder>), not by architecture
    name = system_name("cnn", str(ckpt))
    res.update(system=name, checkpoint=str(ckpt), sampling=samp, size=m.size, **facts)
    for e, xa in kept.items():
        CropSet(
            xa,
            crops.owner,
            crops.y,
            crops.ids,
            crops.labels,
            {**crops.meta, "eps": e, "attack": attack.kind},
        ).save(files / f"crops-eps{e:g}.safetensors")
    if frames:
        res["frames"] = {}
        for e in eps:
            man = write_perturbed_set(
                m, samples, e, files / f"frames-eps{e:g}", attack, sampling=samp
            )
            res["frames"][f"{e:g}"] = str(man)
    write_json(out / "robust.json", res)
    atomic_write(out / "robust.svg", robust_svg(res, title=f"{name} · {attack.kind}"))
    return res
