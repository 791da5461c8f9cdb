"""media → ClipAnnotation: decode the sampled frames, detect, track, link, derive cues; cached."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sovtp.annotate.cache import AnnotationCache, cache_key, file_sha256
from sovtp.annotate.cues import clip_cues
from sovtp.annotate.geometry import apply_geometry
from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
from sovtp.annotate.tracking import FaceTracker, link_faces_to_persons
from sovtp.media.sampling import Sampling
from sovtp.media.video import iter_frames
from sovtp.types import ClipAnnotation, Frame, FrameAnnotation

log = logging.getLogger(__name__)


def annotate_frames(
    frames: list[Frame], detector: MediaPipeAnnotator, progress: Callable[[int], None] | None = None
) -> list[FrameAnnotation]:
    """Detect on each frame, then give faces stable IDs and link them to bodies."""
    tracker = FaceTracker()
    out = []
    for fr in frames:
        fa = detector.detect(fr.image, fr.index, fr.timestamp_s)
        tracker.update(fa)
        link_faces_to_persons(fa)
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
) -> tuple[ClipAnnotation, list[Frame]]:
    """Annotate one clip or image; returns the annotation and the decoded sampled frames.

    ``cache=True`` uses the user cache, ``False``/``None`` disables it, or pass an
    :class:`AnnotationCache`.  On a hit no detector runs (``clip.cached`` is True); the frames are
    still decoded, because drawing marks needs their pixels.  Pass ``detector`` to reuse open
    landmarkers across many clips (a benchmark); otherwise one is opened and closed here.
    """
    samp = Sampling.parse(sampling)
    cfg = detector.config if detector is not None else (config or DetectorConfig())
    store = AnnotationCache() if cache is True else (cache or None)
    sha = file_sha256(path)
    key = cache_key(sha, str(samp), cfg.key())
    if frames is None:
        frames = list(iter_frames(path, samp))
    if store is not None:
        hit = store.get(key)
        if hit is not None:
            log.info("annotation cache hit for %s", path)
            hit.source = str(path)
            return hit, frames
    own = detector is None
    det = detector or MediaPipeAnnotator(cfg)
    try:
        if own:
            det.__enter__()
        frame_anns = annotate_frames(frames, det, progress)
        version = det.version
        apply_geometry(frame_anns, still=len(frames) == 1)
    finally:
        if own:
            det.close()
    clip = ClipAnnotation(
        source=str(path),
        sha256=sha,
        sampling=str(samp),
        frames=frame_anns,
        detectors={
            "faces": f"{version} FaceLandmarker",
            "pose": f"{version} PoseLandmarker" if cfg.pose else "off",
            "aus": "sovtp blendshape→AU table v1",
            "config": str(cfg.key()),
        },
    )
    clip.cues = clip_cues(clip)
    if store is not None:
        store.put(key, clip)
    return clip, frames
