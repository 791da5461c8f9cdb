"""The visual half of a Set-of-Vision-Text prompt: marks drawn on the full frame with supervision.

Annotations are converted to ``sv.Detections`` / ``sv.KeyPoints`` here, at the drawing boundary,
and nowhere else.  Frames are RGB; supervision colours assume BGR, so drawing happens on a BGR
view and the result is flipped back.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from sovtp.facs import prominent_aus
from sovtp.types import Face, Frame, FrameAnnotation

# A legible subset of the 478 FaceMesh points (brows, eyes, nose, lips, jaw), ~dlib-68 density.
LANDMARK_SUBSET = [
    70,
    63,
    105,
    66,
    107,
    336,
    296,
    334,
    293,
    300,
    33,
    160,
    158,
    133,
    153,
    144,
    362,
    385,
    387,
    263,
    373,
    380,
    1,
    4,
    5,
    195,
    197,
    98,
    327,
    61,
    40,
    37,
    0,
    267,
    270,
    291,
    321,
    314,
    17,
    84,
    91,
    13,
    14,
    234,
    93,
    132,
    58,
    172,
    136,
    150,
    149,
    176,
    148,
    152,
    377,
    400,
    378,
    379,
    365,
    397,
    288,
    361,
    323,
    454,
]
# MediaPipe Pose's 33-point skeleton (supervision's EdgeAnnotator defaults to COCO-17).
POSE_EDGES = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 7),
    (0, 4),
    (4, 5),
    (5, 6),
    (6, 8),
    (9, 10),
    (11, 12),
    (11, 13),
    (13, 15),
    (15, 17),
    (15, 19),
    (15, 21),
    (17, 19),
    (12, 14),
    (14, 16),
    (16, 18),
    (16, 20),
    (16, 22),
    (18, 20),
    (11, 23),
    (12, 24),
    (23, 24),
    (23, 25),
    (24, 26),
    (25, 27),
    (26, 28),
    (27, 29),
    (28, 30),
    (29, 31),
    (30, 32),
    (27, 31),
    (28, 32),
]


@dataclass(frozen=True)
class VisualSpec:
    """Which marks are drawn.  A PromptSpec's ``visual:`` block maps onto these fields."""

    boxes: bool = True
    ids: bool = True
    landmarks: str = "none"  # none | subset | all
    au_overlay: bool = False
    pose: bool = False
    red_circle: bool = False
    blur_reverse_mask: bool = False
    crop: bool = False
    au_top_k: int = 3

    @classmethod
    def from_dict(cls, d: dict | None) -> VisualSpec:
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown visual marks {sorted(unknown)}; known: {sorted(names)}")
        lm = d.get("landmarks", "none")
        d["landmarks"] = {True: "subset", False: "none", None: "none"}.get(lm, lm)
        if d["landmarks"] not in ("none", "subset", "all"):
            raise ValueError("visual.landmarks must be none, subset or all")
        return cls(**d)

    def any_marks(self) -> bool:
        return self.boxes or self.ids or self.landmarks != "none" or self.au_overlay or self.pose


def _scale(img: np.ndarray) -> float:
    return max(img.shape[:2]) / 640.0


def _detections(faces: list[Face]):
    import supervision as sv

    xyxy = np.array([f.bbox for f in faces], dtype=np.float32).reshape(-1, 4)
    ids = np.array([f.track_id for f in faces], dtype=int)
    return sv.Detections(xyxy=xyxy, class_id=ids, tracker_id=ids)


def draw_marks(image: np.ndarray, ann: FrameAnnotation, spec: VisualSpec) -> np.ndarray:
    """Boxes, ID numbers, landmarks, AU labels and pose skeletons on a copy of an RGB frame."""
    import supervision as sv

    out = np.ascontiguousarray(image[:, :, ::-1])  # BGR view for supervision's colours
    s = _scale(image)
    faces = ann.faces
    lookup = sv.ColorLookup.TRACK
    if spec.pose and ann.persons:
        kp = np.stack([p.keypoints[:, :2] for p in ann.persons]).astype(np.float32)
        vis = np.stack([p.keypoints[:, 2] for p in ann.persons]).astype(np.float32)
        kps = sv.KeyPoints(xy=np.where(vis[..., None] > 0.3, kp, 0), keypoint_confidence=vis)
        out = sv.EdgeAnnotator(
            color=sv.Color(0, 200, 255),
            thickness=max(1, int(2 * s)),
            edges=[(a + 1, b + 1) for a, b in POSE_EDGES],
        ).annotate(out, kps)
        out = sv.VertexAnnotator(color=sv.Color(0, 120, 255), radius=max(2, int(3 * s))).annotate(
            out, kps
        )
    if spec.landmarks != "none" and faces:
        pts = [f.landmarks for f in faces if f.landmarks is not None]
        if pts:
            n = min(len(p) for p in pts)
            # the subset is of MediaPipe's 478 points; other schemes (dlib68) are drawn whole
            idx = LANDMARK_SUBSET if spec.landmarks == "subset" and n >= 478 else list(range(n))
            xy = np.stack([p[idx] for p in pts]).astype(np.float32)
            radius = 1 if spec.landmarks == "all" else max(1, int(2 * s))
            out = sv.VertexAnnotator(color=sv.Color(60, 255, 60), radius=radius).annotate(
                out, sv.KeyPoints(xy=xy)
            )
    if faces:
        det = _detections(faces)
        if spec.boxes:
            out = sv.BoxAnnotator(thickness=max(2, int(2 * s)), color_lookup=lookup).annotate(
                out, det
            )
        if spec.ids:
            out = sv.LabelAnnotator(
                text_scale=0.6 * s,
                text_thickness=max(1, int(2 * s)),
                text_padding=int(6 * s),
                text_position=sv.Position.TOP_LEFT,
                color_lookup=lookup,
            ).annotate(out, det, labels=[str(f.track_id) for f in faces])
        if spec.au_overlay:
            labels = []
            for f in faces:
                prom = prominent_aus(f.aus, spec.au_top_k)
                labels.append(" ".join(f"{c}:{v:.1f}" for c, v in prom.items()) or "no AU")
            out = sv.LabelAnnotator(
                text_scale=0.45 * s,
                text_thickness=max(1, int(s)),
                text_padding=int(4 * s),
                text_position=sv.Position.BOTTOM_LEFT,
                color_lookup=lookup,
            ).annotate(out, det, labels=labels)
    return np.ascontiguousarray(out[:, :, ::-1])


def grid(images: list[np.ndarray], cols: int | None = None, cell: int = 384) -> np.ndarray:
    """Tile frames into one image (each fitted into a cell×cell box), row-major."""
    from PIL import Image

    if not images:
        raise ValueError("grid of no images")
    n = len(images)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.zeros((rows * cell, cols * cell, 3), dtype=np.uint8)
    for k, img in enumerate(images):
        im = Image.fromarray(img)
        im.thumbnail((cell, cell))
        a = np.asarray(im)
        r, c = divmod(k, cols)
        y0 = r * cell + (cell - a.shape[0]) // 2
        x0 = c * cell + (cell - a.shape[1]) // 2
        canvas[y0 : y0 + a.shape[0], x0 : x0 + a.shape[1]] = a
    return canvas


def render_frame(
    frame: Frame, ann: FrameAnnotation, spec: VisualSpec, subject_id: int | None = None
) -> np.ndarray:
    """The image a prompt shows for one frame: visual-prompt baseline, then marks, then crop."""
    from sovtp.render import visual_baselines as vb

    img = frame.image
    subject = ann.face(subject_id) if subject_id is not None else None
    if spec.blur_reverse_mask and subject is not None:
        img = vb.blur_reverse_mask(img, subject.bbox)
    if spec.any_marks():
        img = draw_marks(img, ann, spec)
    if spec.red_circle and subject is not None:
        img = vb.red_circle(img, subject.bbox)
    if spec.crop and subject is not None:
        img = vb.crop(img, subject.bbox)
    return img
