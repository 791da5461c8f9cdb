"""What a face detector's hit on a person is when it is no face: a hand, a torso, the marks drawn
around a hidden face — so that de-identification neither obscures it nor refuses the frame.

Why: the detectors behind de-identification are tuned for recall, and on real frames they read a
dark coat, a fist holding a camera or a pixelated suit as a face at 0.3-0.5.  Obscuring those
erased the gestures the prompt is about (issue 19), and refusing them stopped a group photo that
showed no face.  A hit is let go only on two pieces of evidence, both measured on the raw frame
or the image itself: it lies on a body part of a measured person (:func:`on_body`, from the pose
and hand landmarks) — or, for the guard's look at marked images, in the zone of a face that was
measured and hidden (:func:`near_hidden_face`) — and MediaPipe's FaceLandmarker fits no face mesh
around it (:meth:`sovtp.deid.finder.FaceFinder.has_mesh`).
"""

from __future__ import annotations

import numpy as np

from sovtp.deid.finder import Box, FaceFinder
from sovtp.types import FrameAnnotation

ARM_REACH = 0.3  # an arm segment's half-width, in shoulder widths
HEAD_ZONE = 0.75  # a hit centred this near the nose (shoulder widths) is on the head: never body
# The guard's zone around a hidden face (:func:`near_hidden_face`): its box grown by SIDE of its
# width on each side, ABOVE of its height above (hair, the ID tag drawn on the box's top edge)
# and NECK below.  After the prompt's marks were drawn on de-identified frames in which no
# detector found a face, CenterFace read a filled face's AU label over the astronaut's dark neck
# ring at 0.33, and MediaPipe an ID tag on the hair of two of the group photo's blurred faces at
# 0.45-0.53; nothing meshes there, and the guard refused both requests
SIDE, ABOVE, NECK = 0.5, 0.75, 1.5
MIN_VISIBLE = 0.5  # pose keypoints below this visibility are not trusted to place a body part


def _near_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> bool:
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-9), 0.0, 1.0))
    return float(np.hypot(*(p - (a + t * ab)))) <= r


def on_body(
    box: Box,
    annotation: FrameAnnotation | None,
    scale: tuple[float, float] = (1, 1),
) -> bool:
    """Whether ``box``'s centre lies on a measured body part — a torso (the shoulders and the shoulder width below them), an arm
    (shoulder–elbow–wrist, :data:`ARM_REACH` wide) or a hand (its landmarks' box, grown by
    half) — and not on a head (within :data:`HEAD_ZONE` shoulder
    widths of a nose).  ``annotation`` is the frame's, measured on the raw frame; ``scale`` maps
    its pixels to ``box``'s (an outgoing image is resized).  No annotation, no body: False."""
    if annotation is None:
        return False
    sx, sy = scale
    c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    for f in annotation.faces:  # a known face (hidden or kept) is never a body part
        b = f.bbox
        if b[0] * sx <= c[0] <= b[2] * sx and b[1] * sy <= c[1] <= b[3] * sy:
            return False
    bodies = list(_shouldered(annotation, sx, sy))
    for xy, vis, width in bodies:
        if vis[0] >= MIN_VISIBLE and np.hypot(*(c - xy[0])) <= HEAD_ZONE * width:
            return False
    hit = False
    for xy, vis, width in bodies:
        x0, x1 = sorted((xy[11][0], xy[12][0]))
        top = min(xy[11][1], xy[12][1])
        if x0 <= c[0] <= x1 and top <= c[1] <= top + width * 1.5:
            hit = True
        for s, e, w in ((11, 13, 15), (12, 14, 16)):
            if vis[e] >= MIN_VISIBLE and _near_segment(c, xy[s], xy[e], ARM_REACH * width):
                hit = True
            if min(vis[e], vis[w]) >= MIN_VISIBLE and _near_segment(
                c, xy[e], xy[w], ARM_REACH * width
            ):
                hit = True
    for hand in annotation.hands:
        pts = np.asarray(hand.landmarks, dtype=np.float64) * (sx, sy)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.25 * (hi - lo)
        if np.all(c >= lo - pad) and np.all(c <= hi + pad):
            hit = True
    return hit


def _shouldered(annotation: FrameAnnotation, sx: float, sy: float):
    """Each person whose two shoulders are measured: (keypoints in ``box``'s pixels, their
    visibilities, the shoulder width) — the scale every body rule is measured in."""
    for p in annotation.persons:
        kp = np.asarray(p.keypoints, dtype=np.float64)
        xy, vis = kp[:, :2] * (sx, sy), kp[:, 2]
        if vis[11] < MIN_VISIBLE or vis[12] < MIN_VISIBLE:
            continue
        width = float(np.hypot(*(xy[11] - xy[12])))
        if width >= 4:
            yield xy, vis, width


def body_false_alarm(
    image: np.ndarray,
    box: Box,
    annotation: FrameAnnotation | None,
    finder: FaceFinder,
    scale: tuple[float, float] = (1, 1),
) -> bool:
    """A detector hit that is a hand or a torso, not a face: it lies on a measured body part
    (:func:`on_body`) and MediaPipe's FaceLandmarker fits no face mesh around it
    (:meth:`FaceFinder.has_mesh`).  Both must hold — a face held in front of a torso is meshed,
    and a hit off every body part is obscured whatever the landmarker says (recall first)."""
    return on_body(box, annotation, scale) and not finder.has_mesh(image, box)


def near_hidden_face(
    box: Box, annotation: FrameAnnotation | None, scale: tuple[float, float] = (1, 1)
) -> bool:
    """Whether ``box``'s centre lies in the zone of a known (measured, then hidden) face: its
    box grown by :data:`SIDE` on each side, :data:`ABOVE` above and :data:`NECK` below.  The
    guard's second test, for marked images only (:func:`sovtp.deid.stage.assert_no_faces`):
    the re-check obscures every hit there, so a de-identified frame has none before marks."""
    if annotation is None:
        return False
    sx, sy = scale
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for f in annotation.faces:
        x0, y0, x1, y1 = f.bbox[0] * sx, f.bbox[1] * sy, f.bbox[2] * sx, f.bbox[3] * sy
        w, h = x1 - x0, y1 - y0
        if x0 - SIDE * w <= cx <= x1 + SIDE * w and y0 - ABOVE * h <= cy <= y1 + NECK * h:
            return True
    return False
