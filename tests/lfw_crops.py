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


TINY_MNV2 = {"width_mult": 0.35}


def trained_tiny(out, size: int = 32, **cfg):
    """A MobileNetV2 (width 0.35) trained 2 × 10 steps on the 140 LFW train crops (~5 s);
    returns (checkpoint folder, held-out crops)."""
    import torch

    from sovtp.baselines.train import TrainConfig, fit

    train_set, held_out = lfw_cropsets(size)
    base = dict(model="mobilenet_v2", size=size, epochs=2, batch_size=32, lr=1e-2,
                weight_decay=0.0, steps_per_epoch=10, model_kwargs=TINY_MNV2, device="cpu")  # fmt: skip
    torch.set_num_threads(1)
    fit(train_set, TrainConfig(**{**base, **cfg}), out, progress=False)
    return out, held_out
