"""systems × prompt variants × samples → rows in a run folder.

Each sample is decoded and annotated **once**; every variant's query is built from that one
annotation (marks drawn once per distinct visual spec, see ``ImageCache``) and every system
answers the same queries.  Samples stream through in chunks: while the backends answer chunk k
(in a worker thread), the main thread annotates chunk k+1, so the CPU-bound and I/O-bound
halves overlap and at most two chunks are in memory.

Every answer is written (and flushed) the moment it arrives, so ``kill -9`` loses only the
requests in flight; ``--resume`` skips the keys already in ``predictions.jsonl``.  A sample that
fails (unreadable media, no such face) gets rows with its error, and the run goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

from sovtp.backends.base import Backend, GenerationConfig, get_backend
from sovtp.backends.cache import ResponseCache, is_deterministic, request_key
from sovtp.bench.config import BenchConfig
from sovtp.data.sample import Sample
from sovtp.labels import LabelSet
from sovtp.prompting.build import ImageCache, ImageOptions, build_query
from sovtp.prompting.spec import PromptSpec, load_spec
from sovtp.records import Prediction, Query, Response
from sovtp.scoring.parse import predict

log = logging.getLogger(__name__)


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


@dataclass
class Stats:
    """What a run's process did (the benchmarks count annotation passes with it)."""

    samples: int = 0  # samples with rows still to write
    skipped: int = 0  # samples whose rows were all written before (--resume)
    annotations: int = 0  # clips annotated (detector ran or cache hit)
    detector_calls: int = 0  # frames through the detectors


def sampling_for(sample: Sample, sampling: str) -> str:
    """The frame sampling of one sample: the run's, restricted to the sample's interval."""
    if not sample.has_interval:
        return sampling
    from sovtp.media.sampling import Sampling
    from sovtp.media.video import probe

    info = probe(sample.media)
    fps = info.fps or 25.0
    start = (
        sample.start_frame if sample.start_frame is not None else round((sample.start_s or 0) * fps)
    )
    if sample.end_frame is not None:
        end = sample.end_frame
    elif sample.end_s is not None:
        end = round(sample.end_s * fps)
    else:
        end = info.n_frames - 1
    end = max(start, min(end, max(info.n_frames - 1, start)))
    rel = Sampling.parse(sampling).select(end - start + 1, fps)
    return "indices:" + ",".join(str(start + i) for i in rel)


class Context:
    """Everything one process needs to turn samples into rows (built once per process; a Ray
    worker builds its own)."""

    def __init__(self, cfg: BenchConfig, labels: LabelSet, gallery_dir=None):
        from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

        self.cfg = cfg
        self.labels = labels
        # by spec ID (cfg.variants may name a spec by ID or by YAML path, as grids do)
        self.specs: dict[str, PromptSpec] = {sp.id: sp for sp in map(load_spec, cfg.variants)}
        self.backends: dict[str, Backend] = {
            s.name: get_backend(s.backend, **s.options) for s in cfg.systems
        }
        self._resolve_models()  # a server that is down fails here, before any detector opens
        self.flavour = {s.name: str(s.options.get("server", "")) for s in cfg.systems}
        self.gen = GenerationConfig(
            max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=cfg.gen_seed
        )
        self.cache = ResponseCache() if cfg.response_cache and is_deterministic(self.gen) else None
        self.image_opts = ImageOptions(cfg.image_size, cfg.jpeg_quality)
        self.gallery_dir = gallery_dir
        self.gallery_left = cfg.gallery if gallery_dir is not None else 0
        self.stats = Stats()
        self.detector = MediaPipeAnnotator(DetectorConfig(max_faces=cfg.max_faces, pose=cfg.pose))
        self.detector.__enter__()

    def _resolve_models(self) -> None:
        """Ask a server for its model once, up front: the cache key and the rows need it."""
        for b in self.backends.values():
            if hasattr(b, "discover_model") and not b.model:
                b.model = asyncio.run(b.discover_model())

    def budget(self, system: str) -> int:
        return self.backends[system].capabilities.images_per_prompt

    def close(self) -> None:
        self.detector.close()
        if self.cache:
            self.cache.close()

    # -- stage 1: sample → items (annotate once, build every variant's query) ------------------
    def prepare(self, sample: Sample, done: set[str]) -> list[Item]:
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
                for v in self.specs:
                    k = row_key(sample.id, f, s.name, v)
                    if k not in done:
                        it = Item(k, sample, f, s.name, v, gold, dict(facts))
                        if gold_of[f] and gold is None:
                            it.error = f"gold label {gold_of[f]!r} is not in the label set"
                        items.append(it)
        if not items:
            self.stats.skipped += 1
            return []
        self.stats.samples += 1
        try:
            self._build(sample, items)
        except Exception as e:  # one bad sample never stops a run
            msg = f"{type(e).__name__}: {e}"
            log.warning("sample %s failed: %s", sample.id, msg)
            for it in items:
                it.error = it.error or msg
        return items

    def _build(self, sample: Sample, items: list[Item]) -> None:
        from sovtp.annotate.pipeline import annotate

        before = self.detector.calls
        clip, frames = annotate(
            sample.media,
            sampling_for(sample, self.cfg.sampling),
            detector=self.detector,
            cache=self.cfg.annotation_cache,
        )
        self.stats.annotations += 1
        self.stats.detector_calls += self.detector.calls - before
        n_faces = len(clip.track_ids)
        indices = [fa.index for fa in clip.frames]
        icache = ImageCache()
        built: dict[tuple, Query] = {}
        gallery = self.gallery_left > 0
        if gallery:
            self.gallery_left -= 1
        for it in items:
            it.facts |= {"n_faces": n_faces, "frames": indices}
            if it.error:
                continue
            # a gallery sample is drawn in full for the report; otherwise the backend's budget
            budget = None if gallery else self.budget(it.system)
            bkey = (it.face, it.variant, budget)
            try:
                if bkey not in built:
                    q, images = build_query(
                        clip,
                        frames,
                        self.specs[it.variant],
                        labels=self.labels,
                        subject=it.face if it.face is not None else self.cfg.subject,
                        transcript=sample.transcript,
                        image_options=self.image_opts,
                        image_cache=icache,
                        query_id=f"{sample.id}|{it.face or ''}|{it.variant}",
                        max_images=budget,
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
            except Exception as e:
                it.error = f"{type(e).__name__}: {e}"

    # -- stage 2: items → responses → rows ------------------------------------------------
    def answer(self, items: list[Item], emit: Callable[[Item, Response, Prediction], None]) -> None:
        by_system: dict[str, list[Item]] = {}
        for it in items:
            if it.error or it.query is None:
                r = Response(query_id=it.key, backend=it.system, error=it.error or "no query")
                emit(it, r, self._predict(it, r))
            else:
                by_system.setdefault(it.system, []).append(it)
        for system, its in by_system.items():
            be = self.backends[system]
            todo: list[Item] = []
            keys: dict[str, str] = {}
            for it in its:
                if self.cache is not None:
                    ck = request_key(be.name, be.model, self.flavour[system], it.query, self.gen)  # type: ignore[arg-type]
                    keys[it.key] = ck
                    hit = self.cache.get(ck)
                    if hit is not None:
                        emit(it, hit, self._predict(it, hit))
                        continue
                todo.append(it)
            if not todo:
                continue
            by_qid: dict[str, list[Item]] = {}
            for it in todo:
                by_qid.setdefault(it.query.id, []).append(it)  # type: ignore[union-attr]
            queries = [group[0].query for group in by_qid.values()]

            def on_response(r: Response, by_qid=by_qid, keys=keys) -> None:
                for it in by_qid.get(r.query_id, []):
                    if self.cache is not None and it.key in keys:
                        self.cache.put(keys[it.key], r)
                    emit(it, r, self._predict(it, r))

            be.generate(queries, self.gen, progress=on_response)  # type: ignore[arg-type]

    def _predict(self, it: Item, r: Response) -> Prediction:
        return predict(r, self.labels, it.sample.id, it.system, it.variant, it.gold)


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
    }


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
    )
    return d


def gallery_row(it: Item, r: Response, p: Prediction) -> dict[str, Any] | None:
    if not it.gallery_image:
        return None
    return {
        "key": it.key, "sample_id": it.sample.id, "system": it.system, "variant": it.variant,
        "image": it.gallery_image, "prompt": it.query.text() if it.query else "",
        "answer": r.text, "error": r.error, "label": p.label, "gold": it.gold,
        "parse_status": p.parse_status, "rationale": p.rationale,
    }  # fmt: skip


def rows_of(it: Item, r: Response, p: Prediction) -> tuple[dict, dict, dict | None]:
    """The three rows one answer writes: response, prediction, gallery (or None)."""
    return response_row(it, r), prediction_row(it, r, p), gallery_row(it, r, p)


def chunks(it: Iterable[Sample], n: int) -> Iterator[list[Sample]]:
    it = iter(it)
    while True:
        c = list(islice(it, n))
        if not c:
            return
        yield c


def run_local(
    samples: Iterable[Sample],
    ctx: Context,
    done: set[str],
    emit: Callable[[Item, Response, Prediction], None],
) -> None:
    """Annotate chunk k+1 while the backends answer chunk k."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sovtp-answer") as pool:
        pending: Future | None = None
        for chunk in chunks(samples, ctx.cfg.chunk):
            items = [it for s in chunk for it in ctx.prepare(s, done)]
            if pending is not None:
                pending.result()
            pending = pool.submit(ctx.answer, items, emit) if items else None
        if pending is not None:
            pending.result()
