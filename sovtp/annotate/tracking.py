"""Stable face IDs across sampled frames: IoU + centre distance, Hungarian assignment.

Emotion clips hold a handful of faces that move little between sampled frames, so a full
multi-object tracker (ByteTrack and friends) is more machinery than the job needs and, since
supervision 0.31, a dependency that clobbers mediapipe's OpenCV.  Here each frame's faces are
matched to the live tracks by a cost mixing (1 − IoU) and the centre distance relative to face
size; a track survives ``max_missed`` frames without a match.  New tracks found in the same frame
are numbered left to right, so on a first frame IDs read 1..n from left to right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from sovtp.types import FrameAnnotation


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix0, iy0 = max(a[0], b[0]), max(a[1], b[1])
    ix1, iy1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


@dataclass
class _Track:
    track_id: int
    bbox: tuple[float, float, float, float]
    missed: int = 0


@dataclass
class FaceTracker:
    """Assigns ``Face.track_id`` in place, frame after frame."""

    max_missed: int = 2
    # Sampled frames can be a second apart, so a face may move a few face-widths between them:
    # the distance term saturates at 3 face sizes and a match is refused only past ~2.7 sizes.
    max_cost: float = 0.95
    tracks: list[_Track] = field(default_factory=list)
    next_id: int = 1

    def _cost(self, t: tuple[float, ...], d: tuple[float, ...]) -> float:
        tw, th = t[2] - t[0], t[3] - t[1]
        size = max(1.0, float(np.sqrt(max(tw * th, 1.0))))
        tc = ((t[0] + t[2]) / 2, (t[1] + t[3]) / 2)
        dc = ((d[0] + d[2]) / 2, (d[1] + d[3]) / 2)
        dist = float(np.hypot(tc[0] - dc[0], tc[1] - dc[1])) / size
        return 0.5 * (1.0 - iou(t, d)) + 0.5 * min(dist / 3.0, 1.0)

    def update(self, frame: FrameAnnotation) -> FrameAnnotation:
        faces = frame.faces
        assigned: dict[int, int] = {}
        if self.tracks and faces:
            cost = np.array([[self._cost(t.bbox, f.bbox) for f in faces] for t in self.tracks])
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=False):
                if cost[r, c] <= self.max_cost:
                    assigned[c] = r
        matched_tracks = set(assigned.values())
        for c, r in assigned.items():
            tr = self.tracks[r]
            tr.bbox, tr.missed = faces[c].bbox, 0
            faces[c].track_id = tr.track_id
        for i, tr in enumerate(self.tracks):
            if i not in matched_tracks:
                tr.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        new = sorted(
            (c for c in range(len(faces)) if c not in assigned), key=lambda c: faces[c].center[0]
        )
        for c in new:
            faces[c].track_id = self.next_id
            self.tracks.append(_Track(self.next_id, faces[c].bbox))
            self.next_id += 1
        frame.faces = sorted(faces, key=lambda f: f.track_id)
        return frame


UNLINKED_PERSON_BASE = (
    1000  # IDs of bodies whose face is not visible: 1000, 1001, ... left to right
)


LINK_VIS = 0.5  # a pose keypoint is used for linking (and drawn) at this visibility or above
MAX_LINK_COST = 0.75  # a (body, face) pair costing more is not linked


def _vis(kp: np.ndarray, i: int) -> np.ndarray | None:
    return kp[i, :2].astype(np.float64) if kp[i, 2] >= LINK_VIS else None


def link_cost(kp: np.ndarray, bbox: tuple[float, float, float, float]) -> float:
    """How badly a body (33 pose keypoints) and a face box belong together: 0 best, 1 never.

    Two pieces of geometry, because a head keypoint inside a box alone links a neighbour whose
    face sits where this body's low-visibility head points stray:

    * the head: the share of the body's visible head keypoints (nose, eyes, ears, mouth) inside
      the face box widened by 20 %;
    * the shoulders: the face sits above the shoulder line, its centre within one shoulder width
      of their midpoint across, and the shoulders span 1–4.5 face widths (measured on the
      astronaut, the two-face and the five-face photos: 1.5–2.2).

    A body with neither visible head points nor both shoulders cannot be linked (cost 1)."""
    x0, y0, x1, y1 = bbox
    fw, fh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    pad = 0.2 * fw
    head = kp[:11]
    vis = head[head[:, 2] >= LINK_VIS]
    head_cost = None
    if len(vis):
        inside = (
            (vis[:, 0] >= x0 - pad)
            & (vis[:, 0] <= x1 + pad)
            & (vis[:, 1] >= y0 - pad)
            & (vis[:, 1] <= y1 + pad)
        )
        head_cost = 1.0 - float(inside.mean())
    ls, rs = _vis(kp, 11), _vis(kp, 12)
    shoulder_cost = None
    if ls is not None and rs is not None:
        sw = float(np.linalg.norm(ls - rs))
        mid = (ls + rs) / 2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ok = (
            cy < mid[1]
            and abs(cx - mid[0]) <= max(sw, fw)
            and 1.0 * fw <= sw <= 4.5 * fw
            and mid[1] - y1 <= 1.5 * fh  # the chin is not far above the shoulders
        )
        shoulder_cost = min(1.0, abs(cx - mid[0]) / max(sw, fw)) if ok else 1.0
    costs = [c for c in (head_cost, shoulder_cost) if c is not None]
    if not costs:
        return 1.0
    if head_cost is not None and shoulder_cost is not None and shoulder_cost >= 1.0:
        return 1.0  # the head points say yes, the shoulders say no: a neighbour's face
    return float(np.mean(costs))


def link_faces_to_persons(frame: FrameAnnotation) -> None:
    """Link each body to the face it belongs to (one to one, Hungarian over :func:`link_cost`);
    a linked person takes its face's ID, the others are numbered from UNLINKED_PERSON_BASE."""
    for p in frame.persons:
        p.face_id = None
    for f in frame.faces:
        f.person_id = None
    if frame.persons and frame.faces:
        cost = np.array(
            [[link_cost(p.keypoints, f.bbox) for f in frame.faces] for p in frame.persons]
        )
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols, strict=True):
            if cost[r, c] <= MAX_LINK_COST:
                p, f = frame.persons[r], frame.faces[c]
                p.face_id = f.track_id
                p.track_id = f.track_id  # a linked person shares its face's ID
                f.person_id = p.track_id
    unlinked = sorted((p for p in frame.persons if p.face_id is None), key=lambda p: p.bbox[0])
    for k, p in enumerate(unlinked):
        p.track_id = UNLINKED_PERSON_BASE + k
