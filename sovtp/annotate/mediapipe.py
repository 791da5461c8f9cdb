"""MediaPipe Tasks detectors: FaceLandmarker (478 points, 52 blendshapes, face transform) and
PoseLandmarker (33 keypoints per person), wrapped to return sovtp's own types.

Finding faces and following them are two costs.  The *search* (IMAGE mode over the whole frame,
or over overlapping square tiles of a wide one, because the landmarker's face detector sees a
128-px letterbox and misses small faces) runs on a clip's first frame, whenever a followed face is
lost, and when a periodic *look* — MediaPipe's face detector alone over the same windows, every
``search_every`` frames or ``search_every_s`` seconds — sees a face not followed yet.  Between
searches each face is *followed* in a square crop around its last box by a VIDEO-mode landmarker
of its own (one face each): in VIDEO mode MediaPipe reuses the last landmarks as the region of
interest and skips its face detector, and since every crop is centred on its face, that region
stays right as the crop moves with the face.  One landmark run per face replaces the 3–4
landmarker windows of a tiled search, and followed landmarks stay within ~1 px of a search's.
Frames seconds apart are all looked at (``search_every_s``), and a face that left its crop is
searched for again, so sparse sampling costs speed, never faces.  The detector is a context
manager because MediaPipe's graphs must be closed before interpreter teardown.

With ``DetectorConfig(hands=True)`` each frame also goes through the HandLandmarker
(:mod:`sovtp.annotate.hands`, VIDEO mode along a clip) for the NFBL cues; off by default.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from sovtp import assets
from sovtp.annotate import tasks
from sovtp.annotate.aus import SOURCE, blendshapes_to_aus
from sovtp.annotate.detector import DetectorConfig
from sovtp.annotate.windows import (
    _crop_window,
    _cut_by_tile,
    _dedupe,
    _dedupe_boxes,
    _landmarks,
    _tiles,
)
from sovtp.types import Face, FrameAnnotation, Person

log = logging.getLogger(__name__)


def head_pose_from_matrix(m: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from MediaPipe's 4×4 facial transformation matrix.

    Conventions, in the image as seen: yaw > 0 — the face turns towards the image's right;
    pitch > 0 — the face tilts down; roll > 0 — the head leans clockwise in the image.
    """
    r = np.asarray(m, dtype=np.float64)[:3, :3]
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, r[0, 2]))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(-r[1, 0], r[0, 0]))
    return yaw, pitch, roll


class MediaPipeAnnotator:
    """Runs the landmarkers on RGB frames; use as ``with MediaPipeAnnotator(cfg) as det: ...``."""

    name = "mediapipe"

    def __init__(self, config: DetectorConfig | None = None, models_dir: str | None = None):
        self.config = config or DetectorConfig()
        self._models_dir = models_dir
        self._face = None
        self._pose = None
        self._followers: list = []  # VIDEO-mode landmarkers, one face each, made on demand
        self._follower_ts: list[int] = []  # (both per clip: start_clip closes them)
        self._face_asset: str | None = None
        self._scanner = None  # FaceDetector for the periodic look for new faces
        self._scanner_model: bytes | None = None
        self._hands = None  # HandAnnotator, when config.hands
        self.calls = 0  # frames run through the detectors; benchmarks count annotation passes
        self.searches = 0  # of which searched whole (the rest followed known faces in crops)
        self.scans = 0  # followed frames where the face detector alone looked for new faces
        self.pose_searches = 0  # frames whose bodies were searched whole (the rest followed)
        self._pose_asset: str | None = None
        self._pool: ThreadPoolExecutor | None = None  # runs the body pass beside the faces
        self.start_clip()

    def start_clip(self) -> None:
        """Forget the faces being followed: the next frame is searched whole.

        Call it before each clip when one annotator serves many; a frame whose index or
        timestamp does not move forward, or whose size changes, also starts a new clip.
        """
        self._boxes: list[tuple[float, float, float, float]] = []
        # A VIDEO-mode landmarker keeps the last frame's landmarks as its region of interest and
        # smooths over time: kept across clips, a clip's landmarks would depend on which clip the
        # same annotator saw before (the order a worker pool hands clips out).  Made anew.
        for lm in getattr(self, "_followers", ()):
            lm.close()
        self._followers, self._follower_ts = [], []
        if getattr(self, "_pose_follower", None) is not None:
            self._pose_follower[1].close()
        # (bodies it was made for, VIDEO-mode PoseLandmarker, its clock): see _bodies
        self._pose_follower: tuple[int, object, list[int]] | None = None
        self._pose_since: int | None = None  # frames since the last pose search; None: none yet
        self._pose_ts = 0.0
        self._pose_found = 0  # bodies the last pose search found
        self._pose_lost = False  # the follower lost one: search the next frame
        self._last: tuple[int, float, tuple[int, int]] | None = None
        self._since_search: int | None = None  # frames since the last search; None: none yet
        self._faces_searched = False  # the last frame searched faces again (bodies follow suit)
        self._search_ts = 0.0
        if getattr(self, "_hands", None) is not None:
            self._hands.start_clip()

    @property
    def version(self) -> str:
        import mediapipe

        return f"mediapipe {mediapipe.__version__}"

    def __enter__(self) -> MediaPipeAnnotator:
        def asset(name: str) -> str:
            path = None
            if self._models_dir:
                path = f"{self._models_dir}/{assets.ASSETS[name].filename}"
            return str(assets.resolve(name, path))

        c = self.config
        self._face_asset = asset("face_landmarker")
        self._face = self._landmarker(False, c.max_faces)
        if c.pose:
            self._pose_asset = asset("pose_landmarker_full")
            self._pose = self._pose_landmarker(False, c.max_persons)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="sovtp-pose")
        if c.hands:
            from sovtp.annotate.hands import HandAnnotator

            path = None
            if self._models_dir:
                path = f"{self._models_dir}/{assets.ASSETS['hand_landmarker'].filename}"
            self._hands = HandAnnotator(c.hand_config(), path).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _landmarker(self, video: bool, num_faces: int):
        options = self.config.graph_options("FaceLandmarker", num_faces)
        return tasks.create("FaceLandmarker", self._face_asset, video=video, **options)

    def close(self) -> None:
        if self._pool is not None:  # a body pass still running finishes before its graph closes
            self._pool.shutdown()
            self._pool = None
        body = self._pose_follower[1] if self._pose_follower is not None else None
        for lm in (self._face, self._pose, self._scanner, self._hands, body, *self._followers):
            if lm is not None:
                lm.close()
        self._face = self._pose = self._scanner = self._hands = self._pose_follower = None
        self._followers, self._follower_ts = [], []

    def detect(
        self, image: np.ndarray, index: int = 0, timestamp_s: float = 0.0
    ) -> FrameAnnotation:
        """Faces and persons in one RGB uint8 frame; track IDs are left at 0 for the tracker."""

        if self._face is None:
            raise RuntimeError("MediaPipeAnnotator used outside its `with` block")
        h, w = image.shape[:2]
        # the whole frame as MediaPipe's image: the body pass needs it on every frame, the face
        # path only when it searches (following works on crops), so face-only makes it then
        mp_image = _mp_image(image) if self._pool is not None else None
        self.calls += 1
        last = self._last
        if last is None or index <= last[0] or timestamp_s <= last[1] or (w, h) != last[2]:
            self.start_clip()
        self._last = (index, timestamp_s, (w, h))
        # Bodies on the worker thread while faces run here: each MediaPipe graph infers on one
        # thread (XNNPACK's default on Linux) and waits without the GIL, so on two cores the
        # frame costs about the larger of the two instead of their sum.  Neither reads the
        # other's state: the result is what running them one after the other gives.
        searched, self._faces_searched = self._faces_searched, False
        bodies = None
        if self._pool is not None:
            bodies = self._pool.submit(self._bodies, mp_image, timestamp_s, searched)
        try:
            faces = self._read_faces(image, mp_image, index, timestamp_s)
        except BaseException:
            if bodies is not None:  # its graph must be idle before anything closes it
                wait([bodies])
            raise
        persons: list[Person] = []
        faces = _dedupe(faces)
        self._boxes = [f.bbox for f in faces[: self.config.max_faces]]
        if bodies is not None:
            pres = bodies.result()
            for j, lms in enumerate(pres.pose_landmarks):
                kp = np.array(
                    [(p.x * w, p.y * h, p.visibility or 0.0) for p in lms], dtype=np.float32
                )
                world = None
                if pres.pose_world_landmarks and j < len(pres.pose_world_landmarks):
                    world = np.array(
                        [(p.x, p.y, p.z) for p in pres.pose_world_landmarks[j]], dtype=np.float32
                    )
                persons.append(Person(track_id=0, keypoints=kp, world=world))
        hands = self._hands.detect(image, index, timestamp_s) if self._hands is not None else []
        return FrameAnnotation(index, timestamp_s, (w, h), faces, persons, hands)

    def _read_faces(
        self, image: np.ndarray, mp_image, index: int, timestamp_s: float
    ) -> list[Face]:
        """The frame's faces as sovtp's :class:`Face` (AUs from blendshapes, head pose)."""
        h, w = image.shape[:2]
        faces: list[Face] = []
        for i, pts3, res in self._faces(image, mp_image, index, timestamp_s):
            pts, depth = pts3[:, :2], pts3[:, 2]
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            bs = (
                {c.category_name: float(c.score) for c in res.face_blendshapes[i]}
                if res.face_blendshapes
                else {}
            )
            reading = blendshapes_to_aus(bs)
            pose = transform = None
            if res.facial_transformation_matrixes:
                transform = np.asarray(res.facial_transformation_matrixes[i], dtype=np.float32)
                pose = head_pose_from_matrix(transform)
            faces.append(
                Face(
                    track_id=0,
                    bbox=(
                        float(max(0, x0)),
                        float(max(0, y0)),
                        float(min(w, x1)),
                        float(min(h, y1)),
                    ),
                    score=1.0,
                    landmarks=pts,
                    blendshapes=bs,
                    aus=reading.aus,
                    au_sides=reading.sides,
                    au_source=SOURCE,
                    au_methods=dict.fromkeys(reading.aus, "blendshape"),
                    au_unmeasured=dict(reading.unmeasured),
                    head_pose=pose,
                    depth=depth,
                    transform=transform,
                )
            )
        return faces

    def _faces(self, image: np.ndarray, mp_image, index: int, timestamp_s: float):
        """The frame's faces, as ``_face_passes`` yields them: followed in crops around the last
        frame's faces when that is allowed and none is lost, else searched whole."""
        c = self.config
        since = self._since_search
        if since is None or not c.track:
            due = fresh = True
        else:
            fresh = False
            due = since + 1 >= c.search_every or timestamp_s - self._search_ts >= c.search_every_s
        if not fresh:
            found = list(self._follow(image))
            boxes = [(*p[:, :2].min(axis=0), *p[:, :2].max(axis=0)) for _, p, _ in found]
            # every face found, and each by its own crop (two crops on one face lose the other);
            # when a search is due, the face detector alone looks for faces not followed yet
            if (
                len(found) == len(self._boxes)
                and len(_dedupe_boxes(boxes)) == len(boxes)
                and not (due and self._unfollowed(image, boxes))
            ):
                self._since_search = 0 if due else since + 1
                if due:
                    self._search_ts = timestamp_s
                yield from found
                return
        self.searches += 1
        self._faces_searched = since is not None  # not the clip's first: someone came or went
        self._since_search, self._search_ts = 0, timestamp_s
        yield from self._face_passes(image, mp_image)

    def _bodies(self, mp_image, timestamp_s: float, faces_searched: bool):
        """The frame's PoseLandmarker result: searched (IMAGE mode, up to ``max_persons``) on a
        clip's first frame, after a frame that lost a body or searched faces anew (someone came
        or went), and every ``pose_search_every`` frames or ``pose_search_every_s`` seconds; else
        followed by a VIDEO-mode landmarker made for as many bodies as the last search found.

        A VIDEO-mode landmarker runs its person detector only while it tracks fewer bodies than
        ``num_poses``: made for ``max_persons`` it would detect on every frame, one body or not.
        Made for the found count, it runs the landmark model alone in regions taken from the last
        frame's keypoints (about half a search's cost).  Its clock is its own (wide steps, as
        the face followers')."""
        c = self.config
        since = self._pose_since
        follow = since is not None and c.pose_track and not (faces_searched or self._pose_lost)
        if (
            follow
            and since + 1 < c.pose_search_every
            and timestamp_s - self._pose_ts < c.pose_search_every_s
        ):
            self._pose_since = since + 1
            n = self._pose_found
            if n == 0:  # nobody at the last search: nobody until the next one
                return _NO_BODIES
            if self._pose_follower is None or self._pose_follower[0] != n:
                if self._pose_follower is not None:
                    self._pose_follower[1].close()
                lm = self._pose_landmarker(True, n)
                self._pose_follower = (n, lm, [0])
            _, lm, ts = self._pose_follower
            ts[0] += 1_000_000
            res = lm.detect_for_video(mp_image, ts[0])
            self._pose_lost = len(res.pose_landmarks) < n
            return res
        res = self._pose.detect(mp_image)
        self.pose_searches += 1
        self._pose_since, self._pose_ts, self._pose_lost = 0, timestamp_s, False
        self._pose_found = len(res.pose_landmarks)
        return res

    def _pose_landmarker(self, video: bool, num_poses: int):
        options = self.config.graph_options("PoseLandmarker", num_poses)
        return tasks.create("PoseLandmarker", self._pose_asset, video=video, **options)

    def _unfollowed(self, image: np.ndarray, boxes: list[tuple[float, ...]]) -> bool:
        """Whether MediaPipe's face detector (the landmarker's first stage, ~1/10 of its cost)
        sees, in the search's windows, a face centred outside every followed face: the periodic
        search for new faces, which costs a landmark pass only when there is one."""
        import mediapipe as mp

        if self._scanner is None:
            # kept alive beside the graph, whether or not MediaPipe copies it
            self._scanner_model = tasks.bundled_face_detector(self._face_asset)
            self._scanner = tasks.create(
                "FaceDetector",
                self._scanner_model,
                min_detection_confidence=self.config.min_face_confidence,
            )
        self.scans += 1
        h, w = image.shape[:2]
        # the whole frame too: a close-up that every tile cuts is whole there
        for x0, y0, side in [*(_tiles(w, h, self.config.tiles) or []), (0, 0, 0)]:
            win = image[y0 : y0 + side, x0 : x0 + side] if side else image
            res = self._scanner.detect(
                mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(win))
            )
            for d in res.detections:
                bb = d.bounding_box
                cx, cy = x0 + bb.origin_x + bb.width / 2, y0 + bb.origin_y + bb.height / 2
                if not any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes):
                    return True
        return False

    def _follow(self, image: np.ndarray):
        """Each known face in a square crop around its last box, by its own VIDEO-mode
        landmarker; stops at the first face lost (gone, or cut by its crop's edge)."""
        import mediapipe as mp

        h, w = image.shape[:2]
        for k, box in enumerate(self._boxes):
            if k == len(self._followers):
                self._followers.append(self._landmarker(True, 1))
                self._follower_ts.append(0)
            x0, y0, cw, ch = _crop_window(box, self.config.crop_scale, w, h)
            crop = np.ascontiguousarray(image[y0 : y0 + ch, x0 : x0 + cw])
            # Timestamps only need to grow per landmarker; wide steps keep its landmark
            # smoothing (a filter over time) from blending faces of unrelated frames.
            self._follower_ts[k] += 1_000_000
            res = self._followers[k].detect_for_video(
                mp.Image(image_format=mp.ImageFormat.SRGB, data=crop), self._follower_ts[k]
            )
            got = [
                (i, pts, res)
                for i, pts, res in _landmarks(res, x0, y0, cw, ch)
                if not _cut_by_tile(pts[:, :2], x0, y0, cw, ch, w, h)
            ]
            if not got:
                return
            yield got[0]

    def _face_passes(self, image: np.ndarray, mp_image):
        """(face index, 478×3 pixel landmarks (x, y, z), result) over the frame, or tiles of it.

        A wide frame is searched in overlapping square tiles (50 % overlap) instead of whole:
        every face narrower than half a tile lies uncut in some tile.  A face that every tile
        cuts (a close-up wider than that) sends the whole frame through as well.
        """
        import mediapipe as mp

        h, w = image.shape[:2]
        if mp_image is None:
            mp_image = _mp_image(image)
        tiles = _tiles(w, h, self.config.tiles)
        if tiles is None:
            yield from self._detect_window(mp_image, 0, 0, w)
            return
        kept: list[tuple[float, ...]] = []
        cut: list[tuple[float, ...]] = []
        for x0, y0, side in tiles:
            tile = np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side])
            tile_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=tile)
            for i, pts, res in self._detect_window(tile_image, x0, y0, side):
                box = (*pts[:, :2].min(axis=0), *pts[:, :2].max(axis=0))
                if _cut_by_tile(pts[:, :2], x0, y0, side, side, w, h):
                    cut.append(box)
                    continue
                kept.append(box)
                yield i, pts, res
        from sovtp.annotate.tracking import iou

        if any(all(iou(c, k) < 0.3 for k in kept) for c in cut):
            yield from self._detect_window(mp_image, 0, 0, w)

    def _detect_window(self, mp_image, x0: int, y0: int, width: int):
        """Run the landmarker on one window; landmarks mapped back to full-frame pixels (z, which
        MediaPipe scales like x, in the same pixels)."""
        yield from _landmarks(self._face.detect(mp_image), x0, y0, width, mp_image.height)


def _mp_image(image: np.ndarray):
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))


class _NoBodies:
    """A PoseLandmarker result with no body (frames between searches when the last found none)."""

    pose_landmarks: tuple = ()
    pose_world_landmarks: tuple = ()


_NO_BODIES = _NoBodies()
