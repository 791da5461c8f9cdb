"""Face re-identification after sovtp's de-identification, over several identities.

    python benchmarks/face_reid.py [--faces 20] [--size 160] [--mode blur|pixelate]

Faces: the astronaut (``skimage.data.astronaut()``, public domain) and the first ``--faces`` of
scikit-image's LFW subset (``skimage.data.lfw_subset()``: 100 LFW faces, 25×25 grey — the crops
``tests/lfw_crops.py`` trains the CNN tests on), each scaled to ``--size`` pixels (bicubic) and
set in the middle of a grey 2×size canvas so that the detectors see a face with context.

Each image goes through sovtp's own pipeline, :func:`sovtp.deid.faces.deidentify_frames` (both
detectors unioned, boxes dilated, obscured, re-checked).  Then dlib's face recognition ResNet
(the audit's :class:`sovtp.deid.audit.DlibEmbedder`; "same person" below a Euclidean distance of
0.6, dlib's own threshold) compares the raw face with the de-identified image, the attacker given
the best case: both are aligned with the *raw* face's five landmarks.  Printed per face: whether
sovtp found it, the raw → de-identified distance, and in total the share of de-identified faces
*below* the threshold (re-identified; target ≤ 1 %) and above it.

A control: the raw faces' distances to each other — the share of *different* faces below 0.6 says
how well dlib tells these (upscaled, low-resolution) faces apart at all.  LFW's subset carries no
identity labels; the LFW faces are treated as distinct people, which the control checks.

Measured here (one run each):

    faces                mode      found    re-identified  min dist  mean   control pairs < 0.6
    100 LFW + astronaut  blur      101/101  0/101 (0 %)    0.605     0.766  8.1 % of 5050
    40 LFW + astronaut   pixelate  41/41    1/41 (2.4 %)   0.591     0.750  9.3 % of 820

Blur (the default) meets the ≥ 99 % target on these faces, with a thin margin (0.605 against
0.6); pixelate misses it by one face.  Caveat: these are 25-pixel faces scaled up, on which dlib
itself is weak (8 % of different-face pairs fall below 0.6), so this is a floor on the number
of identities, not a substitute for real high-resolution faces.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def faces(n: int, size: int) -> list[tuple[str, np.ndarray, tuple[float, float, float, float]]]:
    """(name, RGB canvas, face box xyxy) for the astronaut and ``n`` LFW faces."""
    from PIL import Image
    from skimage import data

    out = []
    canvas = 2 * size
    lfw = data.lfw_subset()[: min(n, 100)]
    for k, a in enumerate(lfw):
        img = Image.fromarray((a * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
        c = np.full((canvas, canvas), 128, np.uint8)
        o = (canvas - size) // 2
        c[o : o + size, o : o + size] = np.asarray(img)
        out.append((f"lfw{k:02d}", np.repeat(c[..., None], 3, -1), (o, o, o + size, o + size)))
    ast = data.astronaut()  # face near (170-260, 60-180) in the 512×512 original
    out.append(("astronaut", np.ascontiguousarray(ast), (160.0, 60.0, 280.0, 200.0)))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=20, help="LFW faces (plus the astronaut)")
    ap.add_argument("--size", type=int, default=160, help="face side in pixels after scaling")
    ap.add_argument("--mode", default="blur", choices=["blur", "pixelate"])
    ap.add_argument("--threshold", type=float, default=0.6)
    args = ap.parse_args(argv)

    from sovtp.deid.audit import DlibEmbedder
    from sovtp.deid.faces import FaceFinder, deidentify_frames
    from sovtp.types import Frame

    t0 = time.perf_counter()
    items = faces(args.faces, args.size)
    emb = DlibEmbedder()
    dists, found, raw_e = [], [], []
    print("face        found  dist(raw, deid)  re-identified")
    with FaceFinder() as finder:
        for name, img, box in items:
            seen = bool(finder.find(img))
            (out,) = deidentify_frames([Frame(0, 0.0, img)], mode=args.mode, finder=finder)
            if name == "astronaut":  # the raw face's own box (detector) when there is one
                dets = finder.find(img)
                box = dets[0].box if dets else box
            shape = emb.shape(img, box)
            e_raw, e_deid = emb.embed(img, shape), emb.embed(out.image, shape)
            d = float(np.linalg.norm(e_raw - e_deid))
            dists.append(d)
            found.append(seen)
            raw_e.append(e_raw)
            print(f"{name:10s}  {'yes' if seen else 'NO ':3s}    {d:.3f}            "
                  f"{'YES' if d < args.threshold else 'no'}")  # fmt: skip
    dists_a = np.asarray(dists)
    n = len(dists)
    reid = int((dists_a < args.threshold).sum())
    e = np.stack(raw_e)
    pair = [float(np.linalg.norm(e[i] - e[j])) for i in range(n) for j in range(i + 1, n)]
    pair_a = np.asarray(pair)
    print(
        f"\n{n} faces ({n - 1} LFW + astronaut), {args.mode}; sovtp's detectors found "
        f"{sum(found)}/{n} raw faces"
    )
    print(
        f"raw -> de-identified distance: min {dists_a.min():.3f}  mean {dists_a.mean():.3f}; "
        f"below threshold {args.threshold} (re-identified): {reid}/{n} = {reid / n:.1%}; "
        f"above: {1 - reid / n:.1%} (target >= 99 %)"
    )
    print(
        f"control, raw faces vs each other: {len(pair)} pairs, min {pair_a.min():.3f} "
        f"mean {pair_a.mean():.3f}; pairs below {args.threshold}: "
        f"{(pair_a < args.threshold).mean():.1%} (dlib's false matches on these faces)"
    )
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
