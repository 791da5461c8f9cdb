"""``sovtp bench`` / ``sovtp ablate`` as a library call: config → run folder → report."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from sovtp.data.sample import Sample
from sovtp.data.sources import open_dataset, select
from sovtp.engine.config import BenchConfig, SystemSpec
from sovtp.engine.folder import versions
from sovtp.engine.items import Stats, rows_of
from sovtp.engine.runner import Context, run_local, run_options
from sovtp.engine.store import RunStore
from sovtp.errors import SovtpError
from sovtp.evaluator import load_evaluator
from sovtp.jsonl import latest_rows
from sovtp.labels import LabelSet, load_label_set
from sovtp.prompting.spec import load_spec

log = logging.getLogger(__name__)


def resolve(cfg: BenchConfig) -> BenchConfig:
    """Fill what the evaluator spec decides (split, fold, sampling, adapter options) where the
    user left it open."""
    if not cfg.evaluator:
        return cfg
    ev = load_evaluator(cfg.evaluator)
    if cfg.split not in (None, "all") and ev.splits and cfg.split not in ev.splits:
        raise SovtpError(f"{ev.name} has no split {cfg.split!r} (splits: {', '.join(ev.splits)})")
    if cfg.fold is not None and ev.folds and cfg.fold not in ev.folds:
        raise SovtpError(f"{ev.name} has no fold {cfg.fold} (folds: {ev.folds})")
    upd: dict[str, Any] = {}
    cols = _manifest_columns(cfg.data)  # None: an adapter layout, which has its splits
    if cfg.split is None and ev.split and (cols is None or "split" in cols):
        upd["split"] = ev.split
    if cfg.fold is None and ev.fold is not None and (cols is None or "fold" in cols):
        upd["fold"] = ev.fold
    if not cfg.adapter_options and ev.options:
        upd["adapter_options"] = ev.options
    if ev.sampling and "sampling" not in cfg.model_fields_set:  # neither typed nor in a file
        upd["sampling"] = ev.sampling
    return cfg.model_copy(update=upd)


def name_served_models(cfg: BenchConfig, keep: Collection[str] = ()) -> BenchConfig:
    """A server system given without ``--model`` is named by the model the server reports
    (``openai:<model>``), as ``sovtp query`` names it: one name for one system across query,
    bench and the report, asked once before the run's identity is taken (a server that is down
    fails here, in one line).  ``keep``: names a resumed run already holds rows under."""
    from sovtp.backends.base import get_backend, served_model

    systems = []
    for s in cfg.systems:
        if s.backend == "openai" and not s.options.get("model") and s.name not in keep:
            be = get_backend(s.backend, **run_options(cfg, s.backend, s.options))
            s = SystemSpec.of(s.backend, {**s.options, "model": served_model(be)})
        systems.append(s)
    named = cfg.model_copy(update={"systems": systems})
    check_unique_names(named)
    return named


def _unnamed_servers(out: str) -> set[str]:
    """The server systems a run from before served-model naming holds rows under (``openai``,
    no model in its config.yaml): its resume keeps that name, or it could not be continued."""
    p = Path(out) / "config.yaml"
    doc = (yaml.safe_load(p.read_text()) or {}) if p.is_file() else {}
    return {
        s["name"]
        for s in (doc.get("systems") or [])
        if isinstance(s, dict)
        and s.get("backend") == "openai"
        and not (s.get("options") or {}).get("model")
    }


def check_unique_names(cfg: BenchConfig) -> None:
    """Rows are keyed by system name: two systems of one name would write over each other's
    rows (one of them silently lost).  Refused, naming both."""
    seen: dict[str, SystemSpec] = {}
    for s in cfg.systems:
        if s.name in seen:
            where = [str(x.options.get("base_url") or x.options) for x in (seen[s.name], s)]
            raise SovtpError(
                f"two systems are both named {s.name!r} ({where[0]}; {where[1]}): their rows "
                "would merge — run them into separate --out folders"
            )
        seen[s.name] = s


def _manifest_columns(data: str) -> set[str] | None:
    """A manifest file's columns (an evaluator's default split/fold applies only where the
    manifest has that column); None for adapter layouts and HF datasets."""
    p = Path(data)
    if ":" in data.split("/")[0] or not p.is_file():
        return None
    from sovtp.data.manifest import manifest_columns

    return set(manifest_columns(p))


def label_set(cfg: BenchConfig) -> LabelSet:
    if cfg.labels:
        return load_label_set(cfg.labels)
    if cfg.evaluator:
        return load_evaluator(cfg.evaluator).labels()
    return load_label_set(load_spec(cfg.variants[0]).label_set)


def samples(cfg: BenchConfig) -> Iterator[Sample]:
    if (
        cfg.fold is not None
        and cfg.evaluator
        and load_evaluator(cfg.evaluator).deals_folds(cfg.data)
    ):
        src: Iterable[Sample] = _cross_subject_fold(cfg)
    else:
        src = open_dataset(
            cfg.data,
            root=cfg.root,
            split=cfg.split,
            fold=cfg.fold,
            allow_outside_root=cfg.allow_outside_root,
            **cfg.adapter_options,
        )
    return select(src, cfg.limit, cfg.shuffle, cfg.seed)


def _cross_subject_fold(cfg: BenchConfig) -> list[Sample]:
    """``--fold k`` under a cross-subject protocol: whole subjects dealt to folds (seeded, as
    the evaluator declares), the samples of fold k; the manifest is read whole to deal them."""
    ev = load_evaluator(cfg.evaluator)
    every = list(
        open_dataset(
            cfg.data,
            root=cfg.root,
            split=cfg.split,
            allow_outside_root=cfg.allow_outside_root,
            **cfg.adapter_options,
        )
    )
    chosen = ev.cross_subject_split(every, cfg.fold, train=False)
    if not chosen:
        raise SovtpError(
            f"fold {cfg.fold} of {ev.name}'s cross-subject folds has no sample "
            f"(folds: {sorted(set(ev.folds_of(every)))})"
        )
    return chosen


def run_manifest(
    cfg: BenchConfig,
    labels: LabelSet,
    frames: dict[str, list[int]],
    capabilities: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    from sovtp.annotate.mediapipe import DetectorConfig

    specs = [load_spec(v) for v in cfg.variants]
    return {
        "versions": versions(),
        "variants": [sp.id for sp in specs],
        "prompts": {sp.id: {"hash": sp.hash, "template": sp.template} for sp in specs},
        "labels": {"name": labels.name, "labels": labels.labels},
        "detector": DetectorConfig(max_faces=cfg.max_faces, pose=cfg.pose, hands=cfg.hands).key(),
        "sampling": cfg.sampling,
        "seeds": {"shuffle": cfg.seed, "generation": cfg.gen_seed, "bootstrap": 0},
        # what each system could take in (images per prompt, whether it reads the prompt): the
        # report judges which ablation steps a system can test from this record
        "systems": [
            _public(s.model_dump()) | {"capabilities": (capabilities or {}).get(s.name, {})}
            for s in cfg.systems
        ],
        "protocol": {  # the knobs known to move results: recorded with every run
            "output": cfg.output or {sp.id: sp.output for sp in specs},
            "structured": cfg.structured,
            "label_order": cfg.label_order,
            "transcript": cfg.transcript,
            "subject": cfg.subject,
            "au_source": cfg.au_source,
            # under deid, whose faces (blur: all | others) and how they were obscured (mode)
            "deid": {"on": cfg.deid, "blur": cfg.blur, "mode": cfg.deid_mode}
            if cfg.deid
            else False,
            "voice_alpha": cfg.voice_alpha,  # McAdams α of any audio sent (always anonymised)
            "asr": cfg.asr,
            "hands": cfg.hands,
            "tta": tta_protocol(cfg),
        },
        "frames": frames,
    }


def tta_protocol(cfg: BenchConfig) -> dict[str, Any] | bool:
    """How the run's CNN systems adapted on the test stream (False: they did not)."""
    if cfg.tta == "none":
        return False
    return {
        "method": cfg.tta,
        "systems": [s.name for s in cfg.systems if s.backend == "cnn"],
        "order": "sample order (the manifest's, after --limit/--shuffle), one sample per batch",
        "resume": "replays the stream from the first sample (the adapted state is not saved)",
        "before_after": "tta.json",
    }


def check_checkpoints(cfg: BenchConfig) -> None:
    """A ``cnn:CKPT`` system whose checkpoint is not there is a usage error before any sample
    is annotated (not a row of errors per sample after the whole run)."""
    from sovtp.baselines.train import checkpoint_path

    for s in cfg.systems:
        if s.backend == "cnn" and not checkpoint_path(s.options["ckpt"]).is_file():
            raise SovtpError(
                f"system {s.name}: no checkpoint at {checkpoint_path(s.options['ckpt'])} "
                "(cnn:CKPT takes a `sovtp train` output folder, its last/ checkpoint folder or a file in it)"
            )


def check_checkpoint_labels(cfg: BenchConfig, labels: LabelSet) -> None:
    """A ``cnn:CKPT`` trained on labels the run's label set cannot map (by name or synonym) is
    refused before any sample: its answers would be invalid rows, or right answers counted
    wrong.  A class the checkpoint never learnt is said (it can never be answered)."""
    from sovtp.baselines.checkpoint import read_meta

    for s in cfg.systems:
        if s.backend != "cnn":
            continue
        theirs = list(read_meta(s.options["ckpt"]).get("labels") or [])
        foreign = [lab for lab in theirs if labels.normalize(lab) is None]
        if foreign:
            raise SovtpError(
                f"system {s.name}: the checkpoint was trained on labels {', '.join(foreign)} "
                f"that the label set {labels.name!r} ({', '.join(labels.labels)}) cannot map; "
                "bench it with its own label set (--labels) or train it on this one"
            )
        missing = set(labels.labels) - {labels.normalize(lab) for lab in theirs}
        if missing:
            log.warning(
                "system %s never learnt %s: it cannot answer them",
                s.name,
                ", ".join(sorted(missing)),
            )


def check_tta(cfg: BenchConfig) -> None:
    """``--tta`` needs a CNN system to adapt and the local engine (its one process answers the
    adapting systems in sample order; Ray's actors would each adapt a copy on part of the
    stream)."""
    if cfg.tta == "none":
        return
    if not any(s.backend == "cnn" for s in cfg.systems):
        raise SovtpError(f"--tta {cfg.tta} adapts cnn:CKPT systems; this run has none")
    if cfg.engine != "local":
        raise SovtpError(
            f"--tta {cfg.tta} adapts on the stream in sample order: use --engine local"
        )


def _public(system: dict[str, Any]) -> dict[str, Any]:
    """A system as written to a run folder: never its API key, never credentials in a URL."""
    from sovtp.redact import redact

    system["options"] = {k: v for k, v in system["options"].items() if k != "api_key"}
    return redact(system)


def count(cfg: BenchConfig) -> int | None:
    """How many rows the run will hold (a cheap pass over the label files, for the progress bar);
    None for HF datasets, whose pass would fetch the media."""
    if cfg.data.startswith("hf:"):
        return None
    n = sum(1 + max(0, len(s.face_labels) - 1) for s in samples(cfg))
    return n * len(cfg.systems) * len(cfg.variants)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, after the run folder was closed cleanly and its report written: says
    how many rows are on disk and how to go on.  A KeyboardInterrupt, so code that does not know
    it still stops."""

    def __init__(self, run: Path, stats: Stats):
        self.run, self.stats = run, stats
        super().__init__(
            f"interrupted: {stats.rows} rows are written in {run} ({stats.errors} errors); run "
            "the same command with --resume to finish it"
        )


def exit_code(stats: Stats) -> int:
    """``sovtp bench``'s exit status (:mod:`sovtp.engine.outcome`): 0 every row a valid answer,
    3 some rows are errors or invalid answers, 4 no valid answer, 130 interrupted (2, usage and
    input errors, is the CLI's)."""
    from sovtp.engine.outcome import Outcome

    return Outcome(stats.rows, stats.errors, stats.invalid, stats.interrupted).exit_code


def run_bench(
    cfg: BenchConfig,
    resume: bool = False,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    report: bool = True,
    retry_errors: str | None = None,
) -> tuple[Path, Stats]:
    """Run (or resume) a benchmark; returns the run folder and its counters (``Stats.rows``,
    ``errors``, ``answered`` count the folder's rows at the end: see :func:`exit_code`).

    The folder is locked for the run.  A resume must keep everything that changes answers (see
    :func:`~sovtp.engine.config.run_identity`) and asks error rows again (transient ones, or all
    with ``retry_errors="all"``; default ``cfg.retry_errors``).  On Ctrl-C the rows so far are kept, the report is written
    from them, and :class:`RunInterrupted` is raised."""
    from sovtp.engine.config import run_identity
    from sovtp.engine.folder import identity_hash

    cfg = name_served_models(resolve(cfg), keep=_unnamed_servers(cfg.out) if resume else set())
    check_tta(cfg)
    check_checkpoints(cfg)
    labels = label_set(cfg)
    check_checkpoint_labels(cfg, labels)
    if not cfg.data.startswith("hf:"):  # gold outside the label set: refused, listed
        from sovtp.data.manifest import check_gold

        check_gold(samples(cfg), labels)
    store = RunStore(cfg.out)
    store.lock()
    ctx: Context | None = None
    try:
        if cfg.engine == "local":
            ctx = Context(cfg, labels, gallery_dir=store.root / "gallery")
            models = {n: b.model for n, b in ctx.backends.items()}
        elif cfg.engine == "ray":
            models = {}
        else:
            raise ValueError(f"engine must be local or ray, not {cfg.engine!r}")
        identity = run_identity(cfg, labels, models)
        done = store.open(resume, retry_errors or cfg.retry_errors, identity)
        if ctx is not None:
            ctx.gallery_samples = store.gallery_samples()
        stats, frames = _run(cfg, labels, store, ctx, done, identity, on_row)
    except BaseException:
        store.close()
        raise
    finally:
        if ctx is not None:
            ctx.close()
    try:
        caps = {n: asdict(b.capabilities) for n, b in ctx.backends.items()} if ctx else None
        store.write_json(
            "manifest.json",
            run_manifest(cfg, labels, frames, caps)
            | {"identity": identity, "config_hash": identity_hash(identity)},
        )
        if ctx is not None and (tta := ctx.tta_results()):
            store.write_json("tta.json", {"complete": not stats.interrupted, "results": tta})
        c = store.counts()
        stats.rows, stats.errors = c["rows"], c["errors"]
        stats.transient_errors, stats.answered = c["transient_errors"], c["rows"] - c["errors"]
        stats.invalid = c["invalid"]
        if cfg.evaluator and load_evaluator(cfg.evaluator).judge.enabled and stats.rows:
            write_reasoning(store.root)
        if report and stats.rows:
            from sovtp.report.build import write_report

            write_report(store.root)
    finally:
        store.close()
    if stats.interrupted:
        raise RunInterrupted(store.root, stats)
    return store.root, stats


def _run(
    cfg: BenchConfig,
    labels: LabelSet,
    store: RunStore,
    ctx: Context | None,
    done: set[str],
    identity: dict[str, Any],
    on_row: Callable[[dict[str, Any]], None] | None,
) -> tuple[Stats, dict[str, list[int]]]:
    """The engine over the samples still to do, rows written as they come; Ctrl-C ends it with
    the rows so far kept (``Stats.interrupted``)."""
    from sovtp.engine.folder import identity_hash

    safe = cfg.model_dump()
    safe["systems"] = [_public(s) for s in safe["systems"]]  # never a secret in a run folder
    (store.root / "config.yaml").write_text(yaml.safe_dump(safe, sort_keys=False))
    mpath = store.root / "manifest.json"
    old = json.loads(mpath.read_text()).get("frames", {}) if mpath.exists() else {}
    frames: dict[str, list[int]] = dict(old)
    store.write_json(
        "manifest.json",
        run_manifest(cfg, labels, frames)
        | {"identity": identity, "config_hash": identity_hash(identity)},
    )

    def write(resp: dict[str, Any], row: dict[str, Any], gallery: dict[str, Any] | None) -> None:
        store.write_row(resp, row)
        if gallery:
            store.append(store.gallery, gallery)
        if "frames" in row:
            frames[row["sample_id"]] = row["frames"]
        if on_row:
            on_row(row)

    stats = Stats()
    try:
        if ctx is None:
            from sovtp.engine.ray import run_ray

            gallery = store.root / "gallery"
            stats = run_ray(
                cfg, labels, samples(cfg), done, write, gallery, None, store.gallery_samples()
            )
        else:
            stats = ctx.stats
            run_local(samples(cfg), ctx, done, lambda it, r, p: write(*rows_of(it, r, p)))
    except KeyboardInterrupt:
        stats.interrupted = True
        log.warning("interrupted: closing %s", store.root)
    stats.retried = store.retried
    return stats, frames


def write_reasoning(
    run: Path, method: str = "offline", backend=None, **judge: Any
) -> dict[str, Any]:
    """Reasoning scores of a run's rationales against the samples' reference descriptions,
    written to ``reasoning.json`` (the report shows them and names the method)."""
    from sovtp.scoring.reasoning import score_rows

    prompts, scale = None, 10
    cfg = yaml.safe_load((run / "config.yaml").read_text()) or {}
    if cfg.get("evaluator"):
        j = load_evaluator(cfg["evaluator"]).judge
        prompts, scale = j.prompts, j.scale
    res = score_rows(load_rows(run), method, backend, prompts, scale, **judge)  # repeats=...
    (run / "reasoning.json").write_text(json.dumps(res, indent=1))
    return res


def load_rows(run: str | Path) -> list[dict[str, Any]]:
    """A run's prediction rows, one per key (the latest)."""
    return latest_rows(Path(run) / "predictions.jsonl")
