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
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from sovtp.backends.base import Backend, GenerationConfig, get_backend, served_model
from sovtp.backends.cache import ResponseCache, is_deterministic, request_key
from sovtp.baselines.system import cnn_variant
from sovtp.data.sample import Sample
from sovtp.engine.config import BenchConfig
from sovtp.engine.items import Ask, Emit, Item, Prepared, Stats, row_key
from sovtp.engine.workers import (
    Preparer,
    _worker_init,
    _worker_prepare,
    default_workers,
    predictors,
)
from sovtp.labels import LabelSet
from sovtp.prompting.spec import PromptSpec, load_spec
from sovtp.records import Prediction, Query, Response
from sovtp.scoring.parse import predict
from sovtp.systems import Predictor

log = logging.getLogger(__name__)


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
            s.name: get_backend(s.backend, **run_options(cfg, s.backend, s.options))
            for s in cfg.systems
            if s.backend != "cnn"
        }
        # predictors (cnn:CKPT) answer in the preparing process, from the same annotation as
        # the prompts, once per sample (not crossed with prompt variants).  Stateful ones
        # (--tta: a CNN adapting on the stream) are answered here, in sample order (InOrder),
        # from the crops the preparers cut; a resume replays them from the first sample (the
        # adapted state is not saved), see ``needed``
        self.stateful: dict[str, Predictor] = {
            n: p for n, p in predictors(cfg).items() if p.stateful
        }
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
            served_model(b)

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
        return system in self.stateful or it_key not in done

    def answer_stateful(self, it: Item) -> Response:
        """A stateful predictor's answer to one item (this process; call in sample order): its
        Prediction goes on the item, the Response records the call."""
        if it.error or it.crops is None:
            return self.failed_row(it)
        t0 = time.perf_counter()
        it.prediction = self.stateful[it.system].answer(it.sample.id, it.crops, it.gold)
        it.facts["seconds"] = round(time.perf_counter() - t0, 4)
        return self.predictor_row(it)

    def predictor_row(self, it: Item) -> Response:
        """The response row of a predictor's answer: no text (its scores are the answer)."""
        p = it.prediction
        return Response(
            query_id=it.key,
            backend="cnn",
            model=p.system if p else None,
            latency_s=float(it.facts.get("seconds", 0.0)),
            finish_reason="stop",
            error=p.error if p is not None else "no answer",
        )

    def tta_results(self) -> list[dict[str, Any]]:
        """Before/after scores of each stateful system over the stream it answered
        (``tta.json``)."""
        return [
            {"system": name, **res}
            for name, pr in self.stateful.items()
            if (res := pr.result()) is not None
        ]

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
                    [cnn_variant(s.options["ckpt"], cfg.tta)] if s.backend == "cnn" else self.specs
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
            if it.system in self.stateful:
                r = self.answer_stateful(it)
                emit(it, r, self.predict(it, r))
            elif it.prediction is not None:
                r = self.predictor_row(it)
                emit(it, r, self.predict(it, r))
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
        """A backend's answer parsed by the contract the query asked for (never guessed); the
        query's own label list (maybe shuffled) resolves to the run's set with its synonyms.  A
        predictor's Prediction is taken as it is, its labels mapped to the run's set by name."""
        if it.prediction is not None:
            return predictor_prediction(it, self.labels)
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


def predictor_prediction(it: Item, labels: LabelSet) -> Prediction:
    """A predictor's Prediction as a row of this run: the run's system name, variant, gold and
    face; its labels (the checkpoint's) mapped to the run's label set by name, scores summed
    over synonyms; a label outside the set is an invalid answer, named."""
    p = it.prediction.model_copy()  # type: ignore[union-attr]
    p.system, p.variant, p.gold, p.face_id = it.system, it.variant, it.gold, it.face
    if p.label is None:
        return p
    scores: dict[str, float] = {}
    for lab, v in (p.scores or {}).items():
        if (m := labels.normalize(lab)) is not None:
            scores[m] = scores.get(m, 0.0) + v
    label = labels.normalize(p.label)
    if label is None:
        p.parse_status, p.error = "invalid", f"label {p.label!r} is not in the label set"
        p.label = None
        return p
    p.label, p.scores = label, scores
    p.ranking = sorted(scores, key=lambda k: -scores[k])
    return p


def run_options(cfg: BenchConfig, backend: str, options: dict[str, Any]) -> dict[str, Any]:
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

                def release(it: Item) -> None:  # a stateful predictor's item, in sample order
                    r = ctx.answer_stateful(it)
                    emit(it, r, ctx.predict(it, r))

                order = InOrder(release) if ctx.stateful else None

                async def handle(n: int, sample: Sample, items: list[Item], gallery: bool) -> None:
                    held: list[Item] = []  # stateful items: answered when sample n's turn comes
                    prepared = False
                    try:
                        items = ctx.count(
                            await loop.run_in_executor(executor, prepare_fn, sample, items, gallery)
                        )
                        # --subject all: faces found by annotation whose rows exist already
                        items = [it for it in items if ctx.needed(it.key, it.system, done)]
                        for it in items:
                            if it.system in ctx.stateful:
                                held.append(it)
                                continue
                            if it.prediction is not None:  # a predictor's answer
                                r = ctx.predictor_row(it)
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
