"""Faces over time for de-identification: one frame's detections merged and matched to the
annotation's faces (:func:`merge`), tracks that carry a face's box across the frames a detector
missed (:class:`FaceTracks`, ``BRIDGE`` frames each way), and the regions each frame obscures
(:func:`regions_at`: bridged, dilated, the kept subject left out).  The obscuring itself is in
:mod:`sovtp.deid.faces`."""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field

import numpy as np

from sovtp.annotate.tracking import iou as box_iou
from sovtp.deid.finder import Box, Detection
from sovtp.types import FrameAnnotation

BRIDGE = 6  # frames a track's box is carried before / after its detections
# The prompt path's margin (what a model sees): each side of the face box moves out by DILATE of
# its size, the bottom by DOWN·DILATE.  Measured (the astronaut, the cameraman and a group of five
# astronauts, three modes; benchmarks/deid_body.py): at 0.10 / 0.10 below CenterFace still read a
# face in 5 of 12 de-identified images; at 0.15 / 0.30 in none, with 5–10 % of the frame changed
# (the old 0.25 / 0.625: 9–18 %, pixelate's re-check chasing the suits).  Obscuring only the
# oval inscribed in the box changed less on stills but left blobs framed by hair that MediaPipe
# read at up to 0.41 and CenterFace at 0.27 after JPEG on the panning clip (the box: none).
DILATE = 0.15
# Why the bottom grows more and the contrast is halved: a blurred face box sitting on the neck
# and the collar below it read as a face to MediaPipe (0.3–0.44 on the astronaut clips after
# JPEG, 20 of 60 frames ≥ 0.3); covering the neck (2.5 × the side dilation) and halving the
# blurred patch's contrast around its mean left 3 (max 0.34).  Measured in benchmarks/deid_speed.
DOWN = 2.0


@dataclass(frozen=True)
class Region:
    """A box to obscure (or, ``kept``, to leave), already bridged and dilated."""

    box: Box
    track: int
    kept: bool = False
    bridged: bool = False  # carried from a neighbouring frame, not detected here


# -- one frame's detections: union, matched to the annotation's faces ----------------------------
def _overlaps(a: Box, b: Box) -> bool:
    """Same face: IoU ≥ 0.3, or one box's centre inside the other (a landmark box sits inside
    CenterFace's, which includes the forehead)."""
    if box_iou(a, b) >= 0.3:
        return True
    for p, q in ((a, b), (b, a)):
        cx, cy = (p[0] + p[2]) / 2, (p[1] + p[3]) / 2
        if q[0] <= cx <= q[2] and q[1] <= cy <= q[3]:
            return True
    return False


def merge(dets: list[Detection], annotation: FrameAnnotation | None = None) -> list[Detection]:
    """One detection per face: the union box of every detector's box on it, carrying the
    annotation face's track ID where one matched."""
    groups: list[list[Detection]] = []
    seeds = (
        [Detection(tuple(f.bbox), f.score, "annotation", f.track_id) for f in annotation.faces]  # type: ignore[arg-type]
        if annotation is not None
        else []
    )
    for d in [*seeds, *sorted(dets, key=lambda d: -d.score)]:
        g = next((g for g in groups if any(_overlaps(d.box, x.box) for x in g)), None)
        if g is None:
            groups.append([d])
        else:
            g.append(d)
    out = []
    for g in groups:
        b = np.array([d.box for d in g])
        box = (
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        )
        ann = next((d.ann_id for d in g if d.ann_id is not None), None)
        out.append(
            Detection(box, max(d.score for d in g), "+".join(sorted({d.source for d in g})), ann)
        )
    return out


# -- tracks and bridging ---------------------------------------------------------------------
@dataclass
class _Track:
    tid: int
    seen: dict[int, Detection] = field(default_factory=dict)  # frame position → detection
    pos: list[int] = field(default_factory=list)  # the keys of ``seen``, ascending

    @property
    def last(self) -> int:
        return self.pos[-1]

    def put(self, p: int, d: Detection) -> None:
        if p not in self.seen:
            insort(self.pos, p)
        self.seen[p] = d


@dataclass
class FaceTracks:
    """Links each frame's detections into tracks and gives every frame its bridged boxes.

    ``boxes_at(j)`` reads detections up to ``j + bridge`` only, so a streaming caller can
    finalise frame ``j`` once frame ``j + bridge`` is detected.  Linear in the clip: ``add``
    matches against the tracks still alive (seen in the last ``2·bridge + 1`` frames) and files
    each detection under the frames it can reach; ``boxes_at`` reads that index and bisects."""

    bridge: int = BRIDGE
    tracks: list[_Track] = field(default_factory=list)
    max_cost: float = 0.95
    _live: list[_Track] = field(default_factory=list, repr=False)
    _reach: dict[int, list[_Track]] = field(default_factory=dict, repr=False)

    def add(self, pos: int, dets: list[Detection]) -> None:
        from scipy.optimize import linear_sum_assignment

        k = self.bridge
        self._live = [t for t in self._live if pos - t.last <= 2 * k + 1]
        live = self._live
        assigned: dict[int, _Track] = {}
        if live and dets:
            cost = np.array([[_cost(t.seen[t.last].box, d.box) for d in dets] for t in live])
            for r, c in zip(*linear_sum_assignment(cost), strict=True):
                if cost[r, c] <= self.max_cost:
                    assigned[int(c)] = live[int(r)]
        for c, d in enumerate(dets):
            t = assigned.get(c)
            if t is None:
                t = _Track(len(self.tracks) + 1)
                self.tracks.append(t)
                self._live.append(t)
            t.put(pos, d)
            # a detection at p is read by boxes_at for positions p - k … p + k (interpolation
            # needs the later detection within k, a carry its detection within k)
            for q in range(pos - k, pos + k + 1):
                at = self._reach.setdefault(q, [])
                if t not in at:
                    at.append(t)

    def boxes_at(self, pos: int, size: tuple[int, int]) -> list[tuple[Box, int, bool]]:
        """(box, track, bridged) for every track present at ``pos`` (detected or bridged)."""
        w, h = size
        out = []
        k = self.bridge
        for t in self._reach.get(pos, []):
            if pos in t.seen:
                out.append((t.seen[pos].box, t.tid, False))
                continue
            i = bisect_left(t.pos, pos)
            a = t.pos[i - 1] if i > 0 and t.pos[i - 1] >= pos - 2 * k else None
            b = t.pos[i] if i < len(t.pos) and t.pos[i] <= pos + k else None
            box = None
            if a is not None and b is not None and b - a <= 2 * k:
                f = (pos - a) / (b - a)
                ba, bb = np.array(t.seen[a].box), np.array(t.seen[b].box)
                box = tuple(ba + f * (bb - ba))
            elif a is not None and pos - a <= k:
                box = _carry(t, a, pos)
            elif b is not None:
                box = _carry(t, b, pos)
            if box is not None:
                box = _clip(box, w, h)
                if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                    out.append((box, t.tid, True))
        return out

    def forget_before(self, pos: int) -> None:
        """Drop the per-frame index below ``pos`` (a stream's finished frames), so memory stays
        bounded on a long video; the tracks themselves stay (``largest_track`` reads them)."""
        for q in [q for q in self._reach if q < pos]:
            del self._reach[q]


def _cost(t: Box, d: Box) -> float:
    size = max(1.0, float(np.sqrt(max((t[2] - t[0]) * (t[3] - t[1]), 1.0))))
    dist = float(np.hypot((t[0] + t[2] - d[0] - d[2]) / 2, (t[1] + t[3] - d[1] - d[3]) / 2))
    return 0.5 * (1.0 - box_iou(t, d)) + 0.5 * min(dist / size / 3.0, 1.0)


def _carry(t: _Track, p: int, pos: int) -> Box:
    """The box of detection ``p`` carried to ``pos``: held there, unioned with it moved along
    the track's velocity (from the nearest other detection, at most half a face per frame)."""
    held = np.array(t.seen[p].box)
    i = bisect_left(t.pos, p)
    near = [
        q
        for q in (t.pos[i - 1] if i > 0 else None, t.pos[i + 1] if i + 1 < len(t.pos) else None)
        if q is not None
    ]
    moved = held
    if near:
        q = min(near, key=lambda q: abs(q - p))
        v = (held - np.array(t.seen[q].box)) / (p - q)
        size = max(held[2] - held[0], held[3] - held[1])
        v = np.clip(v, -0.5 * size, 0.5 * size)
        moved = held + v * (pos - p)
    return (
        float(min(held[0], moved[0])),
        float(min(held[1], moved[1])),
        float(max(held[2], moved[2])),
        float(max(held[3], moved[3])),
    )


def _clip(b, w: int, h: int) -> Box:
    return (
        float(max(0, b[0])),
        float(max(0, b[1])),
        float(min(w, b[2])),
        float(min(h, b[3])),
    )


def dilate(box: Box, frac: float, w: int, h: int, down: float | None = None) -> Box:
    """``box`` grown by ``frac`` of its width/height on each side (``down`` of its height at
    the bottom, when given), clipped to the frame."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    down = frac if down is None else down
    return _clip(
        (box[0] - frac * bw, box[1] - frac * bh, box[2] + frac * bw, box[3] + down * bh), w, h
    )


def kept_tracks(tracks: FaceTracks, keep: set[int] | None) -> set[int]:
    """Our tracks that are the kept annotation faces: most of their matched detections carry a
    kept annotation ID (a track never matched to the annotation is never kept)."""
    if not keep:
        return set()
    out = set()
    for t in tracks.tracks:
        ids = [d.ann_id for d in t.seen.values() if d.ann_id is not None]
        if ids and sum(i in keep for i in ids) * 2 > len(ids):
            out.add(t.tid)
    return out


def largest_track(tracks: FaceTracks) -> int | None:
    """The track with the largest summed box area (the clip's subject when none is named)."""
    if not tracks.tracks:
        return None
    area = {
        t.tid: sum((d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in t.seen.values())
        for t in tracks.tracks
    }
    return max(area, key=lambda k: (area[k], -k))


def regions_at(
    tracks: FaceTracks,
    pos: int,
    size: tuple[int, int],
    keep: set[int],
    frac: float = DILATE,
    down: float = DOWN,
) -> list[Region]:
    """Frame ``pos``'s regions: each track's box grown by ``frac`` on each side and
    ``down · frac`` below."""
    w, h = size
    return [
        Region(dilate(b, frac, w, h, down * frac), tid, tid in keep, bridged)
        for b, tid, bridged in tracks.boxes_at(pos, size)
    ]


# -- obscuring ---------------------------------------------------------------------------------
