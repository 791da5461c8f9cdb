"""What a detector pass is configured to do (:class:`DetectorConfig`): faces, bodies, hands, how
often it searches rather than follows — and its cache key, with the version of the measures made
from it, so an annotation made under other settings or older rules is never reused."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sovtp import assets

# the AU table, geometry, occlusion and shot rules (sovtp.annotate.aus / geometry / occlusion /
# shots), in the cache key so an annotation made under older rules is not reused
MEASURES_VERSION = "aus v3, geometry v2, occlusion v1, shots v1"


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
    # Follow faces between searches (see the module docstring); False searches every frame.
    track: bool = True
    search_every: int = 10  # frames between searches while following
    search_every_s: float = 1.0  # ... or seconds, whichever comes first (new faces appear)
    crop_scale: float = 2.5  # a follow crop's side, in face sizes: room for the face to move
    # Follow bodies between pose searches too (a VIDEO-mode PoseLandmarker that skips its
    # person detector while it tracks every body the last search found); False: search each frame
    pose_track: bool = True
    # Bodies are searched after a face search (someone came or went) or a body lost, and at least
    # this often: a body that enters with no face in view is found within it
    pose_search_every: int = 30
    pose_search_every_s: float = 3.0
    # The hands pass (sovtp.annotate.hands; NFBL self-touch and fidgeting): opt-in, it costs
    # about what the face landmarker does
    hands: bool = False
    max_hands: int = 4
    min_hand_confidence: float = 0.5

    def key(self) -> dict:
        d = asdict(self)
        if not self.hands:  # off: the key stays what it was before hands existed
            for k in ("hands", "max_hands", "min_hand_confidence"):
                d.pop(k)
        else:
            d["hand_model"] = assets.ASSETS["hand_landmarker"].sha256[:12]
        if not self.pose:  # no bodies: how they would be followed changes nothing
            for k in ("pose_track", "pose_search_every", "pose_search_every_s"):
                d.pop(k)
        return d | {
            # what turns landmarks into AUs, occlusion and shots: a change there re-annotates
            "measures": MEASURES_VERSION,
            "face_model": assets.ASSETS["face_landmarker"].sha256[:12],
            "pose_model": assets.ASSETS["pose_landmarker_full"].sha256[:12] if self.pose else None,
        }

    def graph_options(self, task: str, n: int) -> dict[str, Any]:
        """MediaPipe options of the face or pose landmarker (``task``) for up to ``n`` people:
        the config's one confidence serves every stage (detection, presence, tracking)."""
        if task == "FaceLandmarker":
            conf = self.min_face_confidence
            return {
                "num_faces": n,
                "min_face_detection_confidence": conf,
                "min_face_presence_confidence": conf,
                "min_tracking_confidence": conf,
                "output_face_blendshapes": True,
                "output_facial_transformation_matrixes": True,
            }
        if task != "PoseLandmarker":
            raise ValueError(f"no landmarker options for {task!r}")
        conf = self.min_pose_confidence
        return {
            "num_poses": n,
            "min_pose_detection_confidence": conf,
            "min_pose_presence_confidence": conf,
        }

    def hand_config(self):
        from sovtp.annotate.hands import HandConfig

        return HandConfig(max_hands=self.max_hands, min_confidence=self.min_hand_confidence)
