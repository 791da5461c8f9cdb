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


def link_faces_to_persons(frame: FrameAnnotation) -> None:
    """Give each person the face whose box holds its nose/eyes keypoints (and vice versa); a
    linked person takes its face's ID, the others are numbered from UNLINKED_PERSON_BASE."""
    for p in frame.persons:
        head = p.keypoints[:11]
        vis = head[head[:, 2] > 0.3]
        if not len(vis):
            continue
        best, best_n = None, 0
        for f in frame.faces:
            x0, y0, x1, y1 = f.bbox
            pad = 0.2 * (x1 - x0)
            inside = (
                (vis[:, 0] >= x0 - pad)
                & (vis[:, 0] <= x1 + pad)
                & (vis[:, 1] >= y0 - pad)
                & (vis[:, 1] <= y1 + pad)
            ).sum()
            if inside > best_n:
                best, best_n = f, int(inside)
        if best is not None and best.person_id is None:
            p.face_id = best.track_id
            p.track_id = best.track_id  # a linked person shares its face's ID
            best.person_id = p.track_id
    unlinked = sorted((p for p in frame.persons if p.face_id is None), key=lambda p: p.bbox[0])
    for k, p in enumerate(unlinked):
        p.track_id = UNLINKED_PERSON_BASE + k
