"""Aligned face crops of the subject's track, from the annotation cache, as uint8 tensors.

The baselines see the same frames and the same faces as the vision-LLM systems: each sample is
annotated by :func:`sovtp.annotate.pipeline.annotate` (cached by media hash, sampling and
detector config — the bench's own cache entries, when the detector config matches), the
subject is the track with the largest mean face box (or a given track ID), and each of its
faces is rotated about the box centre so the eyes are level, cut square (``margin`` × the
box's long side) and resized.  Crops are cut once and kept as one ``uint8`` tensor
(N × 3 × S × S, a few kB per crop): training moves it to the device once and augments there,
so the data path costs an index and a cast per batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sovtp.types import ClipAnnotation, Face, Frame

log = logging.getLogger(__name__)

# eye corners: MediaPipe's 478-point mesh (outer, inner of each eye) and dlib's 68 points
_EYES = {
    "mediapipe478": ((33, 133), (362, 263)),
    "dlib68": (tuple(range(36, 42)), tuple(range(42, 48))),
}


def eye_angle(face: Face) -> float:
    """Angle in degrees of the line from the image-left eye to the image-right eye (0: level;
    positive: the right-hand eye is lower, in image coordinates)."""
    idx = _EYES.get(face.landmark_scheme)
    lm = face.landmarks
    if idx is None or lm is None or len(lm) <= max(max(idx[0]), max(idx[1])):
        return 0.0
    a = np.asarray(lm)[list(idx[0]), :2].mean(axis=0)
    b = np.asarray(lm)[list(idx[1]), :2].mean(axis=0)
    if a[0] > b[0]:
        a, b = b, a
    return math.degrees(math.atan2(float(b[1] - a[1]), float(b[0] - a[0])))


def align_crop(image: np.ndarray, face: Face, size: int, margin: float = 1.25) -> np.ndarray:
    """The face rotated so its eyes are level, cut square around its box, ``size`` px, uint8."""
    from PIL import Image

    x0, y0, x1, y1 = face.bbox
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * margin
    r = side * 0.75  # room for the rotated corners
    box = (round(cx - r), round(cy - r), round(cx + r), round(cy + r))
    region = Image.fromarray(image).crop(box)  # outside the frame reads as black
    region = region.rotate(eye_angle(face), resample=Image.Resampling.BILINEAR)
    w = region.size[0]
    k = (w - side) / 2
    face_img = region.crop((round(k), round(k), round(k + side), round(k + side)))
    return np.asarray(face_img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def subject_track(clip: ClipAnnotation, subject: int | None = None) -> int | None:
    """The subject's track ID: ``subject`` when given, else the largest mean face box."""
    if subject is not None:
        return subject
    areas: dict[int, list[float]] = {}
    for fa in clip.frames:
        for f in fa.faces:
            areas.setdefault(f.track_id, []).append(f.area)
    if not areas:
        return None
    return max(areas, key=lambda t: (float(np.mean(areas[t])), -t))


def clip_crops(
    clip: ClipAnnotation, frames: Sequence[Frame], size: int, subject: int | None = None
) -> np.ndarray:
    """(N, size, size, 3) uint8: the subject's aligned face in each frame it appears in."""
    tid = subject_track(clip, subject)
    by_index = {fr.index: fr for fr in frames}
    out = []
    for fa in clip.frames:
        f = fa.face(tid) if tid is not None else None
        fr = by_index.get(fa.index)
        if f is not None and fr is not None:
            out.append(align_crop(fr.image, f, size))
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def sample_crops(
    sample: Any,
    size: int,
    sampling: str = "uniform:8",
    *,
    subject: int | None = None,
    detector: Any = None,
    cache: bool = True,
) -> np.ndarray:
    """Crops of one benchmark sample (its interval, when it has one), via the annotation cache."""
    from sovtp.annotate.pipeline import annotate

    samp = sampling
    if getattr(sample, "has_interval", False):
        from sovtp.data.sample import sampling_for

        samp = sampling_for(sample, sampling)
    clip, frames = annotate(sample.media, samp, detector=detector, cache=cache)
    return clip_crops(clip, frames, size, subject)


CROPS_FORMAT = "sovtp-crops/1"
CROP_TENSORS = ("x", "owner", "y")


@dataclass
class CropSet:
    """All crops of a split: ``x`` (N, 3, S, S) uint8, ``owner`` (N,) the sample each crop
    belongs to, ``y`` (n_samples,) label index per sample (-1: unlabelled)."""

    x: Any  # torch.Tensor uint8
    owner: Any  # torch.Tensor int64
    y: Any  # torch.Tensor int64
    ids: list[str]
    labels: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def size(self) -> int:
        return int(self.x.shape[-1])

    def frame_y(self) -> Any:
        return self.y[self.owner]

    def save(self, path: str | Path) -> None:
        """One safetensors file at ``path`` (whatever its suffix): ``x``, ``owner`` and ``y`` as
        tensors, ids, labels and meta as JSON in its header — nothing that runs when read.
        Written to a temporary file, then renamed."""
        import json

        from safetensors.torch import save_file

        path = Path(path)
        tensors = {k: getattr(self, k).detach().to("cpu").contiguous() for k in CROP_TENSORS}
        head = {"ids": list(self.ids), "labels": list(self.labels), "meta": self.meta}
        from sovtp.atomic import atomic_path

        meta = {"format": CROPS_FORMAT, "sovtp": json.dumps(head, default=str)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> CropSet:
        """A crop set :meth:`save` wrote; anything else (a pickle, say) is refused with a
        :class:`~sovtp.baselines.checkpoint.CheckpointError` naming the file, unread."""
        import json

        from safetensors import SafetensorError, safe_open

        from sovtp.baselines.checkpoint import CheckpointError

        path = Path(path)
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                header = f.metadata() or {}
                if header.get("format") != CROPS_FORMAT:
                    raise ValueError(f"format {header.get('format')!r}, not {CROPS_FORMAT}")
                # copies: safetensors maps the file, and a crop set outlives its reading
                t = {k: f.get_tensor(k).clone() for k in CROP_TENSORS}
            head = json.loads(header["sovtp"])
            return cls(
                t["x"],
                t["owner"],
                t["y"],
                [str(i) for i in head["ids"]],
                [str(lab) for lab in head["labels"]],
                dict(head.get("meta") or {}),
            )
        except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{path}: not a sovtp crop set (safetensors): {msg}") from None

    @classmethod
    def from_arrays(
        cls,
        per_sample: Iterable[np.ndarray],
        y: Sequence[str | None],
        ids: Sequence[str],
        labels: Sequence[str],
        meta: dict[str, Any] | None = None,
    ) -> CropSet:
        """From per-sample (k, S, S, 3) uint8 arrays; samples with no crop are left out."""
        import torch

        idx = {lab: i for i, lab in enumerate(labels)}
        xs, owner, keep_y, keep_ids = [], [], [], []
        for arr, lab, sid in zip(per_sample, y, ids, strict=True):
            if len(arr) == 0:
                continue
            owner += [len(keep_ids)] * len(arr)
            keep_ids.append(sid)
            keep_y.append(idx.get(lab, -1) if lab is not None else -1)
            # a copy: the crops may be a read-only view (torch warns, and writes would leak back)
            xs.append(torch.from_numpy(np.array(arr, copy=True)).permute(0, 3, 1, 2))
        if not xs:
            raise ValueError("no sample has a face crop")
        return cls(
            torch.cat(xs).contiguous(),
            torch.tensor(owner, dtype=torch.long),
            torch.tensor(keep_y, dtype=torch.long),
            keep_ids,
            list(labels),
            dict(meta or {}),
        )


def build_cropset(
    samples: Iterable[Any],
    labels: Sequence[str],
    size: int,
    sampling: str = "uniform:8",
    *,
    subject: int | None = None,
    progress: bool = True,
    max_faces: int = 6,
    pose: bool = True,
) -> CropSet:
    """Annotate (or read from the cache) every sample and cut its crops, one detector open.
    ``max_faces``/``pose`` default to the bench's, so both share annotation cache entries."""
    from tqdm.auto import tqdm

    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

    per, ys, ids, no_face = [], [], [], []
    with MediaPipeAnnotator(DetectorConfig(max_faces=max_faces, pose=pose)) as det:
        for s in tqdm(list(samples), desc="face crops", disable=not progress, unit="clip"):
            if getattr(s, "error", None):
                continue
            c = sample_crops(s, size, sampling, subject=subject, detector=det)
            if len(c) == 0:
                no_face.append(s.id)
            per.append(c)
            ys.append(s.label)
            ids.append(s.id)
    if no_face:
        log.warning("%d sample(s) without a face crop are left out: %s", len(no_face), no_face[:5])
    meta = {"sampling": sampling, "subject": subject, "no_face": no_face}
    return CropSet.from_arrays(per, ys, ids, labels, meta)
