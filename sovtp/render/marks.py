"""The visual half of a Set-of-Vision-Text prompt: marks drawn on the full frame with supervision.

Annotations are converted to ``sv.Detections`` / ``sv.KeyPoints`` here, at the drawing boundary,
and nowhere else.  Frames are RGB; supervision colours assume BGR, so drawing happens on a BGR
view and the result is flipped back.

Marks are sized for the image as the model receives it, and text labels are placed clear of the
faces and of each other (:mod:`sovtp.render.layout`); the body skeleton starts at the shoulders.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from sovtp.facs import prominent_aus
from sovtp.render.layout import (
    DEFAULT_OUT_SIZE,
    FONT,
    MarkStyle,
    PlacedLabel,
    layout_labels,
    mark_style,
)
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


def _detections(faces: list[Face]):
    import supervision as sv

    xyxy = np.array([f.bbox for f in faces], dtype=np.float32).reshape(-1, 4)
    ids = np.array([f.track_id for f in faces], dtype=int)
    return sv.Detections(xyxy=xyxy, class_id=ids, tracker_id=ids)


# MediaPipe Pose points 0-10 are the face (nose, eyes, ears, mouth): their edges would run across
# the very eyes and mouth the model must read, and the face has its own marks; only the body from
# the shoulders down (11-32) is drawn.
BODY_FROM = 11
BODY_EDGES = [(a, b) for a, b in POSE_EDGES if a >= BODY_FROM and b >= BODY_FROM]


def au_label(aus: dict[str, float], top_k: int = 3) -> str:
    """A face's AU label: the codes of its ``top_k`` most active AUs, e.g. "AU12 AU6 AU25" —
    short enough to read at prompt size; the intensities are in the prompt text."""
    return " ".join(prominent_aus(aus, top_k)) or "no AU"


# MediaPipe Hands' 21-point skeleton (0 wrist; thumb 1-4, index 5-8, middle 9-12, ring 13-16,
# little 17-20)
HAND_EDGES = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (0, 5),
    (5, 6),
    (6, 7),
    (7, 8),
    (5, 9),
    (9, 10),
    (10, 11),
    (11, 12),
    (9, 13),
    (13, 14),
    (14, 15),
    (15, 16),
    (13, 17),
    (0, 17),
    (17, 18),
    (18, 19),
    (19, 20),
]
# a pose keypoint below this visibility is not drawn, nor any limb that ends at it: MediaPipe
# still places a hidden elbow somewhere, and a line to it crossed a neighbour's face
DRAW_VIS = 0.5  # = sovtp.annotate.tracking.LINK_VIS: what links a body is what is drawn
UNLINKED_GREY = (150, 150, 150)  # bodies and hands that belong to no face (RGB)


def body_colour(face_id: int | None):
    """A body's (or hand's) colour: its face box's, so a reader can tell whose limbs are whose;
    grey for one linked to no face."""
    import supervision as sv

    return _colour(face_id) if face_id is not None else sv.Color(*UNLINKED_GREY)


def _draw_bodies(out: np.ndarray, ann: FrameAnnotation, st: MarkStyle) -> None:
    """Each body from the shoulders down and each hand, in the colour of its face box, in place
    on a BGR image; only keypoints at or above :data:`DRAW_VIS` and limbs between two of them."""
    import supervision as sv

    edges = [(a - BODY_FROM + 1, b - BODY_FROM + 1) for a, b in BODY_EDGES]
    for p in ann.persons:
        kp = p.keypoints[BODY_FROM:].astype(np.float32)
        vis = kp[:, 2] >= DRAW_VIS
        if not vis.any():
            continue
        pts = sv.KeyPoints(xy=kp[None, :, :2], visible=vis[None])
        colour = body_colour(p.face_id)
        sv.EdgeAnnotator(color=colour, thickness=st.box_thickness, edges=edges).annotate(out, pts)
        shown = sv.KeyPoints(xy=kp[None, vis, :2])
        sv.VertexAnnotator(color=colour, radius=st.radius).annotate(out, shown)
    hand_edges = [(a + 1, b + 1) for a, b in HAND_EDGES]
    for h in ann.hands:
        pts = sv.KeyPoints(xy=np.asarray(h.landmarks, np.float32)[None, :, :2])
        colour = body_colour(h.face_id)
        thickness = max(1, st.box_thickness // 2)
        sv.EdgeAnnotator(color=colour, thickness=thickness, edges=hand_edges).annotate(out, pts)


def _colour(track_id: int):
    import supervision as sv

    return sv.ColorPalette.DEFAULT.by_idx(track_id)  # what BoxAnnotator's TRACK lookup picks


def _draw_label(out: np.ndarray, lab: PlacedLabel, style: MarkStyle) -> None:
    import cv2

    c = _colour(lab.track_id)
    bgr = c.as_bgr()
    r, g, b = c.as_rgb()
    ink = (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)
    x0, y0, x1, y1 = lab.rect
    if not lab.touches_face(style.box_thickness + 1):  # a leader line back to its face
        fx0, fy0, fx1, fy1 = lab.face_box
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        px, py = min(max(cx, fx0), fx1), min(max(cy, fy0), fy1)
        qx, qy = min(max(px, x0), x1 - 1), min(max(py, y0), y1 - 1)
        cv2.line(out, (qx, qy), (px, py), bgr, max(1, style.box_thickness // 2), cv2.LINE_AA)
    cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), bgr, -1)
    cv2.putText(
        out,
        lab.text,
        lab.text_origin,
        FONT,
        style.text_scale,
        ink,
        style.text_thickness,
        cv2.LINE_AA,
    )


def draw_marks(
    image: np.ndarray,
    ann: FrameAnnotation,
    spec: VisualSpec,
    *,
    out_size: int | None = DEFAULT_OUT_SIZE,
    style: MarkStyle | None = None,
    layout_out: list[PlacedLabel] | None = None,
) -> np.ndarray:
    """Boxes, ID tags, landmarks, AU labels and body skeletons on a copy of an RGB frame.

    Marks are sized for the image as the model receives it — long side shrunk to ``out_size``
    (the prompt builder's ``ImageOptions.max_side``) — unless ``style`` is given.  The label
    rectangles placed (see :func:`~sovtp.render.layout.layout_labels`) are appended to
    ``layout_out`` when given.
    """
    import supervision as sv

    out = np.ascontiguousarray(image[:, :, ::-1])  # BGR view for supervision's colours
    h, w = image.shape[:2]
    st = style or mark_style(max(h, w), out_size)
    faces = ann.faces
    lookup = sv.ColorLookup.TRACK
    if spec.pose:
        _draw_bodies(out, ann, st)
    if spec.landmarks != "none" and faces:
        pts = [f.landmarks for f in faces if f.landmarks is not None]
        if pts:
            n = min(len(p) for p in pts)
            # the subset is of MediaPipe's 478 points; other schemes (dlib68) are drawn whole
            idx = LANDMARK_SUBSET if spec.landmarks == "subset" and n >= 478 else list(range(n))
            xy = np.stack([p[idx] for p in pts]).astype(np.float32)
            k = st.px_per_shown
            radius = max(1, round(k)) if spec.landmarks == "all" else max(1, round(1.5 * k))
            out = sv.VertexAnnotator(color=sv.Color(60, 255, 60), radius=radius).annotate(
                out, sv.KeyPoints(xy=xy)
            )
    if faces:
        if spec.boxes:
            out = sv.BoxAnnotator(thickness=st.box_thickness, color_lookup=lookup).annotate(
                out, _detections(faces)
            )
        layout = layout_labels(
            {f.track_id: f.bbox for f in faces},
            (w, h),
            st,
            id_texts={f.track_id: str(f.track_id) for f in faces} if spec.ids else None,
            au_texts=(
                {f.track_id: au_label(f.aus, spec.au_top_k) for f in faces}
                if spec.au_overlay
                else None
            ),
        )
        out = np.ascontiguousarray(out)
        # AU labels first, ID tags last: should anything still touch, the ID stays on top
        for lab in sorted(layout, key=lambda q: q.kind == "id"):
            _draw_label(out, lab, st)
        if layout_out is not None:
            layout_out.extend(layout)
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
    frame: Frame,
    ann: FrameAnnotation,
    spec: VisualSpec,
    subject_id: int | None = None,
    *,
    out_size: int | None = DEFAULT_OUT_SIZE,
    layout_out: list[PlacedLabel] | None = None,
) -> np.ndarray:
    """The image a prompt shows for one frame: visual-prompt baseline, then marks, then crop.

    ``out_size`` is the long side the image is sent at (the prompt builder's
    ``ImageOptions.max_side``; a grid's cell size when frames are tiled): marks are sized to be
    legible there.  A crop is shown at its own size, so its marks are sized for the crop.
    """
    import sovtp.render.visual_baselines as vb

    img = frame.image
    subject = ann.face(subject_id) if subject_id is not None else None
    if spec.blur_reverse_mask and subject is not None:
        img = vb.blur_reverse_mask(img, subject.bbox)
    if spec.any_marks():
        long_side = max(img.shape[:2])
        if spec.crop and subject is not None:
            x0, y0, x1, y1 = vb.crop_box(subject.bbox, img.shape[1], img.shape[0])
            long_side = max(x1 - x0, y1 - y0)
        style = mark_style(long_side, out_size)
        img = draw_marks(img, ann, spec, style=style, layout_out=layout_out)
    if spec.red_circle and subject is not None:
        img = vb.red_circle(img, subject.bbox)
    if spec.crop and subject is not None:
        img = vb.crop(img, subject.bbox)
    return img
