"""systems × prompt variants × samples → rows in a run folder, streamed.

Each sample is decoded and annotated **once**; every variant's query is built from that one
annotation (marks drawn once per distinct visual spec, see ``ImageCache``) and every system
answers the same queries.

Samples stream through two stages that overlap:

1. **prepare** (CPU): a pool of ``workers`` processes (default: one per core), each with its own
   MediaPipe landmarkers, annotates a sample and builds its queries.  The annotation cache is
   files written by atomic rename, so the processes share it safely.
2. **answer** (I/O): each query joins its system's bounded queue — for a server, each
   endpoint's concurrency limit (see ``OpenAIBackend.session``) — the moment its sample is
   prepared.  A slow or hung request holds one slot until its deadline, never a batch: there
   are no chunks that wait for their slowest member.

Back-pressure keeps memory flat: at most ``2 × workers`` samples are being prepared or waiting,
and at most ``pending`` queries are queued or on the wire.

Every answer is written (and flushed) the moment it arrives, so ``kill -9`` loses only the
requests in flight; ``--resume`` skips the keys already in ``predictions.jsonl``.  A sample that
fails (unreadable media, no such face) gets rows with its error, and the run goes on.

``--tta`` (test-time adaptation of the ``cnn:CKPT`` systems) is stateful: the workers only cut
the face crops, and this process answers the adapting systems through :class:`InOrder`, in the
order the samples were read, while annotation and the other systems stay parallel.  The adapted
state is not saved, so ``--resume`` replays those systems from the first sample
(:meth:`Context.needed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sovtp.backends.base import Backend, GenerationConfig, get_backend, is_transient
from sovtp.backends.cache import ResponseCache, is_deterministic, request_key
from sovtp.data.sample import ManifestError, Sample, sampling_for
from sovtp.engine.config import BenchConfig
from sovtp.labels import LabelSet
from sovtp.prompting.build import ImageCache
from sovtp.prompting.spec import PromptSpec, load_spec
from sovtp.records import Prediction, Query, Response
from sovtp.scoring.parse import predict

log = logging.getLogger(__name__)
Ask = Callable[[Query], Awaitable[Response]]
Emit = Callable[["Item", Response, Prediction], None]


def row_key(sample_id: str, face: int | None, system: str, variant: str) -> str:
    return f"{sample_id}|{'' if face is None else face}|{system}|{variant}"


@dataclass
class Item:
    """One query to answer: a (sample, face, system, variant) key."""

    key: str
    sample: Sample
    face: int | None
    system: str
    variant: str  # the prompt spec's ID
    gold: str | None
    facts: dict[str, Any]
    query: Query | None = None
    error: str | None = None
    gallery_image: str | None = None
    response: Response | None = None  # answered while prepared (a trained predictor)
    crops: Any = None  # a TTA system's face crops, answered later in sample order (main process)


@dataclass
class Stats:
    """What a run did: this process's work (the benchmarks count annotation passes with it) and
    the run folder's rows once it ends (what ``sovtp bench`` turns into its exit code)."""

    samples: int = 0  # samples with rows still to write
    skipped: int = 0  # samples whose rows were all written before (--resume)
    annotations: int = 0  # clips annotated (detector ran or cache hit)
    detector_calls: int = 0  # frames through the detectors
    retried: int = 0  # error rows of an earlier run asked again (--resume)
    rows: int = 0  # rows in the run folder at the end (one per key, the latest)
    errors: int = 0  # of which errors
    transient_errors: int = 0  # of which worth asking again (timeouts, 5xx, 429, ...)
    answered: int = 0  # rows with an answer (rows - errors)
    invalid: int = 0  # of the answered, those the parser could not read (not valid answers)
    interrupted: bool = False


@dataclass
class Prepared:
    """What preparing one sample gives back (from a worker process)."""

    items: list[Item]
    annotated: bool  # the clip went through annotation (detectors or the cache)
    detector_calls: int


class Preparer:
    """The CPU half, one per process: samples → items with their queries built.  Owns its
    MediaPipe landmarkers (they are not shared across processes)."""

    def __init__(
        self,
        cfg: BenchConfig,
        labels: LabelSet,
        budgets: dict[str, int],
        gallery_dir: Path | None = None,
    ):
        from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
        from sovtp.prepare import Preparer as Pipeline

        self.cfg = cfg
        self.labels = labels
        self.budgets = budgets
        self.gallery_dir = gallery_dir
        # by spec ID (cfg.variants may name a spec by ID or by YAML path, as grids do)
        self.specs: dict[str, PromptSpec] = {sp.id: sp for sp in map(load_spec, cfg.variants)}
        self.detector = MediaPipeAnnotator(
            DetectorConfig(max_faces=cfg.max_faces, pose=cfg.pose, hands=cfg.hands)
        )
        self.detector.__enter__()
        # the one prepare pipeline (the same chain as `sovtp query`), on this process's detector
        self.pipeline = Pipeline(prepare_options(cfg), detector=self.detector)
        # cnn:CKPT systems: answered here, or (under --tta) only cropped here and answered by
        # the parent in sample order (see Context.tta)
        self.predictors = {
            s.name: TrainedPredictor(s.options["ckpt"]) for s in cfg.systems if s.backend == "cnn"
        }
        self.tta = cfg.tta != "none"

    def close(self) -> None:
        self.pipeline.close()
        self.detector.close()

    def prepare(self, sample: Sample, items: list[Item], gallery: bool) -> Prepared:
        """Annotate once, build every item's query.  A failure becomes the items' error (one bad
        sample never stops a run)."""
        before = self.detector.calls
        annotated = False
        try:
            annotated = self._build(sample, items, gallery)
        except Exception as e:
            msg = f"{type(e).__name__}: {e}"
            log.warning("sample %s failed: %s", sample.id, msg)
            for it in items:
                it.error = it.error or msg
        return Prepared(items, annotated, self.detector.calls - before)

    def _build(self, sample: Sample, items: list[Item], gallery: bool) -> bool:
        if sample.error:  # refused when read (a path leaving the dataset root, ...)
            raise ManifestError(sample.error)
        clip, frames = self.pipeline.annotate(
            sample.media,
            sampling_for(sample, self.cfg.sampling),
            audio=sample.audio,
            sample=sample,  # its physio recording (a manifest column), worded as cues
            root=data_root(self.cfg),
        )
        n_faces = len(clip.track_ids)
        indices = [fa.index for fa in clip.frames]
        if self.cfg.subject == "all" and not sample.face_labels:
            items[:] = expand_faces(items, clip.track_ids)
        icache = ImageCache()
        built: dict[tuple, Query] = {}
        names = speaker_names(sample)
        for it in items:
            it.facts |= {"n_faces": n_faces, "frames": indices}
            if it.error:
                continue
            if it.system in self.predictors:
                pr = self.predictors[it.system]
                if self.tta:  # stateful: the parent answers in sample order
                    it.crops = pr.crops(clip, frames, it.face)
                else:
                    it.response = pr.respond(it.key, clip, frames, it.face)
                continue
            # a gallery sample is drawn in full for the report; otherwise the backend's budget
            budget = None if gallery else self.budgets[it.system]
            bkey = (it.face, it.variant, budget)
            try:
                if bkey not in built:
                    q, images = self.pipeline.query(
                        clip,
                        frames,
                        self.specs[it.variant],
                        labels=self.labels,
                        subject=it.face if it.face is not None else self.cfg.subject,
                        transcript=sample.transcript,
                        sample_key=sample.id,
                        query_id=f"{sample.id}|{it.face or ''}|{it.variant}",
                        max_images=budget,
                        image_cache=icache,
                        names=names,
                    )
                    built[bkey] = q
                    if gallery and images and self.gallery_dir is not None:
                        tag = f"{sample.id}|{it.face}|{it.variant}".encode()
                        name = hashlib.sha256(tag).hexdigest()[:16] + ".jpg"
                        (self.gallery_dir / name).write_bytes(images[0].jpeg)
                        for other in items:
                            if (other.face, other.variant) == (it.face, it.variant):
                                other.gallery_image = f"gallery/{name}"
                it.query = built[bkey]
                it.facts["subject"] = it.query.subject  # the face asked about, in every row
            except Exception as e:
                it.error = f"{type(e).__name__}: {e}"
        return True


def predictor_variant(ckpt: str, tta: str = "none") -> str:
    """A trained predictor's variant: its checkpoint folder's name (no torch needed), and
    ``+tta=<method>`` when it adapts on the test stream (as :class:`~sovtp.baselines.tta.
    TtaPredictor` names it)."""
    from sovtp.baselines.checkpoint import variant_name  # reads nothing, imports no torch

    name = variant_name(ckpt)
    return name if tta == "none" else f"{name}+tta={tta}"


class TrainedPredictor:
    """A CNN baseline as a system of a run: the subject's aligned face crops, cut from the very
    annotation the prompts use, through :func:`sovtp.baselines.predict.crops_prediction` (the
    one crop → logits → Prediction path of every CNN system).  Its answer is a Response like a
    backend's (label, confidence, scores as JSON), so rows, CIs, McNemar and the report treat
    it like any other system.  The model loads on first use (torch is imported only by runs
    that have a CNN).

    With ``tta`` (``bn``, ``tent``, ``fisher:K``) it adapts online across the samples it answers
    and records the un-adapted logits beside (:class:`sovtp.baselines.tta.StreamRecord`):
    stateful, so only the run's parent process answers with it, in sample order."""

    def __init__(self, ckpt: str, tta: str = "none"):
        self.ckpt = ckpt
        self.tta = tta
        self._loaded: Any = None
        self.stream: Any = None  # the StreamRecord under TTA

    @property
    def loaded(self) -> Any:
        if self._loaded is None:
            from sovtp.baselines.predict import load

            self._loaded = load(self.ckpt)
            if self.tta != "none":
                from sovtp.baselines.tta import StreamRecord

                self.stream = StreamRecord(self._loaded, self.tta)
        return self._loaded

    def crops(self, clip, frames, face: int | None) -> Any:
        """The subject's face crops (N, S, S, 3) uint8 at the model's size."""
        from sovtp.baselines.data import clip_crops

        return clip_crops(clip, frames, self.loaded.size, subject=face)

    def respond(self, key: str, clip, frames, face: int | None) -> Response:
        return self.respond_crops(key, self.crops(clip, frames, face))

    def respond_crops(
        self, key: str, crops: Any, gold: str | None = None, sample_id: str = ""
    ) -> Response:
        """One clip's crops → its answer.  Under TTA this adapts the model (the next call sees
        the change) and records the sample with its ``gold`` for the before/after scores."""
        import time

        from sovtp.baselines.predict import crops_prediction

        t0 = time.perf_counter()
        m = self.loaded
        step = None
        if self.stream is not None:
            rec = self.stream

            def step(x: Any) -> Any:
                return rec.step(x, gold, sample_id)

        p = crops_prediction(m, crops, key, gold, "", logits_of=step)
        if p.error or p.scores is None or p.label is None:
            return Response(query_id=key, backend="cnn", model=m.name, error=p.error or "no label")
        scores = {lab: round(v, 6) for lab, v in p.scores.items()}
        text = json.dumps({"label": p.label, "confidence": scores[p.label], "scores": scores})
        return Response(
            query_id=key,
            backend="cnn",
            model=m.name,
            text=text,
            latency_s=time.perf_counter() - t0,
            finish_reason="stop",
        )


class InOrder:
    """Releases each sample's stateful (TTA) items in the order the samples were read, whatever
    order the preparation pool finishes them in: sample ``n`` waits until ``0 … n-1`` passed.

    Why a reorder buffer and not a sequential run: the pool keeps annotating (the slow part) in
    parallel and the vision-LLM systems keep streaming; only the cheap CNN step waits for its
    turn.  ``done`` (a sample's back-pressure slot) is called when the sample passes, so held
    samples count against the run's read-ahead and memory stays bounded."""

    def __init__(self, release: Callable[[Item], None]):
        self.release = release
        self.next = 0
        self.waiting: dict[int, tuple[list[Item], Callable[[], None]]] = {}

    def put(self, n: int, items: list[Item], done: Callable[[], None] = lambda: None) -> None:
        self.waiting[n] = (items, done)
        while self.next in self.waiting:
            its, cb = self.waiting.pop(self.next)
            self.next += 1
            try:
                for it in its:
                    self.release(it)
            finally:
                cb()


def speaker_names(sample: Sample) -> tuple[str, ...]:
    """The people a sample's manifest names (its ``speaker`` column; several split on ``;``,
    ``,`` or ``|``): scrubbed from the transcript under ``--deid`` beside the rules."""
    import re

    v = (sample.meta or {}).get("speaker")
    if not isinstance(v, str):
        return ()
    return tuple(n.strip() for n in re.split(r"[;,|]", v) if n.strip())


def data_root(cfg: BenchConfig) -> Path | None:
    """Where a sample's relative side files (a ``physio`` CSV) live: ``--root``, else the
    manifest's folder (adapters give absolute paths)."""
    if cfg.root:
        return Path(cfg.root)
    p = Path(str(cfg.data or ""))
    return p.parent if p.suffix.lower() in (".csv", ".jsonl", ".json", ".tsv") else None


def prepare_options(cfg: BenchConfig):
    """The prepare pipeline's options from a run's config: its prepare knobs as they are (one
    declaration, sovtp.prepare.PrepareSettings) and what leaves for a model recorded in the run
    folder — with or without de-identification, so that ``sovtp audit RUN`` checks every image
    a raw run sent too (it audited the gallery's first samples only)."""
    from sovtp.prepare import PrepareOptions

    return PrepareOptions(**cfg.settings(), outgoing=Path(cfg.out) / "outgoing")


def expand_faces(items: list[Item], track_ids: list[int]) -> list[Item]:
    """``--subject all``: each placeholder item (face ``None``) becomes one item per face ID
    found in the clip, keyed by that face (a clip with no face keeps its one item)."""
    if not track_ids:
        return items
    out: list[Item] = []
    for it in items:
        if it.face is not None:
            out.append(it)
            continue
        for f in track_ids:
            out.append(
                replace(
                    it,
                    key=row_key(it.sample.id, f, it.system, it.variant),
                    face=f,
                    facts=it.facts | {"face_id": f},
                )
            )
    return out


# -- the worker processes ----------------------------------------------------------------------
_PREPARER: Preparer | None = None


def _worker_init(
    cfg_json: str, labels: LabelSet, budgets: dict[str, int], gallery: str | None, env: dict
) -> None:
    """Runs once in each worker process: its own landmarkers; the parent's SOVTP_* settings
    (a forkserver's children inherit the environment of when it started, not of now)."""
    import atexit
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    os.environ.update(env)
    # A forked worker inherits the parent's OpenMP state: after the parent ran a library with
    # an OpenMP team (faster-whisper's CTranslate2, transcribing), the worker's first parallel
    # torch op (loading a CNN checkpoint) waited for ever on that team.  One torch thread per
    # worker runs inline — and workers are processes already: more threads oversubscribe.
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    global _PREPARER
    cfg = BenchConfig.model_validate_json(cfg_json)
    _PREPARER = Preparer(cfg, labels, budgets, Path(gallery) if gallery else None)
    atexit.register(_PREPARER.close)  # an open landmarker raises at interpreter teardown


def _die_with_parent() -> None:
    """Linux: end this worker when the run's process dies, even by ``kill -9`` (a pool worker
    would otherwise wait on its queue for ever)."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _worker_prepare(sample: Sample, items: list[Item], gallery: bool) -> Prepared:
    assert _PREPARER is not None, "worker not initialised"
    return _PREPARER.prepare(sample, items, gallery)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Context:
    """The parent's half of a run: which items a sample still needs, the backends and the
    response cache, the gallery.  ``prepare``/``answer`` serve the Ray engine (one Context per
    actor, in-process preparation, batch answers); the local engine streams (``run_local``)."""

    def __init__(
        self,
        cfg: BenchConfig,
        labels: LabelSet,
        gallery_dir=None,
        gallery_samples: Iterable[str] = (),
    ):
        self.cfg = cfg
        self.labels = labels
        self.specs: dict[str, PromptSpec] = {sp.id: sp for sp in map(load_spec, cfg.variants)}
        self.backends: dict[str, Backend] = {
            s.name: get_backend(s.backend, **_run_options(cfg, s.backend, s.options))
            for s in cfg.systems
            if s.backend != "cnn"
        }
        # trained predictors (cnn:CKPT): answered in the preparing process, from the same
        # annotation as the prompts, once per sample (not crossed with prompt variants)
        self.predictors = {s.name: s.options["ckpt"] for s in cfg.systems if s.backend == "cnn"}
        # --tta: the CNN systems adapt on the stream, so this process answers them, in sample
        # order (InOrder), from the crops the preparers cut; a resume replays them from the
        # first sample (the adapted state is not saved), see ``needed``
        self.tta: dict[str, TrainedPredictor] = (
            {n: TrainedPredictor(ck, cfg.tta) for n, ck in self.predictors.items()}
            if cfg.tta != "none"
            else {}
        )
        self._resolve_models()  # a server that is down fails here, before any detector opens
        self.flavour = {s.name: str(s.options.get("server", "")) for s in cfg.systems}
        self.gen = GenerationConfig(
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            seed=cfg.gen_seed,
            structured=cfg.structured,
        )
        self.cache = ResponseCache() if cfg.response_cache and is_deterministic(self.gen) else None
        self.gallery_dir = gallery_dir
        # samples drawn for the gallery: those already there (a resume re-draws, never adds)
        self.gallery_samples: set[str] = set(gallery_samples)
        self.stats = Stats()
        self.workers = default_workers() if cfg.workers is None else max(0, cfg.workers)
        self._local: Preparer | None = None

    def _resolve_models(self) -> None:
        """Ask a server for its model once, up front: the cache key and the rows need it."""
        for b in self.backends.values():
            if b.capabilities.remote and not b.model:
                b.model = asyncio.run(b.discover_model())

    def budgets(self) -> dict[str, int]:
        return {n: b.capabilities.images_per_prompt for n, b in self.backends.items()}

    def preparer(self) -> Preparer:
        """The in-process preparer (Ray actors; ``workers=0``)."""
        if self._local is None:
            self._local = Preparer(self.cfg, self.labels, self.budgets(), self.gallery_dir)
        return self._local

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
        if self.cache:
            self.cache.close()

    # -- which rows a sample still needs ------------------------------------------------------
    def needed(self, it_key: str, system: str, done: set[str]) -> bool:
        """Whether a row is (re)computed: not written yet, or a TTA system's — an adapting
        model's answer depends on every sample before it, and a resumed run has lost that
        state, so it replays the whole stream (its earlier rows are superseded, latest wins)."""
        return system in self.tta or it_key not in done

    def answer_tta(self, it: Item) -> Response:
        """A TTA system's answer to one item (this process; call in sample order)."""
        if it.error or it.crops is None:
            return self.failed_row(it)
        return self.tta[it.system].respond_crops(it.key, it.crops, it.gold, it.sample.id)

    def tta_results(self) -> list[dict[str, Any]]:
        """Before/after scores of each TTA system over the stream it answered (``tta.json``)."""
        out = []
        for name, pr in self.tta.items():
            if pr.stream is None:  # never answered (nothing to do)
                continue
            out.append({"system": name, "variant": predictor_variant(pr.ckpt, pr.tta),
                        "checkpoint": pr.ckpt, **pr.stream.result()})  # fmt: skip
        return out

    def items_for(self, sample: Sample, done: set[str]) -> list[Item]:
        cfg = self.cfg
        faces: list[int | None] = sorted(sample.face_labels) or [None]
        gold_of = {
            f: sample.face_labels.get(f, sample.label) if f is not None else sample.label
            for f in faces
        }
        items = []
        for f in faces:
            gold = self.labels.normalize(gold_of[f]) if gold_of[f] else None
            facts = sample.row() | {"gold": gold}
            if f is not None:
                facts["face_id"] = f
            for s in cfg.systems:
                variants = (
                    [predictor_variant(s.options["ckpt"], cfg.tta)]
                    if s.backend == "cnn"
                    else self.specs
                )
                for v in variants:
                    k = row_key(sample.id, f, s.name, v)
                    if self.needed(k, s.name, done):
                        it = Item(k, sample, f, s.name, v, gold, dict(facts))
                        if gold_of[f] and gold is None:
                            it.error = f"gold label {gold_of[f]!r} is not in the label set"
                        items.append(it)
        if items:
            self.stats.samples += 1
        else:
            self.stats.skipped += 1
        return items

    def in_gallery(self, sample: Sample) -> bool:
        """Whether this sample is drawn for the gallery: the first ``cfg.gallery`` samples."""
        if self.gallery_dir is None:
            return False
        if sample.id in self.gallery_samples:
            return True
        if len(self.gallery_samples) < self.cfg.gallery:
            self.gallery_samples.add(sample.id)
            return True
        return False

    def prepare(self, sample: Sample, done: set[str]) -> list[Item]:
        """Items of one sample with their queries, built in this process."""
        items = self.items_for(sample, done)
        if items:
            items = self.count(self.preparer().prepare(sample, items, self.in_gallery(sample)))
        return [it for it in items if self.needed(it.key, it.system, done)]

    def count(self, p: Prepared) -> list[Item]:
        self.stats.annotations += p.annotated
        self.stats.detector_calls += p.detector_calls
        return p.items

    def cached(self, it: Item) -> Response | None:
        if self.cache is None or it.query is None:
            return None
        be = self.backends[it.system]
        return self.cache.get(
            request_key(be.name, be.model, self.flavour[it.system], it.query, self.gen)
        )

    def remember(self, it: Item, r: Response) -> None:
        if self.cache is not None and it.query is not None:
            be = self.backends[it.system]
            ck = request_key(be.name, be.model, self.flavour[it.system], it.query, self.gen)
            self.cache.put(ck, r)

    def failed_row(self, it: Item) -> Response:
        return Response(query_id=it.key, backend=it.system, error=it.error or "no query")

    # -- batch answers (the Ray engine) ---------------------------------------------------------
    def answer(self, items: list[Item], emit: Emit) -> None:
        by_system: dict[str, list[Item]] = {}
        for it in items:  # TTA systems: in the order given (one actor, samples in order)
            if it.system in self.tta:
                r = self.answer_tta(it)
                emit(it, r, self.predict(it, r))
            elif it.response is not None:
                emit(it, it.response, self.predict(it, it.response))
            elif it.error or it.query is None:
                r = self.failed_row(it)
                emit(it, r, self.predict(it, r))
            elif (hit := self.cached(it)) is not None:
                emit(it, hit, self.predict(it, hit))
            else:
                by_system.setdefault(it.system, []).append(it)
        for system, todo in by_system.items():
            by_qid: dict[str, list[Item]] = {}
            for it in todo:
                by_qid.setdefault(it.query.id, []).append(it)  # type: ignore[union-attr]
            queries = [group[0].query for group in by_qid.values()]

            def on_response(r: Response, by_qid=by_qid) -> None:
                for it in by_qid.get(r.query_id, []):
                    self.remember(it, r)
                    emit(it, r, self.predict(it, r))

            self.backends[system].generate(queries, self.gen, progress=on_response)  # type: ignore[arg-type]

    def predict(self, it: Item, r: Response) -> Prediction:
        """Parsed by the contract the query asked for (never guessed); the query's own label
        list (maybe shuffled) resolves to the run's set with its synonyms."""
        out = it.query.output if it.query is not None else None
        p = predict(r, self.labels, it.sample.id, it.system, it.variant, it.gold, output=out)
        p.face_id = it.query.subject if it.query is not None else it.face
        return p

    # -- streaming answers (the local engine) ---------------------------------------------------
    def asker(self, system: str) -> contextlib.AbstractAsyncContextManager[Ask]:
        """A system's bounded queue: a server backend's own streaming session, or, for an
        in-process backend, micro-batches of whatever is queued, answered in a thread."""
        be = self.backends[system]
        if be.capabilities.remote:
            return be.session(self.gen)  # type: ignore[attr-defined]
        return _batched(be, self.gen, getattr(be, "batch_size", None) or 16)

    def slots(self, system: str) -> int:
        """How many of a system's queries may be queued or on the wire at once: twice what its
        endpoints take, so a freed slot always has a query waiting."""
        be = self.backends[system]
        if be.capabilities.remote:
            per = be.max_concurrency if be.adaptive else be.concurrency  # type: ignore[attr-defined]
            return 2 * per * len(getattr(be, "base_urls", [1]))
        return 2 * (getattr(be, "batch_size", None) or 16)


def _run_options(cfg: BenchConfig, backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """A system's options with the run's network settings (``concurrency``, ``timeout_s``,
    ``max_retries``) filled in where the system does not set its own."""
    if backend != "openai":
        return options
    extra = {
        "concurrency": cfg.concurrency,
        "timeout_s": cfg.timeout_s,
        "max_retries": cfg.max_retries,
    }
    return {k: v for k, v in extra.items() if v is not None} | options


@contextlib.asynccontextmanager
async def _batched(be: Backend, gen: GenerationConfig, size: int) -> AsyncIterator[Ask]:
    """Queue → batches of up to ``size`` → ``be.generate`` in a thread (one batch at a time: an
    in-process model is not re-entrant)."""
    queue: asyncio.Queue[tuple[Query, asyncio.Future[Response]]] = asyncio.Queue()

    async def serve() -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < size and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                rs = await asyncio.to_thread(be.generate, [q for q, _ in batch], gen)
            except Exception as e:  # generate returns failures as values; this is a bug guard
                rs = [
                    Response(query_id=q.id, backend=be.name, error=f"{type(e).__name__}: {e}")
                    for q, _ in batch
                ]
            for (_, fut), r in zip(batch, rs, strict=True):
                if not fut.done():
                    fut.set_result(r)

    task = asyncio.create_task(serve())

    async def ask(q: Query) -> Response:
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        queue.put_nowait((q, fut))
        return await fut

    try:
        yield ask
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _executor(ctx: Context) -> tuple[Executor, Callable[..., Prepared]]:
    """The preparation pool: ``workers`` processes, or this process's thread when 0."""
    if ctx.workers == 0:
        return ThreadPoolExecutor(1, thread_name_prefix="sovtp-prepare"), ctx.preparer().prepare
    import multiprocessing as mp

    # fork where there is one: a worker starts at once, with the modules already imported, and
    # needs no importable ``__main__`` (a script or notebook without a main guard).  This
    # process opens no landmarker of its own, so a child inherits none; each opens its own.
    method = os.environ.get("SOVTP_START_METHOD") or (
        "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    )
    mpc = mp.get_context(method)
    env = {k: v for k, v in os.environ.items() if k.startswith("SOVTP_")}
    gallery = str(ctx.gallery_dir) if ctx.gallery_dir is not None else None
    pool = ProcessPoolExecutor(
        ctx.workers,
        mp_context=mpc,
        initializer=_worker_init,
        initargs=(ctx.cfg.model_dump_json(), ctx.labels, ctx.budgets(), gallery, env),
    )
    return pool, _worker_prepare


async def stream(samples: Iterable[Sample], ctx: Context, done: set[str], emit: Emit) -> None:
    """Prepare samples in the pool and feed each query to its system's queue as soon as it is
    built; emit every answer as it arrives."""
    loop = asyncio.get_running_loop()
    executor, prepare_fn = _executor(ctx)
    ahead = asyncio.Semaphore(2 * max(1, ctx.workers))  # samples in preparation or waiting
    room = {name: asyncio.Semaphore(ctx.slots(name)) for name in ctx.backends}
    try:
        async with contextlib.AsyncExitStack() as stack:
            asks = {n: await stack.enter_async_context(ctx.asker(n)) for n in ctx.backends}
            async with asyncio.TaskGroup() as tg:

                async def ask(it: Item) -> None:
                    try:
                        r = await asks[it.system](it.query)  # type: ignore[arg-type]
                    finally:
                        room[it.system].release()
                    ctx.remember(it, r)
                    emit(it, r, ctx.predict(it, r))

                def release(it: Item) -> None:  # a TTA item, in sample order
                    r = ctx.answer_tta(it)
                    emit(it, r, ctx.predict(it, r))

                order = InOrder(release) if ctx.tta else None

                async def handle(n: int, sample: Sample, items: list[Item], gallery: bool) -> None:
                    held: list[Item] = []  # TTA items: answered when sample n's turn comes
                    prepared = False
                    try:
                        items = ctx.count(
                            await loop.run_in_executor(executor, prepare_fn, sample, items, gallery)
                        )
                        # --subject all: faces found by annotation whose rows exist already
                        items = [it for it in items if ctx.needed(it.key, it.system, done)]
                        for it in items:
                            if it.system in ctx.tta:
                                held.append(it)
                                continue
                            if it.response is not None:  # a trained predictor's answer
                                r = it.response
                            elif it.error or it.query is None:
                                r = ctx.failed_row(it)
                            elif (r := ctx.cached(it)) is None:  # type: ignore[assignment]
                                await room[it.system].acquire()  # back-pressure
                                tg.create_task(ask(it))
                                continue
                            emit(it, r, ctx.predict(it, r))
                        prepared = True
                    finally:
                        # its read-ahead slot frees when its turn is done (a run that is being
                        # cancelled answers nothing more: a resume replays the TTA stream)
                        if order is not None and prepared:
                            order.put(n, held, ahead.release)
                        else:
                            ahead.release()

                seq = 0
                for sample in samples:
                    items = ctx.items_for(sample, done)
                    if not items:
                        continue
                    await ahead.acquire()
                    tg.create_task(handle(seq, sample, items, ctx.in_gallery(sample)))
                    seq += 1
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def run_local(samples: Iterable[Sample], ctx: Context, done: set[str], emit: Emit) -> None:
    """The local engine: :func:`stream` on an event loop of its own (in a thread of its own
    when the caller already runs one, as a notebook does)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(stream(samples, ctx, done, emit))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sovtp-run") as pool:
        pool.submit(asyncio.run, stream(samples, ctx, done, emit)).result()


def error_fields(r: Response) -> dict[str, Any]:
    """What an error row says about its error: whether asking again may help."""
    return {"transient": is_transient(r.error)} if r.error else {"transient": None}


def response_row(it: Item, r: Response) -> dict[str, Any]:
    return {
        "key": it.key,
        "sample_id": it.sample.id,
        "face_id": it.face,
        "system": it.system,
        "variant": it.variant,
        "spec_hash": it.query.spec_hash if it.query else None,
        "images": [i.sha256 for i in it.query.images] if it.query else [],
        "response": r.model_dump(exclude={"raw"}),
    } | error_fields(r)


def prediction_row(it: Item, r: Response, p: Prediction) -> dict[str, Any]:
    d = p.model_dump()
    d.update(it.facts)
    d.update(
        {
            "key": it.key,
            "gold": it.gold,
            "cached": r.cached,
            "latency_s": round(r.latency_s, 4),
            "model": r.model,
        }
        | error_fields(r)
    )
    return d


def gallery_row(it: Item, r: Response, p: Prediction) -> dict[str, Any] | None:
    if not it.gallery_image:
        return None
    return {
        "key": it.key, "sample_id": it.sample.id, "system": it.system, "variant": it.variant,
        "image": it.gallery_image, "prompt": it.query.text() if it.query else "",
        "answer": r.text, "error": r.error, "label": p.label, "gold": it.gold,
        "parse_status": p.parse_status, "rationale": p.rationale, "stages": p.stages,
        "subject": it.query.subject if it.query else it.face,
    }  # fmt: skip


def rows_of(it: Item, r: Response, p: Prediction) -> tuple[dict, dict, dict | None]:
    """The three rows one answer writes: response, prediction, gallery (or None)."""
    return response_row(it, r), prediction_row(it, r, p), gallery_row(it, r, p)
