"""Real face crops for the CNN tests: skimage's LFW subset (100 faces, then 100 non-face
patches, 25×25 grey) as RGB crops, split 140 train / 60 held out (seeded)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def lfw_cropsets(size: int, seed: int = 0):
    """(train, held_out) CropSets labelled face / other."""
    from skimage import data

    from sovtp.baselines.data import CropSet

    x = data.lfw_subset()
    imgs = [
        np.repeat(np.asarray(Image.fromarray((a * 255).astype(np.uint8)).resize((size, size)))[..., None], 3, -1)[None]
        for a in x
    ]  # fmt: skip
    lab = ["face"] * 100 + ["other"] * 100
    perm = np.random.default_rng(seed).permutation(200)

    def mk(ix):
        return CropSet.from_arrays(
            [imgs[i] for i in ix], [lab[i] for i in ix], [f"s{i}" for i in ix], ["face", "other"]
        )

    return mk(perm[:140]), mk(perm[140:])
