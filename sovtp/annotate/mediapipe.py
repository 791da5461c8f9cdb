"""MediaPipe Tasks detectors: FaceLandmarker (478 points, 52 blendshapes, face transform) and
PoseLandmarker (33 keypoints per person), wrapped to return sovtp's own types.

Landmarkers run in IMAGE mode: sampled frames are seconds apart, so VIDEO mode's
frame-to-frame tracking would not help and would tie results to the sampling.  The detector is a
context manager because MediaPipe's graphs must be closed before interpreter teardown.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np

from sovtp.annotate import models
from sovtp.annotate.aus import SOURCE, blendshapes_to_aus
from sovtp.types import Face, FrameAnnotation, Person

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that changes what the detectors output (it is part of the cache key)."""

    max_faces: int = 6
    min_face_confidence: float = 0.5
    pose: bool = True
    max_persons: int = 4
    min_pose_confidence: float = 0.5
    # "auto": wide frames are also searched in overlapping square tiles, because the
    # landmarker's face detector sees a 128-px letterbox of the frame and misses faces smaller
    # than ~1/6 of the long side (two people side by side in 16:9).  "off": full frame only.
    tiles: str = "auto"

    def key(self) -> dict:
        return asdict(self) | {
            "face_model": models.ASSETS["face_landmarker"].sha256[:12],
            "pose_model": models.ASSETS["pose_landmarker_full"].sha256[:12] if self.pose else None,
        }


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
        self.calls = 0  # frames run through the detectors; benchmarks count annotation passes

    @property
    def version(self) -> str:
        import mediapipe

        return f"mediapipe {mediapipe.__version__}"

    def __enter__(self) -> MediaPipeAnnotator:
        from mediapipe.tasks.python import BaseOptions, vision

        def asset(name: str) -> str:
            path = None
            if self._models_dir:
                path = f"{self._models_dir}/{models.ASSETS[name].filename}"
            return str(models.resolve(name, path))

        c = self.config
        self._face = vision.FaceLandmarker.create_from_options(
            vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=asset("face_landmarker")),
                running_mode=vision.RunningMode.IMAGE,
                num_faces=c.max_faces,
                min_face_detection_confidence=c.min_face_confidence,
                min_face_presence_confidence=c.min_face_confidence,
                output_face_blendshapes=True,
                output_facial_transformation_matrixes=True,
            )
        )
        if c.pose:
            self._pose = vision.PoseLandmarker.create_from_options(
                vision.PoseLandmarkerOptions(
                    base_options=BaseOptions(model_asset_path=asset("pose_landmarker_full")),
                    running_mode=vision.RunningMode.IMAGE,
                    num_poses=c.max_persons,
                    min_pose_detection_confidence=c.min_pose_confidence,
                    min_pose_presence_confidence=c.min_pose_confidence,
                )
            )
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for lm in (self._face, self._pose):
            if lm is not None:
                lm.close()
        self._face = self._pose = None

    def detect(
        self, image: np.ndarray, index: int = 0, timestamp_s: float = 0.0
    ) -> FrameAnnotation:
        """Faces and persons in one RGB uint8 frame; track IDs are left at 0 for the tracker."""
        import mediapipe as mp

        if self._face is None:
            raise RuntimeError("MediaPipeAnnotator used outside its `with` block")
        h, w = image.shape[:2]
        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        self.calls += 1
        faces: list[Face] = []
        for i, pts3, res in self._face_passes(image, mp_image):
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
                    head_pose=pose,
                    depth=depth,
                    transform=transform,
                )
            )
        persons: list[Person] = []
        faces = _dedupe(faces)
        if self._pose is not None:
            pres = self._pose.detect(mp_image)
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
        return FrameAnnotation(index, timestamp_s, (w, h), faces, persons)

    def _face_passes(self, image: np.ndarray, mp_image):
        """(face index, 478×3 pixel landmarks (x, y, z), result) over the frame, or tiles of it.

        A wide frame is searched in overlapping square tiles (50 % overlap) instead of whole:
        every face narrower than half a tile lies uncut in some tile.  A face that every tile
        cuts (a close-up wider than that) sends the whole frame through as well.
        """
        import mediapipe as mp

        h, w = image.shape[:2]
        if self.config.tiles != "auto" or max(w, h) <= 1.3 * min(w, h):
            yield from self._detect_window(mp_image, 0, 0, w)
            return
        side, long = min(w, h), max(w, h)
        n = int(np.ceil((long - side) / (side * 0.5))) + 1
        kept: list[tuple[float, ...]] = []
        cut: list[tuple[float, ...]] = []
        for k in range(n):
            off = int(round(k * (long - side) / max(n - 1, 1)))
            x0, y0 = (off, 0) if w >= h else (0, off)
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
        res = self._face.detect(mp_image)
        height = mp_image.height
        for i, lms in enumerate(res.face_landmarks):
            pts = np.array(
                [(p.x * width + x0, p.y * height + y0, p.z * width) for p in lms], dtype=np.float32
            )
            yield i, pts, res


def _cut_by_tile(pts: np.ndarray, x0: int, y0: int, ww: int, hh: int, w: int, h: int) -> bool:
    """True when a tile's face touches a tile edge that is not the frame's edge (a cut face)."""
    m = 2.0
    (fx0, fy0), (fx1, fy1) = pts.min(axis=0), pts.max(axis=0)
    return bool(
        (x0 > 0 and fx0 <= x0 + m)
        or (x0 + ww < w and fx1 >= x0 + ww - m)
        or (y0 > 0 and fy0 <= y0 + m)
        or (y0 + hh < h and fy1 >= y0 + hh - m)
    )


def _dedupe(faces: list[Face], thr: float = 0.3) -> list[Face]:
    """Drop a face found twice (full frame and a tile): keep the first of any overlapping pair."""
    from sovtp.annotate.tracking import iou

    kept: list[Face] = []
    for f in faces:
        if all(iou(f.bbox, k.bbox) < thr for k in kept):
            kept.append(f)
    return kept
