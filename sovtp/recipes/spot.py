"""``sovtp spot``: spot micro-expressions in every long video of a dataset, into a run folder.

One row per (video, system) — the unit MEGC scores (TP/FP/FN summed over videos), so a video is
one sample here, not one per interval as in recognition benchmarks.  Two kinds of system:

- ``flow`` — the optical-flow baseline (:mod:`sovtp.spotting.flow`): MediaPipe landmarks on a
  sparse sampling (``sampling``, any rate: they are interpolated), then every frame of the video
  streamed through the flow spotter.  It gives intervals without labels, so its recognition F1
  and STRS are 0 by construction (reported, not hidden).
- a prompt spec ID (``spotting/when``) — a vision LLM asked "which of these frames hold an
  expression".  A long video is cut into windows of ``window_s`` seconds; each window's
  ``images`` frames (evenly spread, first and last included) go through the one prepare pipeline
  (:class:`~sovtp.prepare.Preparer`) and the backend; each answer is parsed by
  :func:`~sovtp.spotting.parse.parse_when`, mapped back to the video's frames and the windows'
  intervals are joined (one that runs to a window's last frame and one that starts on the next
  window's first frame, same label, are one movement).  The answer's JSON schema
  (:func:`~sovtp.spotting.parse.when_schema`) is sent as the structured-output constraint to an
  OpenAI-compatible server.

Ground truth is read from the dataset (:func:`~sovtp.data.me_adapters.gold_spans`: the ME
adapters' ``meta["intervals"]``, or manifest rows with ``onset``/``apex``/``offset`` columns,
grouped into videos by :func:`~sovtp.data.me_adapters.video_samples`).  The folder is a bench-like run (``config.yaml``,
``manifest.json``, ``responses.jsonl``, ``predictions.jsonl`` resumable by key, ``gold.jsonl``
for ``sovtp score --task intervals``, and the report, which follows the evaluator's declared task).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sovtp.engine.store import RunStore
from sovtp.errors import SovtpError
from sovtp.spotting.flow import FlowConfig
from sovtp.spotting.parse import Interval
from sovtp.spotting.windows import join_windows, windows

if TYPE_CHECKING:
    from sovtp.backends.base import Backend

log = logging.getLogger(__name__)

KINDS = ("micro", "macro", "all")


@dataclass
class SpotOptions:
    """Everything a spotting run depends on (written to ``config.yaml``, minus secrets)."""

    data: str
    out: Path
    system: str = "flow"  # "flow" or a prompt spec ID (spotting/when)
    evaluator: str = "casme2_spot"
    labels: str | None = None  # default: the evaluator's label set
    kind: str = "micro"  # which ground truth: micro | macro | all
    root: Path | None = None
    split: str | None = None
    fold: int | None = None
    limit: int | None = None
    adapter_options: dict[str, Any] = field(default_factory=dict)
    fps: float | None = None  # override the dataset's frame rate
    resume: bool = False
    retry_errors: str = "transient"
    max_faces: int = 1
    annotation_cache: bool = True
    n_boot: int = 1000
    # the flow system
    flow: FlowConfig = field(default_factory=FlowConfig)
    sampling: str = "fps:5"  # frames annotated for the flow spotter's landmarks
    # an LLM system
    backend: str | None = None
    backend_options: dict[str, Any] = field(default_factory=dict)
    window_s: float = 2.0  # seconds per query; 0: the whole video in one query
    images: int | None = None  # images per query; default: the spec's max_images
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int = 0
    structured: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SovtpError(f"--kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.window_s < 0:
            raise SovtpError("--window must be >= 0 seconds")
        from sovtp.media.sampling import Sampling

        Sampling.parse(self.sampling)  # before any work: the run reads it after claiming a folder

    @property
    def is_flow(self) -> bool:
        return self.system == "flow"

    def public(self) -> dict[str, Any]:
        """The configuration as written to ``config.yaml`` (no API key, no credentials)."""
        from sovtp.redact import redact

        d = asdict(self)
        d["out"] = str(self.out)
        d["root"] = str(self.root) if self.root else None
        opts = {k: v for k, v in self.backend_options.items() if k != "api_key"}
        d["backend_options"] = redact(opts)
        return d


# --------------------------------------------------------------------------------- samples


def sample_fps(sample: Any, override: float | None = None) -> float:
    """The video's frame rate: the override, the dataset's (``meta["fps"]``), else the file's."""
    if override:
        return float(override)
    fps = (sample.meta or {}).get("fps")
    if fps:
        return float(fps)
    from sovtp.media.video import probe

    got = probe(sample.media).fps
    if not got:
        raise SovtpError(f"{sample.media}: no frame rate known; pass --fps")
    return float(got)


# --------------------------------------------------------------------------------- systems


@dataclass
class Spotted:
    """One video's answer: intervals in the video's frames and the record of how."""

    intervals: list[Interval]
    parse_status: str = "ok"
    system: str = ""
    variant: str = ""
    record: dict[str, Any] = field(default_factory=dict)  # what responses.jsonl keeps
    error: str | None = None
    transient: bool = False


def spot_flow(sample: Any, prep: Any, fps: float, opts: SpotOptions) -> Spotted:
    """The optical-flow baseline on one video."""
    from sovtp.spotting.flow import spot_media, stream_landmarks

    # streamed: no decoded frame is kept, so memory does not grow with the video's length
    clip = stream_landmarks(sample.media, opts.sampling, prep.detector, opts.annotation_cache)
    res = spot_media(sample.media, clip, fps, opts.flow)
    rec = res.to_dict()
    rec["annotated_frames"] = [fa.index for fa in clip.frames]
    return Spotted(list(res.intervals), "ok", "flow", opts.flow.method, rec)


WINDOW_BATCH = 32  # "when" windows queried at once (a batch's requests run concurrently)


def spot_llm(
    sample: Any, prep: Any, spec: Any, backend: Backend, fps: float, labels: Any, opts: SpotOptions
) -> Spotted:
    """The "when" query on one video, window by window."""
    from sovtp.backends.base import GenerationConfig, is_transient
    from sovtp.media.video import probe
    from sovtp.spotting.parse import parse_when, to_frames, when_schema

    n_images = opts.images or spec.max_images or 16
    n_frames = probe(sample.media).n_frames
    plan = windows(n_frames, fps, opts.window_s, n_images)
    cfg = GenerationConfig(
        max_tokens=opts.max_tokens,
        temperature=opts.temperature,
        seed=opts.seed,
        structured=opts.structured,
    )
    shown: list[list[int]] = []
    responses: list[Any] = []
    # windows go out WINDOW_BATCH at a time: the queries (their images inlined) and their
    # decoded frames are dropped before the next batch, so memory does not grow with the video
    for b0 in range(0, len(plan), WINDOW_BATCH):
        queries = []
        for k, idx in enumerate(plan[b0 : b0 + WINDOW_BATCH], b0):
            clip, frames = prep.annotate(sample.media, "indices:" + ",".join(map(str, idx)))
            q, _ = prep.query(
                clip,
                frames,
                spec,
                labels=labels,
                subject="largest",
                sample_key=sample.id,
                query_id=f"{sample.id}:{spec.id}:w{k}",
                max_images=n_images,
            )
            q.meta["json_schema"] = when_schema(q.labels)
            queries.append(q)
            shown.append([im.frame_index for im in q.images])
        responses += backend.generate(queries, cfg)
    parts, statuses, recs, errors = [], [], [], []
    for fi, resp in zip(shown, responses, strict=True):
        rec: dict[str, Any] = {
            "frames": fi,
            "answer": resp.text,
            "latency_s": resp.latency_s,
            "finish_reason": resp.finish_reason,
        }
        if resp.error:
            rec["error"] = resp.error
            errors.append(resp.error)
            statuses.append("invalid")
            parts.append([])
        else:
            ans = parse_when(resp.text, len(fi), labels)
            rec.update(parse_status=ans.status, intervals=ans.intervals, note=ans.note)
            statuses.append(ans.status)
            parts.append(to_frames(ans.intervals, fi) if fi else [])
        recs.append(rec)
    bounds = [(idx[0], idx[-1]) for idx in plan]
    status = (
        "invalid"
        if all(s == "invalid" for s in statuses)
        else "ok"
        if all(s == "ok" for s in statuses)
        else "repaired"
    )
    err = "; ".join(dict.fromkeys(errors)) or None
    return Spotted(
        join_windows(parts, bounds),
        status,
        _system_name(opts, backend),  # the model asked up front: one name for every row
        spec.id,
        {"windows": recs, "n_frames": n_frames, "images_per_window": n_images},
        err,
        bool(errors) and all(is_transient(e) for e in errors),
    )


# ------------------------------------------------------------------------------------ run


@dataclass
class SpotRun:
    """What a run did: rows written now, rows skipped (done before), errors, the report."""

    out: Path
    written: int = 0
    skipped: int = 0
    errors: int = 0
    report: dict[str, Any] | None = None


# settings that change how a run goes, not what it answers: a resume may change them
RESUME_FREE = {"resume", "retry_errors", "n_boot", "out", "limit", "annotation_cache"}
RESUME_FREE_BACKEND = {"timeout_s", "max_retries", "concurrency"}


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def spot_identity(public: dict[str, Any]) -> dict[str, Any]:
    """What a spotting run measured: every setting but those that change only how it goes
    (``RESUME_FREE``) — the identity :meth:`~sovtp.engine.folder.RunFolder.claim` checks on
    ``--resume``, naming each change."""
    skip = RESUME_FREE | {f"backend_options.{k}" for k in RESUME_FREE_BACKEND}
    flat = _flat(json.loads(json.dumps(public, default=str)))
    return {"settings": {k: v for k, v in sorted(flat.items()) if k not in skip}}


class SpotStore(RunStore):
    """The spot run folder: a row store of kind ``spot``; a folder from before ``run.json`` kept
    its identity as ``config.yaml``."""

    def __init__(self, root: str | Path):
        super().__init__(root, kind="spot")

    def legacy_identity(self) -> dict[str, Any] | None:
        import yaml

        p = self.root / "config.yaml"
        return spot_identity(yaml.safe_load(p.read_text()) or {}) if p.exists() else None


def _key(sample_id: str, opts: SpotOptions) -> str:
    sysname = "flow" if opts.is_flow else f"{opts.backend}:{opts.backend_options.get('model', '')}"
    return f"{sample_id}|{sysname}|{opts.system}"


def run_spot(
    opts: SpotOptions, progress: Callable[[str], None] | None = None, detector: Any = None
) -> SpotRun:
    """Spot in every video of ``opts.data`` into ``opts.out`` (resumable); then the report.
    ``detector``: an open MediaPipe annotator to share (else the run opens its own)."""
    import yaml

    from sovtp.data.me_adapters import gold_spans, video_samples
    from sovtp.data.sources import open_dataset, select
    from sovtp.evaluator import load_evaluator
    from sovtp.prepare import PrepareOptions, Preparer

    ev = load_evaluator(opts.evaluator)
    if ev.task != "intervals":
        raise SovtpError(f"evaluator {ev.name!r} declares task {ev.task!r}, not intervals")
    ls = ev.labels() if opts.labels is None else _label_set(opts.labels)
    spec = backend = None
    if not opts.is_flow:
        from sovtp.prompting.spec import load_spec

        spec = load_spec(opts.system)
        if opts.backend in (None, "facs"):
            raise SovtpError(
                f"--system {opts.system} needs a vision LLM: --base-url URL (an OpenAI-compatible "
                "or vLLM server) or --hf MODEL; the offline FACS reasoner cannot answer 'when'"
            )
        from sovtp.backends.base import get_backend, served_model

        # each query carries the "when" schema (meta json_schema), which every backend sends as
        # its structured-output constraint (sovtp.backends.base.query_constraint)
        backend = get_backend(opts.backend, **opts.backend_options)
        if backend.capabilities.images_per_prompt == 0:
            raise SovtpError(
                f"--system {opts.system} needs a vision LLM: {backend.model} reads text only, and "
                "the 'when' prompt asks about numbered frames it would never see"
            )
        served_model(backend)  # named once, before any row
    split = opts.split if opts.split is not None else ev.split
    src = open_dataset(
        opts.data,
        root=opts.root,
        split=split,
        fold=opts.fold,
        **(opts.adapter_options or ev.options),
    )
    videos = list(select(video_samples(src), opts.limit))
    from sovtp.spotting.gold import check_gold

    check_gold(videos)  # an impossible interval is a data error, refused before any work
    out = Path(opts.out)
    store = SpotStore(out)
    done = store.open(
        opts.resume, opts.retry_errors, spot_identity(opts.public() | {"evaluator": ev.name})
    )
    run = SpotRun(out)
    kind = None if opts.kind == "all" else opts.kind
    fps_of: dict[str, float] = {}
    try:
        (out / "config.yaml").write_text(
            yaml.safe_dump(opts.public() | {"evaluator": ev.name}, sort_keys=False)
        )
        gold_rows = []
        prep_opts = PrepareOptions(
            sampling=opts.sampling,
            max_faces=opts.max_faces,
            pose=False,
            annotation_cache=opts.annotation_cache,
            output=None,
            seed=opts.seed,
        )
        with Preparer(prep_opts, detector=detector) as prep:
            for s in videos:
                gold = [list(g) for g in gold_spans(s, kind, labels=ls)]
                gold_rows.append({"video": s.id, "intervals": gold})
                key = _key(s.id, opts)
                if key in done:
                    run.skipped += 1
                    continue
                t0 = time.perf_counter()
                try:
                    if s.error:
                        raise SovtpError(s.error)
                    fps = fps_of[s.id] = sample_fps(s, opts.fps)
                    got = (
                        spot_flow(s, prep, fps, opts)
                        if opts.is_flow
                        else spot_llm(s, prep, spec, backend, fps, ls, opts)
                    )
                except Exception as e:  # a failure is a row: the run goes on
                    log.warning("%s: %s", s.id, e)
                    got = Spotted(
                        [],
                        "invalid",
                        _system_name(opts, backend),
                        _variant(opts),
                        {},
                        f"{type(e).__name__}: {e}",
                    )
                row = {
                    **_facts(s),
                    "key": key,
                    "system": got.system,
                    "variant": got.variant,
                    "intervals": [list(iv) for iv in got.intervals],
                    "gold_intervals": gold,
                    "parse_status": got.parse_status,
                    "fps": fps_of.get(s.id),
                    "kind": opts.kind,
                    "error": got.error,
                    "transient": got.transient,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
                store.write_row({"key": key, "sample_id": s.id, **got.record}, row)
                run.written += 1
                run.errors += bool(got.error)
                if progress:
                    progress(s.id)
        _write_jsonl(out / "gold.jsonl", gold_rows)
        store.write_json("manifest.json", _manifest(opts, ev, ls, spec, fps_of, videos))
    finally:
        store.close()
    from sovtp.report.build import write_report

    run.report = write_report(out, opts.n_boot)
    return run


def _label_set(name: str):
    from sovtp.labels import load_label_set

    return load_label_set(name)


def _system_name(opts: SpotOptions, backend: Backend | None) -> str:
    """``flow``, or the backend named as ``sovtp query`` and ``bench`` name it."""
    from sovtp.systems import system_name

    if opts.is_flow or backend is None:
        return "flow"
    return system_name(backend.name, backend.model)


def _variant(opts: SpotOptions) -> str:
    return opts.flow.method if opts.is_flow else opts.system


def _facts(s: Any) -> dict[str, Any]:
    """What a row carries about its video (no intervals twice: ``meta`` minus ``intervals``)."""
    d: dict[str, Any] = {"sample_id": s.id}
    for k in ("split", "fold", "subject"):
        v = getattr(s, k)
        if v is not None:
            d[k] = v
    meta = {k: v for k, v in (s.meta or {}).items() if k != "intervals"}
    if meta:
        d["meta"] = meta
    return d


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    from sovtp.engine.folder import atomic_write

    atomic_write(path, "".join(json.dumps(r) + "\n" for r in rows))


def _manifest(opts, ev, ls, spec, fps_of, videos) -> dict[str, Any]:
    from sovtp.engine.folder import versions

    m: dict[str, Any] = {
        "versions": versions(),
        "task": "intervals",
        "evaluator": ev.name,
        "labels": {"name": ls.name, "labels": list(ls.labels)},
        "kind": opts.kind,
        "videos": [s.id for s in videos],
        "fps": fps_of,
        "system": opts.system,
        "variants": [_variant(opts)],
    }
    if opts.is_flow:
        m["flow"] = opts.flow.key()
        m["sampling"] = opts.sampling
    else:
        m["prompts"] = {spec.id: {"hash": spec.hash, "template": spec.template}}
        m["window_s"] = opts.window_s
    return m
