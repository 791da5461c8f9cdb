"""Synthetic benchmark samples made from skimage's astronaut (public domain): a few distinct
real-face images and a panning clip, referenced by many manifest rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def make_media(root: Path, video: bool = True) -> list[str]:
    """Distinct media files under ``root``; returns their names."""
    from skimage.data import astronaut

    from sovtp.media.sample import panning_clip, write_video

    root.mkdir(parents=True, exist_ok=True)
    img = astronaut()
    names = []
    for k, (size, flip) in enumerate([(256, False), (256, True), (320, False), (200, True)]):
        a = img[:, ::-1] if flip else img
        p = root / f"astro_{k}.png"
        Image.fromarray(np.asarray(Image.fromarray(a).resize((size, size)))).save(p)
        names.append(p.name)
    if video:
        write_video(root / "pan.mp4", panning_clip(2.0, 10))
        names.append("pan.mp4")
    return names


def write_manifest(root: Path, names: list[str], n: int, distinct: bool = False) -> Path:
    """``n`` rows cycling over ``names`` (``distinct``: each row its own copy of the file, so
    no annotation is shared through the cache)."""
    labels = ["happy", "sad", "neutral", "angry", "surprise"]
    p = root / f"manifest_{n}.jsonl"
    with p.open("w") as f:
        for i in range(n):
            name = names[i % len(names)]
            if distinct:
                src = root / name
                dst = root / "copies" / f"{i:05d}{src.suffix}"
                dst.parent.mkdir(exist_ok=True)
                # trailing bytes make a new sha256 (no shared annotation) and decoders ignore them
                dst.write_bytes(src.read_bytes() + f"\0copy{i}".encode())
                name = str(dst.relative_to(root))
            f.write(json.dumps({"id": f"s{i:05d}", "media": name, "label": labels[i % 5]}) + "\n")
    return p
