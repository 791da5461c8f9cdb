"""The CPU half of a run: samples → items with their queries built (or a predictor's answer),
in a pool of worker processes, each with its own MediaPipe landmarkers."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from sovtp.data.sample import ManifestError, Sample, sampling_for
from sovtp.engine.config import BenchConfig
from sovtp.engine.items import Item, Prepared, row_key
from sovtp.labels import LabelSet
from sovtp.prompting.build import ImageCache
from sovtp.prompting.spec import PromptSpec, load_spec
from sovtp.records import Query
from sovtp.systems import Predictor

log = logging.getLogger(__name__)


def predictors(cfg: BenchConfig) -> dict[str, Predictor]:
    """The run's predictor systems by name (``cnn:CKPT``: :class:`~sovtp.baselines.system.
    CnnSystem`, stateful under ``--tta``); the model loads on first use."""
    if not any(s.backend == "cnn" for s in cfg.systems):
        return {}
    from sovtp.baselines.system import CnnSystem

    return {
        s.name: CnnSystem(s.options["ckpt"], cfg.tta) for s in cfg.systems if s.backend == "cnn"
    }


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
        # predictors (cnn:CKPT): answered here, or (stateful, under --tta) only cropped here
        # and answered by the parent in sample order (see Context.stateful)
        self.predictors = predictors(cfg)

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
                t0 = time.perf_counter()
                crops = pr.crops(clip, frames, it.face)
                if pr.stateful:  # the parent answers in sample order
                    it.crops = crops
                else:
                    it.prediction = pr.answer(sample.id, crops, it.gold)
                    it.facts["seconds"] = round(time.perf_counter() - t0, 4)
                continue
            # a gallery sample is drawn in full for the report; otherwise the backend's budget.
            # A text-only system (budget 0) is sent the text-only query either way, and its
            # gallery picture is drawn for the report alone (not recorded as sent)
            budget = self.budgets[it.system]
            budget = None if gallery and budget != 0 else budget
            bkey = (it.face, it.variant, budget)
            try:
                if bkey not in built:
                    ask = functools.partial(
                        self.pipeline.query,
                        clip,
                        frames,
                        self.specs[it.variant],
                        labels=self.labels,
                        subject=it.face if it.face is not None else self.cfg.subject,
                        transcript=sample.transcript,
                        sample_key=sample.id,
                        query_id=f"{sample.id}|{it.face or ''}|{it.variant}",
                        image_cache=icache,
                        names=names,
                    )
                    q, images = ask(max_images=budget)
                    built[bkey] = q
                    if gallery and self.gallery_dir is not None:
                        sent = bool(images)
                        if not sent:
                            images = ask(max_images=None, record=False)[1]
                        if images:
                            self._draw_gallery(sample.id, items, it, images[0].jpeg, sent)
                it.query = built[bkey]
                it.facts["subject"] = it.query.subject  # the face asked about, in every row
            except Exception as e:
                it.error = f"{type(e).__name__}: {e}"
        return True

    def _draw_gallery(self, sid: str, items: list[Item], it: Item, jpeg: bytes, sent: bool) -> None:
        """Write a gallery sample's picture and point at it every item of the same face and
        variant whose system was sent it — or, when ``sent`` is False, that reads text only and
        was sent nothing (the report says so beside the picture)."""
        tag = f"{sid}|{it.face}|{it.variant}" + ("" if sent else "|not sent")
        name = hashlib.sha256(tag.encode()).hexdigest()[:16] + ".jpg"
        assert self.gallery_dir is not None
        (self.gallery_dir / name).write_bytes(jpeg)
        for other in items:
            text_only = self.budgets.get(other.system) == 0
            if (other.face, other.variant) == (it.face, it.variant) and text_only != sent:
                other.gallery_image, other.gallery_sent = f"gallery/{name}", sent


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
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's SIGTERM-as-Ctrl-C: just end
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
