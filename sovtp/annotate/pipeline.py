"""media → ClipAnnotation: decode the sampled frames, detect, track, link, derive cues; cached.

An ``apex:N`` sampling is resolved here first, by a landmark pass over the clip
(:mod:`sovtp.annotate.apex`); the frames it chose are recorded in the annotation
(``detectors["frames"]``, as an ``indices:`` sampling that reruns exactly) and a cache hit reuses
them, so the pass runs once per (media, sampling, detectors) like the annotation itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sovtp.annotate.apex import ApexConfig, ApexPlan, scan
from sovtp.annotate.cache import AnnotationCache, cache_key, file_sha256
from sovtp.annotate.cues import clip_cues
from sovtp.annotate.geometry import apply_geometry
from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
from sovtp.annotate.nfbl import link_hands
from sovtp.annotate.occlusion import annotate_occlusion
from sovtp.annotate.shots import detect_shots
from sovtp.annotate.tracking import FaceTracker, link_faces_to_persons
from sovtp.media.sampling import Sampling
from sovtp.media.video import load_frames
from sovtp.types import ClipAnnotation, Frame, FrameAnnotation

log = logging.getLogger(__name__)


def annotate_frames(
    frames: list[Frame], detector: MediaPipeAnnotator, progress: Callable[[int], None] | None = None
) -> list[FrameAnnotation]:
    """Detect on each frame, then give faces stable IDs and link them to bodies (and hands,
    when the hands pass ran, to both)."""
    detector.start_clip()  # a new clip: follow nothing from the last one
    tracker = FaceTracker()
    out = []
    for fr in frames:
        fa = detector.detect(fr.image, fr.index, fr.timestamp_s)
        tracker.update(fa)
        link_faces_to_persons(fa)
        if fa.hands:
            link_hands(fa)
        out.append(fa)
        if progress:
            progress(1)
    return out


def annotate(
    path: str | Path,
    sampling: str | Sampling = "uniform:8",
    config: DetectorConfig | None = None,
    *,
    detector: MediaPipeAnnotator | None = None,
    cache: AnnotationCache | None | bool = True,
    frames: list[Frame] | None = None,
    progress: Callable[[int], None] | None = None,
    scout: MediaPipeAnnotator | None = None,
    apex: ApexConfig | None = None,
) -> tuple[ClipAnnotation, list[Frame]]:
    """Annotate one clip or image; returns the annotation and the decoded sampled frames.

    ``cache=True`` uses the user cache, ``False``/``None`` disables it, or pass an
    :class:`AnnotationCache`.  On a hit no detector runs (``clip.cached`` is True); the frames are
    still decoded, because drawing marks needs their pixels.  Pass ``detector`` to reuse open
    landmarkers across many clips (a benchmark); otherwise one is opened and closed here.

    ``apex:N`` runs a landmark pass first, with ``scout`` (a face-only annotator to reuse across
    clips) or ``detector`` when it has no pose, else a face-only one opened here; ``apex`` tunes
    the pass.  It decodes its own frames, so ``frames`` cannot be passed with it.
    """
    samp = Sampling.parse(sampling)
    cfg = detector.config if detector is not None else (config or DetectorConfig())
    store = AnnotationCache() if cache is True else (cache or None)
    sha = file_sha256(path)
    apex_cfg = apex or ApexConfig()
    is_apex = samp.kind == "apex"
    if is_apex and frames is not None:
        raise ValueError(f"{samp} chooses and decodes its own frames: do not pass frames")
    key = cache_key(sha, f"{samp}|{apex_cfg.key()}" if is_apex else str(samp), cfg.key())
    if store is not None:
        hit = store.get(key)
        if hit is not None:
            log.info("annotation cache hit for %s", path)
            hit.source = str(path)
            if frames is None:
                again = Sampling("indices", indices=tuple(fa.index for fa in hit.frames))
                frames = load_frames(path, again if is_apex else samp)
            return hit, frames
    plan: ApexPlan | None = None
    if is_apex:
        plan = _apex_plan(path, samp, cfg, detector, scout, apex_cfg)
        frames = load_frames(path, plan.sampling)
    elif frames is None:
        frames = load_frames(path, samp)
    own = detector is None
    det = detector or MediaPipeAnnotator(cfg)
    try:
        if own:
            det.__enter__()
        frame_anns = annotate_frames(frames, det, progress)
        version = det.version
        apply_geometry(frame_anns, still=len(frames) == 1)
        annotate_occlusion(frame_anns, [fr.image for fr in frames])
    finally:
        if own:
            det.close()
    clip = ClipAnnotation(
        source=str(path),
        sha256=sha,
        sampling=str(samp),
        frames=frame_anns,
        shots=detect_shots([fr.image for fr in frames]),
        detectors={
            "faces": f"{version} FaceLandmarker",
            "pose": f"{version} PoseLandmarker" if cfg.pose else "off",
            "aus": "sovtp blendshape→AU table v3 + landmark geometry v2 + occlusion v1",
            "shots": "sovtp colour-histogram cuts v1",
            "config": str(cfg.key()),
        },
    )
    if cfg.hands:  # recorded only when on: the NFBL cues read it (a clip without stays as it was)
        clip.detectors["hands"] = f"{version} HandLandmarker"
    if plan is not None:
        clip.detectors["frames"] = str(plan.sampling)
        clip.detectors["apex"] = f"{apex_cfg.key()}; {plan.summary()}"
    clip.cues = clip_cues(clip)
    # exactly the values the cache keeps (landmarks to 0.01 px, ...): a fresh annotation and a
    # cache hit draw the same pixels, so the images sent — and the response-cache keys — agree
    clip = ClipAnnotation.from_dict(clip.to_dict())
    if store is not None:
        store.put(key, clip)
    return clip, frames


def _apex_plan(
    path: str | Path,
    samp: Sampling,
    cfg: DetectorConfig,
    detector: MediaPipeAnnotator | None,
    scout: MediaPipeAnnotator | None,
    apex_cfg: ApexConfig,
) -> ApexPlan:
    """The apex pass with the cheapest open annotator at hand (pose costs ~3× the face)."""
    if scout is None and detector is not None and not detector.config.pose:
        scout = detector
    if scout is not None:
        return scan(path, samp, scout, apex_cfg)
    with MediaPipeAnnotator(replace(cfg, pose=False)) as own:
        return scan(path, samp, own, apex_cfg)
