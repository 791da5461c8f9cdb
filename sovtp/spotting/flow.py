"""Optical-flow micro-expression spotting, the MEGC baseline's recipe on MediaPipe landmarks.

Why this shape: a micro-expression is a small, brief, local movement (≤ 0.5 s) inside a long
video in which the head also drifts.  So, per frame ``t`` of the subject's face:

1. **Align.**  Each frame ``t`` fixes the similarity transform that brings its *stable*
   landmarks — nose root, nose bridge and tip, eye corners, which expressions barely move —
   onto where they sit in the reference frame (eyes level, a set eye span in a
   ``crop``×``crop`` image), and frames ``t``, ``t−k`` and ``t+k`` are all cut with that one
   transform.  Landmark jitter then moves all three crops alike and cancels in the flow; only
   real motion between the frames is left.
2. **Flow against a sliding reference.**  Dense optical flow (OpenCV DIS, or Farnebäck) from
   crop ``t`` to crop ``t−k`` and to crop ``t+k`` (``k`` ≈ half a micro-expression, as in
   MEGC's MDMD baseline, where ``k`` is half the dataset's mean ME length).  Both fields are
   anchored on frame ``t``'s pixels, so their mean is the second difference of motion: a pixel
   moving at constant speed (slow drift, a steady head turn) cancels out, while a face region
   that went somewhere and came back within ``2k`` frames — a micro-expression, at its apex —
   does not.
3. **Stabilise by the nose root.**  What alignment left of global motion is the same in every
   region; the median flow over the nose-root box (which no expression moves) is subtracted
   from the whole field.
4. **Regions.**  Per region (brows, eyes, nose wings, mouth — boxes around their landmarks in the
   reference frame) the frame's value is the mean of its largest flow magnitudes (the top
   ``top`` share, MDMD's "main direction" reduced to magnitude); the frame's signal is the
   largest region value, smoothed by a moving average.
5. **Peaks → intervals.**  Peaks above ``mean + p·(max − mean)`` of the video's signal (MEGC's
   threshold; the baseline sweeps ``p``), at least one ME length apart, each become the interval
   ``[peak − L/2, peak + L/2]`` with ``L`` the default ME length at the dataset's fps.

Eye regions also fire on blinks (MEGC methods often mask them): drop them with ``regions=``.
Frames are expected consecutive (every frame of the video); ``k`` and ``L`` count positions in
the sequence given.  Frames stream through a window of ``2k+1`` (shrunk first when the face is
much larger than the crop), and flow runs on the small crops: two DIS flows per frame, ~10 ms
on one CPU core at 128 px.  The landmarks come from the annotation (:func:`subject_track`) and
may be sparser than the frames — they are interpolated.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sovtp.errors import SovtpError
from sovtp.types import ClipAnnotation, Frame, FrameAnnotation

# MediaPipe 478-point indices.  Stable: nose root (168), bridge (6, 197, 195), tip (5, 4), inner
# and outer eye corners (133, 362, 33, 263).
STABLE: tuple[int, ...] = (168, 6, 197, 195, 5, 4, 133, 362, 33, 263)
NOSE_ROOT: tuple[int, ...] = (168, 6, 197, 195)
# the subject's right is the image's left in a frontal face (geometry.py's convention)
REGIONS: dict[str, tuple[int, ...]] = {
    "brow_right": (70, 63, 105, 66, 107, 46, 53, 52, 65, 55),
    "brow_left": (300, 293, 334, 296, 336, 276, 283, 282, 295, 285),
    "eye_right": (33, 133, 159, 145, 160, 144, 158, 153),
    "eye_left": (263, 362, 386, 374, 387, 373, 385, 380),
    "nose": (48, 64, 98, 129, 278, 294, 327, 358),
    "mouth": (61, 291, 0, 17, 37, 267, 84, 314, 40, 270, 91, 321),
}
_EYES = ((33, 133), (263, 362))  # (outer, inner) corners, subject's right then left


@dataclass(frozen=True)
class FlowConfig:
    """Everything that changes what the spotter finds (``key()`` goes into result rows)."""

    me_seconds: float = 0.4  # default ME length: MEGC's baseline uses k=6 @30 fps, 37 @200 fps
    k: int | None = None  # reference distance in frames; None: half the ME length
    p: float = 0.5  # threshold = mean + p·(max − mean) of the video's signal
    min_height: float = 0.0  # absolute floor on a peak (crop pixels); 0: relative threshold only
    smooth: int | None = None  # moving-average window (frames); None: about k/2, odd
    method: str = "dis"  # "dis" | "farneback"
    crop: int = 128  # side of the aligned face crop, pixels
    eye_span: float = 0.47  # outer-eye-corner distance as a share of the crop side
    top: float = 0.3  # share of a region's largest flow magnitudes that make its value
    pad: float = 0.12  # region box margin, in eye spans
    align_window: int = 5  # stable landmarks are averaged over this many annotated frames
    regions: tuple[str, ...] = tuple(REGIONS)

    def length(self, fps: float) -> int:
        """The default ME length in frames (odd, ≥ 3)."""
        n = max(3, int(round(self.me_seconds * fps)))
        return n if n % 2 else n + 1

    def k_frames(self, fps: float) -> int:
        return self.k if self.k is not None else max(1, self.length(fps) // 2)

    def smooth_frames(self, fps: float) -> int:
        w = self.smooth if self.smooth is not None else max(1, self.k_frames(fps) // 2)
        return w if w % 2 else w + 1

    def key(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SpotResult:
    """What the spotter found in one video, and the signal it found it in."""

    intervals: list[tuple[int, int, str | None]]  # inclusive frame indices of the video
    peaks: list[int]  # frame indices of the peaks
    signal: np.ndarray  # smoothed per-frame signal (max over regions)
    regions: dict[str, np.ndarray]  # raw per-region values
    threshold: float
    frame_indices: list[int]
    fps: float
    config: FlowConfig = field(default_factory=FlowConfig)

    def region_at(self, frame_index: int) -> str:
        """The region that moved most at a frame (what a cue can name)."""
        i = self.frame_indices.index(frame_index)
        return max(self.regions, key=lambda r: self.regions[r][i])

    def to_dict(self) -> dict[str, Any]:
        return {
            "intervals": [list(iv) for iv in self.intervals],
            "peaks": list(self.peaks),
            "regions_at_peaks": [self.region_at(p) for p in self.peaks],
            "threshold": round(float(self.threshold), 5),
            "fps": self.fps,
            "config": self.config.key(),
        }


# --------------------------------------------------------------------------- landmarks


class LandmarkTrack:
    """One face's landmarks over a video, from annotated frames (any sampling): the stable
    points smoothed over ``window`` annotated frames and interpolated at any frame index."""

    def __init__(self, known: Mapping[int, np.ndarray], window: int = 5):
        if not known:
            raise SovtpError("no landmarks for the subject: spotting needs an annotated face")
        self.index = np.array(sorted(known), dtype=float)
        full = np.stack([np.asarray(known[int(i)], dtype=np.float64) for i in self.index])
        if full.shape[1] < 468:
            raise SovtpError("spotting needs MediaPipe's 478 landmarks (mediapipe478 scheme)")
        self.reference = full[0]  # all points of the first annotated frame
        stable = full[:, STABLE, :]
        w = max(1, int(window))
        if w > 1 and len(stable) > 1:
            pad = w // 2
            ext = np.concatenate([stable[:1].repeat(pad, 0), stable, stable[-1:].repeat(pad, 0)])
            c = np.cumsum(np.concatenate([np.zeros_like(ext[:1]), ext]), axis=0)
            stable = (c[w:] - c[:-w])[: len(self.index)] / w
        self.stable = stable  # K×P×2

    def stable_at(self, frame_index: int) -> np.ndarray:
        """P×2 stable points at a frame (linear between annotated frames, held at the ends)."""
        x = float(frame_index)
        out = np.empty(self.stable.shape[1:])
        for j in range(self.stable.shape[1]):
            for d in (0, 1):
                out[j, d] = np.interp(x, self.index, self.stable[:, j, d])
        return out


def subject_track(
    clip: ClipAnnotation, subject: int | None = None, window: int = 5
) -> LandmarkTrack:
    """The landmarks of ``subject`` (a track ID; None: the largest face) over the clip."""
    ids = clip.track_ids
    if not ids:
        raise SovtpError(f"{clip.source}: no face was annotated, nothing to spot")
    if subject is None:
        subject = max(ids, key=lambda t: (np.mean([f.area for f in clip.faces_of(t)]), -t))
    known = {}
    for fa in clip.frames:
        f = fa.face(subject)
        if f is not None and f.landmarks is not None and f.landmark_scheme == "mediapipe478":
            known[fa.index] = f.landmarks
    return LandmarkTrack(known, window)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2×3 least-squares similarity (rotation, uniform scale, shift) taking src to dst
    (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(d0.T @ s0 / len(src))
    dm = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        dm[1, 1] = -1.0
    r = u @ dm @ vt
    c = float(np.trace(np.diag(sv) @ dm) / ((s0**2).sum() / len(src)))
    return np.hstack([c * r, (mu_d - c * r @ mu_s)[:, None]])


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def reference_layout(
    track: LandmarkTrack, cfg: FlowConfig
) -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]], tuple[int, int, int, int]]:
    """Where the stable points go in the crop, the region boxes (x0, y0, x1, y1) and the
    nose-root box — all from the reference frame, levelled and scaled so the outer eye
    corners sit ``eye_span`` of the crop apart."""
    ref = track.reference
    eyes = np.array([ref[list(e)].mean(0) for e in _EYES])
    s = cfg.crop
    span = cfg.eye_span * s
    # the eye centres (means of the corners) keep the reference's ratio to the outer span
    outer = np.linalg.norm(ref[_EYES[0][0]] - ref[_EYES[1][0]])
    centre_span = np.linalg.norm(eyes[1] - eyes[0])
    target_span = span * centre_span / max(outer, 1e-6)
    mid = np.array([s / 2, 0.36 * s])
    target = np.array([mid - [target_span / 2, 0], mid + [target_span / 2, 0]])
    # a similarity fixed by two point pairs
    m = similarity(np.vstack([eyes, eyes.mean(0, keepdims=True)]), np.vstack([target, [mid]]))
    placed = _apply(m, ref)
    margin = cfg.pad * span

    def box(ix: Iterable[int]) -> tuple[int, int, int, int]:
        p = placed[list(ix)]
        x0, y0 = np.floor(p.min(0) - margin).astype(int)
        x1, y1 = np.ceil(p.max(0) + margin).astype(int)
        return max(0, x0), max(0, y0), min(s, x1 + 1), min(s, y1 + 1)

    unknown = [r for r in cfg.regions if r not in REGIONS]
    if unknown:
        raise SovtpError(f"unknown spotting regions {unknown}; known: {', '.join(REGIONS)}")
    return placed[list(STABLE)], {r: box(REGIONS[r]) for r in cfg.regions}, box(NOSE_ROOT)


# --------------------------------------------------------------------------------- flow


def _flow_fn(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import cv2

    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise SovtpError(f"unknown flow method {method!r}; use dis or farneback")


def _grey(img: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    g = img if img.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return g


def prescale(track: LandmarkTrack, cfg: FlowConfig) -> float:
    """How much frames are shrunk before anything else (≤ 1): a face far larger than the crop
    is kept at twice the crop's scale, so the frames a window holds stay small."""
    ref = track.reference
    span = float(np.linalg.norm(ref[_EYES[0][0]] - ref[_EYES[1][0]]))
    return min(1.0, 2.0 * cfg.eye_span * cfg.crop / max(span, 1e-6))


def aligned_triples(
    frames: Iterable[tuple[int, np.ndarray]], track: LandmarkTrack, cfg: FlowConfig, k: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """``(frame index, crop t, crop t−k, crop t+k)`` for every frame, streamed.

    All three crops of a window are cut with frame ``t``'s transform, so an error in that
    transform (landmark jitter) is the same in all three and cancels in the flow; only real
    motion between the frames remains, and the second difference and the nose root take the
    head's share of it out.  At the ends, ``t−k`` and ``t+k`` are clamped to the video.  Only
    ``2k+1`` (pre-shrunk) frames are held at once.
    """
    import cv2

    canon, _, _ = reference_layout(track, cfg)
    pre = prescale(track, cfg)
    buf: deque[tuple[int, np.ndarray]] = deque(maxlen=2 * k + 1)
    total = 0
    done = 0

    def emit(t: int, last: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        first = total - len(buf)  # the video position of buf[0]
        idx, g = buf[t - first]
        m = similarity(track.stable_at(idx) * pre, canon)

        def cut(img: np.ndarray) -> np.ndarray:
            return cv2.warpAffine(
                img,
                m,
                (cfg.crop, cfg.crop),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )

        prev = buf[max(0, t - k) - first][1]
        nxt = buf[min(last, t + k) - first][1]
        return idx, cut(g), cut(prev), cut(nxt)

    for i, img in frames:
        buf.append((int(i), _grey(img, pre)))
        total += 1
        while done + k <= total - 1:  # the centre's t+k has arrived
            yield emit(done, total - 1)
            done += 1
    if total == 0:
        raise SovtpError("no frames to spot in")
    while done < total:
        yield emit(done, total - 1)
        done += 1


def _top_mean(m: np.ndarray, share: float) -> float:
    flat = m.ravel()
    n = max(1, int(round(share * flat.size)))
    return float(np.partition(flat, flat.size - n)[flat.size - n :].mean())


def frame_values(
    crop: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    boxes: Mapping[str, tuple[int, int, int, int]],
    nose: tuple[int, int, int, int] | None,
    flow: Callable[[np.ndarray, np.ndarray], np.ndarray],
    top: float,
) -> dict[str, float]:
    """Per region: the top-share mean magnitude of the second-difference flow
    ``(F(t→t−k) + F(t→t+k)) / 2``, less the nose root's median flow."""
    d = np.zeros((*crop.shape, 2), np.float32)
    if before is not crop:
        d += flow(crop, before)
    if after is not crop:
        d += flow(crop, after)
    d /= 2.0
    if nose is not None:
        x0, y0, x1, y1 = nose
        d -= np.median(d[y0:y1, x0:x1].reshape(-1, 2), axis=0)
    mag = np.hypot(d[..., 0], d[..., 1])
    return {r: _top_mean(mag[y0:y1, x0:x1], top) for r, (x0, y0, x1, y1) in boxes.items()}


def smooth(x: np.ndarray, w: int) -> np.ndarray:
    """Centred moving average (edges averaged over what exists)."""
    if w <= 1 or len(x) < 2:
        return np.asarray(x, dtype=float)
    ker = np.ones(w)
    return np.convolve(x, ker, "same") / np.convolve(np.ones(len(x)), ker, "same")


def find_intervals(
    signal: np.ndarray, frame_indices: list[int], fps: float, cfg: FlowConfig
) -> tuple[list[tuple[int, int, str | None]], list[int], float]:
    """Peaks above ``mean + p·(max − mean)`` (and ``min_height``), at least one ME length
    apart → ``[peak − L/2, peak + L/2]`` intervals (inclusive, clipped to the video)."""
    from scipy.signal import find_peaks

    sig = np.asarray(signal, dtype=float)
    if sig.size == 0:
        return [], [], 0.0
    thr = float(sig.mean() + cfg.p * (sig.max() - sig.mean()))
    length = cfg.length(fps)
    pk, _ = find_peaks(
        np.r_[-np.inf, sig, -np.inf], height=max(thr, cfg.min_height), distance=length
    )
    pk = [int(p) - 1 for p in pk]
    half, last = length // 2, len(sig) - 1
    ivs = [(frame_indices[max(0, p - half)], frame_indices[min(last, p + half)], None) for p in pk]
    return ivs, [frame_indices[p] for p in pk], thr


def spot_frames(
    frames: Iterable[tuple[int, np.ndarray]],
    track: LandmarkTrack,
    fps: float,
    cfg: FlowConfig | None = None,
    stabilise: bool = True,
) -> SpotResult:
    """Spot in consecutive ``(frame index, RGB or grey image)`` pairs of one face.
    ``stabilise=False`` skips the nose-root subtraction (for ablation)."""
    cfg = cfg or FlowConfig()
    _, boxes, nose = reference_layout(track, cfg)
    k = cfg.k_frames(fps)
    flow = _flow_fn(cfg.method)
    idx: list[int] = []
    rows: list[dict[str, float]] = []
    for i, c, b, a in aligned_triples(frames, track, cfg, k):
        idx.append(i)
        rows.append(frame_values(c, b, a, boxes, nose if stabilise else None, flow, cfg.top))
    regions = {r: np.array([v[r] for v in rows]) for r in boxes}
    raw = np.max(np.stack(list(regions.values())), axis=0)
    sig = smooth(raw, cfg.smooth_frames(fps))
    ivs, peaks, thr = find_intervals(sig, idx, fps, cfg)
    return SpotResult(ivs, peaks, sig, regions, thr, idx, fps, cfg)


def spot_clip(
    clip: ClipAnnotation,
    frames: list[Frame],
    fps: float,
    cfg: FlowConfig | None = None,
    subject: int | None = None,
) -> SpotResult:
    """Spot in decoded frames (sampling ``all``) with the clip's annotation for landmarks."""
    cfg = cfg or FlowConfig()
    track = subject_track(clip, subject, cfg.align_window)
    return spot_frames(((f.index, f.image) for f in frames), track, fps, cfg)


def stream_landmarks(
    path: str | Path, sampling: str, detector: Any, cache: bool = False
) -> ClipAnnotation:
    """The flow spotter's landmark pass, streamed: each sampled frame is decoded, its faces
    detected and tracked (stable IDs, as :func:`sovtp.annotate.pipeline.annotate_frames`
    gives them), and its pixels dropped — only the faces' annotations are kept.

    Why not ``Preparer.annotate``: that pass returns the decoded frames (and keeps them for
    occlusion and shot detection), ~0.7 MB per 640×360 frame — at ``fps:5`` 2.1 GB for ten
    minutes, which made spot's peak memory grow with the video (0.80 GB at 2 min, 2.78 GB at
    10).  Here memory grows only by the landmarks (~10 kB per annotated face).  ``cache``
    reads a full annotation of the same media, sampling and detector from the annotation cache
    when there is one (it holds these faces and more); this pass never writes one, since it
    is not the full annotation the cache's other readers expect."""
    from sovtp.annotate.tracking import FaceTracker
    from sovtp.media.sampling import Sampling
    from sovtp.media.video import iter_frames

    samp = Sampling.parse(sampling)
    if cache:
        from sovtp.annotate.cache import AnnotationCache, cache_key, file_sha256

        hit = AnnotationCache().get(cache_key(file_sha256(path), str(samp), detector.config.key()))
        if hit is not None:
            hit.source = str(path)
            return hit
    detector.start_clip()  # a new clip: follow nothing from the last one
    tracker = FaceTracker()
    frames: list[FrameAnnotation] = []
    for fr in iter_frames(path, samp):
        fa = detector.detect(fr.image, fr.index, fr.timestamp_s)
        tracker.update(fa)
        fa.persons = []  # the spotter reads faces only
        frames.append(fa)
    return ClipAnnotation(source=str(path), sha256="", sampling=str(samp), frames=frames)


def spot_media(
    path: str | Path,
    clip: ClipAnnotation,
    fps: float,
    cfg: FlowConfig | None = None,
    subject: int | None = None,
    start_frame: int | None = None,
    end_frame: int | None = None,
) -> SpotResult:
    """Spot in every frame of a video or frame folder, decoded as a stream; the annotation
    (any sampling — every frame, or ``fps:…`` for long videos) gives the landmarks.
    ``start_frame``/``end_frame`` (inclusive) restrict it to a stretch of the video."""
    from sovtp.media.sampling import Sampling
    from sovtp.media.video import iter_frames, probe

    cfg = cfg or FlowConfig()
    track = subject_track(clip, subject, cfg.align_window)
    if start_frame is None and end_frame is None:
        samp: Sampling | str = "all"
    else:
        n = probe(path).n_frames if end_frame is None else end_frame + 1
        samp = Sampling("indices", indices=tuple(range(start_frame or 0, n)))
    frames = ((f.index, f.image) for f in iter_frames(path, samp))
    return spot_frames(frames, track, fps, cfg)
