"""Core in-memory types that flow between the stages.

They are plain dataclasses over numpy arrays: every stage is a pure function from one of these to
the next, and nothing here knows about drawing libraries, prompts or backends.  Conversion to
``supervision`` / py-feat shapes happens at those boundaries only.

``to_dict`` / ``from_dict`` give a JSON-safe form, which is what the annotation cache stores and
what ``sovtp annotate`` writes as ``annotations.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

CUE_KINDS = (
    "au",
    "expression",
    "posture",
    "gaze",
    "head",
    "nfbl",
    "scene",
    "audio",
    "transcript",
    "physio",
)


@dataclass
class Frame:
    """One decoded, sampled frame: RGB uint8 pixels plus where it sits in the source."""

    index: int
    timestamp_s: float
    image: np.ndarray  # H×W×3 uint8 RGB

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass
class Face:
    """A face in one frame, in full-frame pixel coordinates (bbox is xyxy)."""

    track_id: int
    bbox: tuple[float, float, float, float]
    score: float = 1.0
    landmarks: np.ndarray | None = None  # N×2 pixels
    landmark_scheme: str = "mediapipe478"  # or "dlib68"
    blendshapes: dict[str, float] = field(default_factory=dict)
    aus: dict[str, float] = field(default_factory=dict)  # "AU12" -> 0..1
    au_sides: dict[str, tuple[float, float]] = field(
        default_factory=dict
    )  # subject's (left, right)
    au_source: str = ""
    # how each AU in ``aus`` was measured: "blendshape" | "geometry" | "pyfeat".  An AU absent
    # from ``aus`` was not measured (which is not the same as measured absent).
    au_methods: dict[str, str] = field(default_factory=dict)
    head_pose: tuple[float, float, float] | None = None  # yaw, pitch, roll in degrees
    person_id: int | None = None
    # MediaPipe's relative landmark depth (z, in the same pixel units as x) and its 4×4 facial
    # transformation matrix (canonical face → this face): what frontalising the landmarks needs
    depth: np.ndarray | None = None  # N
    transform: np.ndarray | None = None  # 4×4
    # landmark-geometry measures (sovtp.annotate.geometry): its AU scores, including the
    # cross-checks AU1/AU2/AU4/AU12 that stay out of ``aus``, and the raw feature changes ``d_*``
    # (inter-ocular units) against the neutral reference; empty when geometry did not run
    geometry: dict[str, float] = field(default_factory=dict)
    # what hides part of the face: region ("mouth" | "eyes" | "brows") -> cause ("hand",
    # "dark glasses"); an occluded region gives no AUs and no gaze (sovtp.annotate.occlusion)
    occlusion: dict[str, str] = field(default_factory=dict)
    # AUs not measured on this face and why, as a phrase a prompt can quote: "AU17" -> "mouth
    # open", "AU12" -> "mouth covered by a hand", "AU9" -> "head turned 52°"
    au_unmeasured: dict[str, str] = field(default_factory=dict)
    # what the geometric AUs were measured against: "own neutral" (the track's own least
    # expressive frames) or "canonical face" (MediaPipe's mean face; ``geometry`` says why)
    au_reference: str = ""

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.bbox
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "bbox": [round(float(v), 2) for v in self.bbox],
            "score": round(float(self.score), 4),
            "landmark_scheme": self.landmark_scheme,
            "landmarks": None if self.landmarks is None else np.round(self.landmarks, 2).tolist(),
            "blendshapes": {k: round(float(v), 4) for k, v in self.blendshapes.items()},
            "aus": {k: round(float(v), 4) for k, v in self.aus.items()},
            "au_sides": {
                k: [round(float(a), 4), round(float(b), 4)] for k, (a, b) in self.au_sides.items()
            },
            "au_source": self.au_source,
            "au_methods": dict(self.au_methods),
            "depth": None if self.depth is None else np.round(self.depth, 2).tolist(),
            "transform": None if self.transform is None else np.round(self.transform, 5).tolist(),
            "geometry": {k: round(float(v), 4) for k, v in self.geometry.items()},
            "occlusion": dict(self.occlusion),
            "au_unmeasured": dict(self.au_unmeasured),
            "au_reference": self.au_reference,
            "head_pose": None
            if self.head_pose is None
            else [round(float(v), 2) for v in self.head_pose],
            "person_id": self.person_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Face:
        lm = d.get("landmarks")
        hp = d.get("head_pose")
        return cls(
            track_id=int(d["track_id"]),
            bbox=tuple(float(v) for v in d["bbox"]),  # type: ignore[arg-type]
            score=float(d.get("score", 1.0)),
            landmarks=None if lm is None else np.asarray(lm, dtype=np.float32),
            landmark_scheme=d.get("landmark_scheme", "mediapipe478"),
            blendshapes=dict(d.get("blendshapes", {})),
            aus=dict(d.get("aus", {})),
            au_sides={k: (float(v[0]), float(v[1])) for k, v in d.get("au_sides", {}).items()},
            au_source=d.get("au_source", ""),
            au_methods=dict(d.get("au_methods", {})),
            head_pose=None if hp is None else (float(hp[0]), float(hp[1]), float(hp[2])),
            person_id=d.get("person_id"),
            depth=None if d.get("depth") is None else np.asarray(d["depth"], dtype=np.float32),
            transform=None
            if d.get("transform") is None
            else np.asarray(d["transform"], dtype=np.float32),
            geometry={k: float(v) for k, v in d.get("geometry", {}).items()},
            occlusion={str(k): str(v) for k, v in d.get("occlusion", {}).items()},
            au_unmeasured={str(k): str(v) for k, v in d.get("au_unmeasured", {}).items()},
            au_reference=str(d.get("au_reference", "")),
        )


@dataclass
class Person:
    """A body: 33 MediaPipe pose keypoints (x, y in pixels, visibility 0..1)."""

    track_id: int
    keypoints: np.ndarray  # 33×3
    world: np.ndarray | None = None  # 33×3 metres, hip-centred (MediaPipe world landmarks)
    face_id: int | None = None

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        vis = self.keypoints[self.keypoints[:, 2] > 0.3]
        pts = vis if len(vis) else self.keypoints
        return (
            float(pts[:, 0].min()),
            float(pts[:, 1].min()),
            float(pts[:, 0].max()),
            float(pts[:, 1].max()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "keypoints": np.round(self.keypoints, 3).tolist(),
            "world": None if self.world is None else np.round(self.world, 4).tolist(),
            "face_id": self.face_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Person:
        w = d.get("world")
        return cls(
            track_id=int(d["track_id"]),
            keypoints=np.asarray(d["keypoints"], dtype=np.float32),
            world=None if w is None else np.asarray(w, dtype=np.float32),
            face_id=d.get("face_id"),
        )


@dataclass
class Hand:
    """A hand in one frame: MediaPipe's 21 hand landmarks (x, y pixels; 0 is the wrist).

    ``side`` is the subject's own hand ("left" | "right") only when a pose wrist confirmed it
    (MediaPipe's own ``label`` flips with mirrored cameras, so it is kept but not trusted);
    ``face_id`` is the face (track id) whose hand it is, when linked.
    """

    landmarks: np.ndarray  # 21×2 pixels
    label: str = ""  # MediaPipe's handedness label ("Left" | "Right"), as it said
    score: float = 1.0  # MediaPipe's handedness score
    side: str = ""  # the subject's own "left" | "right" when pose confirmed it, else ""
    face_id: int | None = None

    @property
    def center(self) -> tuple[float, float]:
        c = np.asarray(self.landmarks, dtype=np.float64).mean(axis=0)
        return float(c[0]), float(c[1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "landmarks": np.round(self.landmarks, 2).tolist(),
            "label": self.label,
            "score": round(float(self.score), 4),
            "side": self.side,
            "face_id": self.face_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hand:
        return cls(
            landmarks=np.asarray(d["landmarks"], dtype=np.float32),
            label=d.get("label", ""),
            score=float(d.get("score", 1.0)),
            side=d.get("side", ""),
            face_id=d.get("face_id"),
        )


@dataclass
class Cue:
    """One observation worth wording in a prompt, with the phrase that words it."""

    kind: str
    name: str
    text: str
    subject: int | None = None  # face / person track id, None for scene-level cues
    value: Any = None
    confidence: float = 1.0
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, (np.floating, np.integer)):
            value = value.item()
        return {
            "kind": self.kind,
            "name": self.name,
            "text": self.text,
            "subject": self.subject,
            "value": value,
            "confidence": round(float(self.confidence), 4),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cue:
        return cls(**d)


@dataclass
class FrameAnnotation:
    index: int
    timestamp_s: float
    size: tuple[int, int]  # (width, height)
    faces: list[Face] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    hands: list[Hand] = field(default_factory=list)  # only when the hands pass ran

    def face(self, track_id: int) -> Face | None:
        return next((f for f in self.faces if f.track_id == track_id), None)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "index": self.index,
            "timestamp_s": round(float(self.timestamp_s), 4),
            "size": list(self.size),
            "faces": [f.to_dict() for f in self.faces],
            "persons": [p.to_dict() for p in self.persons],
        }
        if self.hands:  # written only when there are some: a clip without stays as it was
            d["hands"] = [h.to_dict() for h in self.hands]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrameAnnotation:
        return cls(
            index=int(d["index"]),
            timestamp_s=float(d["timestamp_s"]),
            size=(int(d["size"][0]), int(d["size"][1])),
            faces=[Face.from_dict(f) for f in d.get("faces", [])],
            persons=[Person.from_dict(p) for p in d.get("persons", [])],
            hands=[Hand.from_dict(h) for h in d.get("hands", [])],
        )


@dataclass
class ClipAnnotation:
    """Everything the annotators found in one clip; what the annotation cache stores."""

    source: str
    sha256: str
    sampling: str
    frames: list[FrameAnnotation] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    detectors: dict[str, str] = field(default_factory=dict)
    # detected shots: per shot, [first, last] indices into ``frames`` (inclusive); one shot
    # spanning every frame when no cut was found; empty only when shots were not detected
    shots: list[tuple[int, int]] = field(default_factory=list)
    cached: bool = False

    @property
    def track_ids(self) -> list[int]:
        return sorted({f.track_id for fr in self.frames for f in fr.faces})

    def faces_of(self, track_id: int) -> list[Face]:
        return [f for fr in self.frames for f in fr.faces if f.track_id == track_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "sampling": self.sampling,
            "detectors": dict(self.detectors),
            "shots": [[int(a), int(b)] for a, b in self.shots],
            "frames": [f.to_dict() for f in self.frames],
            "cues": [c.to_dict() for c in self.cues],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipAnnotation:
        return cls(
            source=d["source"],
            sha256=d["sha256"],
            sampling=d["sampling"],
            detectors=dict(d.get("detectors", {})),
            shots=[(int(a), int(b)) for a, b in d.get("shots", [])],
            frames=[FrameAnnotation.from_dict(f) for f in d.get("frames", [])],
            cues=[Cue.from_dict(c) for c in d.get("cues", [])],
        )


# a time interval: (start, end, label or None), in seconds or frames (spotting, intervals)
Span = tuple[float, float, str | None]
