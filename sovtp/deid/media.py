"""``sovtp deid MEDIA -o OUT``: a de-identified copy of a video, an image or an audio file.

A video goes through the one writer (:mod:`sovtp.deid.media_writer`): every frame through the
faces stage (streamed, ``bridge`` frames of look-ahead), the audio track through McAdams
anonymisation (:func:`sovtp.deid.voice.anonymise_audio`), every other stream and the container
metadata dropped.  An image is written with its faces obscured; an audio file comes out
anonymised.  ``blur="others"`` keeps the clip's largest face track (the subject) — it needs a
first pass over the frames to know which track that is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sovtp.annotate.cache import file_sha256
from sovtp.deid.faces import BLUR_WHO, CENTERFACE_EVERY, WORKERS, FaceFinder, deidentify_frames
from sovtp.deid.media_writer import refuse_overwrite
from sovtp.deid.policy import check_mode
from sovtp.deid.tracks import BRIDGE
from sovtp.deid.voice import DEFAULT_ALPHA

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def _decode_all(src: Path) -> Iterator[np.ndarray]:
    import av

    from sovtp.media.video import upright

    with av.open(str(src)) as inp:
        for f in inp.decode(inp.streams.video[0]):
            yield upright(f)  # rotation applied, as the writing pass does


def deid_media(
    src: str | Path,
    dst: str | Path,
    mode: str = "blur",
    blur: str = "all",
    *,
    voice: bool = True,
    alpha: float | tuple[float, float] = DEFAULT_ALPHA,
    seed: int | str | None = 0,
    bridge: int = BRIDGE,
    centerface_every: int = CENTERFACE_EVERY,
    max_side: int = 640,
    crf: int = 20,
    recheck: int = 2,
    workers: int = WORKERS,
    preset: str = "veryfast",
) -> dict[str, Any]:
    """Write a de-identified copy of ``src`` to ``dst``; returns what was done (frames, faces,
    audio treatment, seconds).  ``centerface_every``: the full scans' stride (see
    :func:`sovtp.deid.faces.scan`); ``recheck``: rounds of looking again where a frame was
    obscured; ``workers``: threads scanning and verifying frames at once (see
    :func:`sovtp.deid.faces.deidentify_stream`); ``preset``: x264's (see
    :func:`sovtp.deid.media_writer.encode_media`).  ``voice=False`` keeps the audio as it is
    (re-encoded) — the report says so, because that audio still identifies the speaker."""
    check_mode(mode)
    if blur not in BLUR_WHO:
        raise ValueError(f"blur must be one of {', '.join(BLUR_WHO)}")
    src, dst = Path(src), Path(dst)
    refuse_overwrite(src, dst)  # the same path, or a hard link / symlink to it
    t0 = time.perf_counter()
    if src.suffix.lower() in IMAGE_EXTS:
        return _deid_image(src, dst, mode, blur, max_side) | {
            "seconds": round(time.perf_counter() - t0, 3)
        }
    from sovtp.deid.faces import deidentify_stream
    from sovtp.deid.media_writer import write_media

    # a range's α is keyed on the file's bytes, not its name: clip.wav in every subject's folder
    # would otherwise draw one α for the whole corpus
    key = file_sha256(src) if isinstance(alpha, tuple) else src.name
    audio_fn, audio_note, alpha_used = _audio_stage(voice, alpha, seed, key)
    stats: dict[str, Any] = {}
    with FaceFinder(max_side=max_side) as finder:
        keep: set[int] = set()
        dets = None
        if blur == "others" and _has_video(src):
            from sovtp.deid.faces import plan_detections

            # one detection pass: the second (obscuring) pass reuses these detections
            subject, dets = plan_detections(
                _decode_all(src), finder, bridge, centerface_every, workers
            )
            keep = {subject} if subject is not None else set()

        def frames_fn(frames):
            return deidentify_stream(
                (vf.image for vf in frames),
                mode,
                finder=finder,
                bridge=bridge,
                keep_tracks=keep,
                centerface_every=centerface_every,
                recheck=recheck,
                stats=stats,
                detections=dets,
                workers=workers,
            )

        info = write_media(
            src, dst, video_frames_fn=frames_fn, audio_fn=audio_fn, crf=crf, preset=preset
        )
    return {
        **info,
        "mode": mode,
        "blur": blur,
        "face_tracks": stats.get("tracks", 0),
        "regions_obscured": stats.get("regions", 0),
        "regions_rechecked": stats.get("rechecked", 0),
        "audio": audio_note if info.get("audio_s") else "no audio track",
        **({"alpha": alpha_used} if info.get("audio_s") and alpha_used is not None else {}),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _has_video(src: Path) -> bool:
    import av

    with av.open(str(src)) as c:
        return bool(c.streams.video)


def _audio_stage(voice: bool, alpha, seed, key: str):
    """(audio_fn, what the report says about the audio, the α used or None).  A range's α is
    drawn here, once, and the audio goes through exactly that α: with ``seed=None`` (OS entropy)
    a second draw would differ from the one reported."""
    if not voice:
        return None, "kept unchanged (re-encoded): the voice still identifies the speaker", None
    try:
        from sovtp.deid.voice import anonymise_audio, draw_alpha
    except ImportError:
        return None, "copied unchanged: voice anonymisation is not available in this install", None

    used = draw_alpha(seed, key, *alpha) if isinstance(alpha, tuple) else float(alpha)

    def fn(x: np.ndarray, rate: int) -> np.ndarray:
        return anonymise_audio(x, rate, alpha=used)

    if isinstance(alpha, tuple):
        how = f"seed {seed}" if seed is not None else "OS entropy: not reproducible"
        return fn, f"McAdams-anonymised (α {used:.3f}, drawn in {alpha} with {how})", used
    return fn, f"McAdams-anonymised (α {used})", used


def _deid_image(src: Path, dst: Path, mode: str, blur: str, max_side: int) -> dict[str, Any]:
    from PIL import Image

    from sovtp.deid.tracks import largest_track, merge
    from sovtp.media.image import load_image
    from sovtp.types import Frame

    img = load_image(src)
    regions: list = []
    with FaceFinder(max_side=max_side) as finder:
        keep = None
        if blur == "others":
            from sovtp.deid.tracks import FaceTracks

            found = finder.find(img)  # one look: the obscuring pass reuses it
            tr = FaceTracks()
            tr.add(0, merge(found))
            keep = {largest_track(tr)} - {None}
            # our track IDs double as annotation IDs here: tag each detection with its own
            from sovtp.types import Face, FrameAnnotation

            ann = FrameAnnotation(
                0,
                0.0,
                (img.shape[1], img.shape[0]),
                [Face(t.tid, t.seen[0].box) for t in tr.tracks],
            )
            out = deidentify_frames(
                [Frame(0, 0.0, img)],
                [ann],
                mode,
                keep,
                finder=finder,
                report=regions,
                detections=[found],
            )
        else:
            out = deidentify_frames([Frame(0, 0.0, img)], None, mode, finder=finder, report=regions)
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(out[0].image).save(dst)
    regs = regions[0] if regions else []
    return {
        "video_frames": 0,
        "image": str(dst),
        "mode": mode,
        "blur": blur,
        "regions_obscured": sum(not r.kept for r in regs),
        "audio": "no audio track",
    }
