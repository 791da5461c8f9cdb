"""Adversarial perturbations of whole frames: the face crop a CNN reads is a differentiable
resampling of the frame (:func:`crop_grid`, :func:`diff_crop`), so PGD can attack the frame
itself, inside the face region only (:func:`perturb_frame`); :func:`write_perturbed_set` writes
the perturbed frames with a manifest for a vision-LLM run on the same samples.  Crop-level
attacks and their accuracy-vs-ε curves are in :mod:`sovtp.baselines.robust`."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sovtp.baselines.robust import Attack, _attack01, _quantise
from sovtp.baselines.train import normalise


def crop_geometry(face: Any, size: int, margin: float = 1.25) -> dict[str, Any]:
    """The numbers :func:`sovtp.baselines.data.align_crop` uses, to rebuild its map."""
    from sovtp.baselines.data import eye_angle

    x0, y0, x1, y1 = face.bbox
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * margin
    r = side * 0.75
    box = (round(cx - r), round(cy - r), round(cx + r), round(cy + r))
    w = box[2] - box[0]
    k = (w - side) / 2
    k0, k1 = round(k), round(k + side)
    return {"box": box, "w": w, "k0": k0, "n": k1 - k0, "angle": eye_angle(face), "size": size}


def crop_grid(geo: dict[str, Any], height: int, width: int, device: Any = None) -> Any:
    """``grid_sample`` grid (1, n, n, 2) taking the frame to the rotated square at native
    resolution, the way PIL's crop + rotate(angle, about the box centre) + crop do."""
    import torch

    n, k0, w = geo["n"], geo["k0"], geo["w"]
    bx0, by0 = geo["box"][:2]
    t = -math.radians(geo["angle"])
    c, s = math.cos(t), math.sin(t)
    q = torch.arange(n, dtype=torch.float64, device=device) + k0 + 0.5 - w / 2
    qy, qx = torch.meshgrid(q, q, indexing="ij")
    # PIL's rotate: an output point q samples the input at R(q - centre) + centre
    px = c * qx + s * qy + w / 2 + bx0
    py = -s * qx + c * qy + w / 2 + by0
    gx = 2 * px / width - 1
    gy = 2 * py / height - 1
    return torch.stack([gx, gy], -1)[None].float()


def diff_crop(frame01: Any, grid: Any, size: int) -> Any:
    """(1, 3, H, W) float frame → (1, 3, size, size) aligned crop, differentiably."""
    import torch.nn.functional as F

    sq = F.grid_sample(frame01, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if sq.shape[-1] == size:
        return sq
    return F.interpolate(
        sq, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )


def _region(geo: dict[str, Any], h: int, w: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = geo["box"]
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def perturb_frame(
    loaded: Any,
    image: np.ndarray,
    face: Any,
    y: int,
    eps: float,
    attack: Attack = Attack(),
) -> np.ndarray:
    """One RGB uint8 frame with its subject's face region attacked through the alignment map
    (only pixels of the face's crop box change; each by at most ε grey levels).  ``y`` is the
    target class index (the gold label; -1: the model's prediction on the clean crop)."""
    import torch

    if eps <= 0:
        return image.copy()
    model = loaded.model
    dev = loaded.device
    h, w = image.shape[:2]
    geo = crop_geometry(face, loaded.size)
    x0, y0, x1, y1 = _region(geo, h, w)
    if x1 <= x0 or y1 <= y0:
        return image.copy()
    sub_u8 = torch.from_numpy(np.ascontiguousarray(image[y0:y1, x0:x1])).permute(2, 0, 1)[None]
    # the grid in the sub-image's coordinates: shift the box by the sub-image's origin
    geo_sub = {**geo, "box": (geo["box"][0] - x0, geo["box"][1] - y0, 0, 0)}
    grid = crop_grid(geo_sub, y1 - y0, x1 - x0, dev)

    def fn(t: Any) -> Any:
        return diff_crop(t, grid, loaded.size)

    was = model.training
    model.eval()
    try:
        x01 = sub_u8.to(dev).float() / 255
        yt = torch.tensor([y], device=dev)
        if y < 0:
            with torch.no_grad():
                yt = model(normalise(fn(x01))).argmax(1)
        gen = torch.Generator().manual_seed(attack.seed)
        xa = _attack01(model, x01, yt, eps, attack, gen, fn)
    finally:
        model.train(was)
    out = image.copy()
    q = _quantise(xa.cpu(), sub_u8, eps)[0].permute(1, 2, 0).numpy()
    out[y0:y1, x0:x1] = q
    return out


def perturb_frames(
    loaded: Any,
    sample: Any,
    eps: float,
    attack: Attack = Attack(),
    *,
    sampling: str | None = None,
    detector: Any = None,
) -> list[tuple[int, np.ndarray]]:
    """(frame index, perturbed RGB uint8 frame) for each sampled frame of a sample (its
    interval's, when it has one), the subject's face attacked through the alignment; frames
    without the subject are returned unchanged.  Frame ``j`` draws its random start from
    ``attack.seed + j``."""
    from sovtp.annotate.pipeline import annotate
    from sovtp.baselines.data import subject_track

    samp = sampling or loaded.config.get("sampling", "uniform:8")
    if getattr(sample, "has_interval", False):
        from sovtp.data.sample import sampling_for

        samp = sampling_for(sample, samp)
    clip, frames = annotate(sample.media, samp, detector=detector, cache=True)
    tid = subject_track(clip, loaded.config.get("subject"))
    labs = {lab: i for i, lab in enumerate(loaded.labels)}
    y = labs.get(sample.label, -1) if sample.label is not None else -1
    faces = {fa.index: fa.face(tid) if tid is not None else None for fa in clip.frames}
    out = []
    for j, fr in enumerate(frames):
        f = faces.get(fr.index)
        img = fr.image
        if f is not None:
            img = perturb_frame(loaded, img, f, y, eps, replace(attack, seed=attack.seed + j))
        out.append((fr.index, img))
    return out


def write_perturbed_set(
    loaded: Any,
    samples: Iterable[Any],
    eps: float,
    out: str | Path,
    attack: Attack = Attack(),
    *,
    sampling: str | None = None,
    detector: Any = None,
) -> Path:
    """Perturbed frames of every sample as lossless PNG under ``out/media/`` and a manifest
    ``out/manifest.csv`` (same sample IDs and gold labels) that ``sovtp bench`` reads: an image
    sample → ``media/<n>.png``; a video (or interval) → a folder ``media/<n>/`` of its sampled
    frames only (``frame_<index>.png``), so a bench sampling of ``uniform:K`` with K = the
    sampling's frame count takes every one of them.  ε = 0 writes the clean frames the same
    way: the clean control of a flip-rate comparison goes through the same files."""
    from PIL import Image

    from sovtp.media.files import is_image

    out = Path(out)
    (out / "media").mkdir(parents=True, exist_ok=True)
    rows = []
    own = None
    if detector is None:
        from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

        own = detector = MediaPipeAnnotator(DetectorConfig()).__enter__()
    try:
        for n, s in enumerate(samples):
            if getattr(s, "error", None):
                continue
            fr = perturb_frames(loaded, s, eps, attack, sampling=sampling, detector=detector)
            single = is_image(s.media) and len(fr) == 1 and not getattr(s, "has_interval", False)
            if single:
                rel = f"media/{n:06d}.png"
                Image.fromarray(fr[0][1]).save(out / rel)
            else:
                rel = f"media/{n:06d}"
                (out / rel).mkdir(exist_ok=True)
                for idx, img in fr:
                    Image.fromarray(img).save(out / rel / f"frame_{idx:08d}.png")
            rows.append(
                {
                    "id": s.id,
                    "media": rel,
                    "label": s.label or "",
                    "split": getattr(s, "split", None) or "",
                    "source_media": str(s.media),
                    "frames": len(fr),
                    "eps": eps,
                    "attack": attack.kind,
                }
            )
    finally:
        if own is not None:
            own.close()
    man = out / "manifest.csv"
    cols = ["id", "media", "label", "split", "source_media", "frames", "eps", "attack"]
    with man.open("w", newline="") as f:
        wr = csv.DictWriter(f, cols)
        wr.writeheader()
        wr.writerows(rows)
    return man


# --- answer flips --------------------------------------------------------------------------
