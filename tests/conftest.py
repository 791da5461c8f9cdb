"""Shared fixtures: real faces from skimage's astronaut (public domain), media made with PyAV."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sovtp.media.sample import astronaut, panning_clip, write_video


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite tests/prompting/golden snapshots"
    )


def pytest_collection_modifyitems(config, items):
    """`network` tests need model hubs this machine cannot reach: skipped unless
    SOVTP_NETWORK_TESTS=1, whatever ``-m`` a run gives (a ``-m "not slow"`` quick lane replaced
    the default ``-m 'not network'`` and selected them)."""
    if os.environ.get("SOVTP_NETWORK_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs model hubs (set SOVTP_NETWORK_TESTS=1 to run)")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Annotation cache in a temp dir; models stay in the user cache (fetched by ./run)."""
    old = os.environ.get("SOVTP_CACHE_DIR")
    cache = tmp_path_factory.mktemp("cache")
    models = Path.home() / ".cache" / "sovtp" / "models"
    if models.exists():
        (cache / "models").symlink_to(models)
    os.environ["SOVTP_CACHE_DIR"] = str(cache)
    yield
    if old is None:
        os.environ.pop("SOVTP_CACHE_DIR", None)
    else:
        os.environ["SOVTP_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def astronaut_png_shared(media_dir) -> Path:
    p = media_dir / "astronaut.png"
    Image.fromarray(astronaut()).save(p)
    return p


@pytest.fixture(scope="session")
def two_faces_png_shared(media_dir) -> Path:
    """The astronaut twice, side by side, the right one mirrored."""
    img = astronaut()
    p = media_dir / "two_faces.png"
    Image.fromarray(np.concatenate([img, img[:, ::-1]], axis=1)).save(p)
    return p


@pytest.fixture(scope="session")
def no_face_png_shared(media_dir) -> Path:
    from skimage import data

    p = media_dir / "coffee.png"
    Image.fromarray(data.coffee()).save(p)
    return p


@pytest.fixture(scope="session")
def pan_mp4_shared(media_dir) -> Path:
    """3 s, 10 fps, 640×360: the astronaut's face panning left to right."""
    return write_video(media_dir / "pan.mp4", panning_clip(3.0, 10))


@pytest.fixture(scope="session")
def talking_clip_shared(media_dir) -> Path:
    """The astronaut panning across a 640×360 frame for 2 s, with speech muxed on (espeak-ng when
    installed, else a vowel-like pulse train): the de-identified mode's test clip."""
    from sovtp.deid.media_writer import encode_media
    from sovtp.testing import speech

    path = media_dir / "talk.mp4"
    samples = speech("I am quite upset about how this went today.", 2.0, 16000, pitch_hz=140.0)
    encode_media(
        path, frames=panning_clip(seconds=2.0, fps=10), fps=10, samples=samples, rate=16000
    )
    return path


@pytest.fixture(scope="session")
def detector():
    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

    with MediaPipeAnnotator(DetectorConfig()) as det:
        yield det


@pytest.fixture(scope="session", autouse=True)
def _deterministic_torch():
    """One torch thread and deterministic kernels for the whole session: the CNN tests train,
    attack and adapt models, and their numbers must not depend on the machine's core count or
    OMP_NUM_THREADS (2 shared cores: torch's own pool fighting other processes also costs 10x).
    Seeds are each test's own (TrainConfig.seed, the crop split's seed)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(n)


@pytest.fixture
def one_torch_thread():
    """The CNN tests' numbers are measured on one torch thread.  The session starts on one
    (``_deterministic_torch``), but faster-whisper's CTranslate2 sets the process's OpenMP
    thread count, which torch shares (2 after the ASR tests): each CNN test sets 1 again and
    restores what it found."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# Test media as a user's data lies: beside the test's own manifest.  A manifest may only name
# media under its root (its folder, or --root) — paths that leave it are refused — so each test
# gets its own copy of the session's media in ``tmp_path/media/`` (the ``*_shared`` fixtures are
# the session originals, for module-scoped fixtures that write their manifest beside them).
def _local(tmp_path: Path, shared: Path) -> Path:
    import shutil

    dst = tmp_path / "media" / shared.name
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared, dst)
    return dst


def _local_fixture(name: str):
    """``name``: a copy of the session's ``<name>_shared`` file in this test's ``tmp_path/media``."""

    @pytest.fixture(name=name)
    def fixture(request, tmp_path) -> Path:
        return _local(tmp_path, request.getfixturevalue(f"{name}_shared"))

    return fixture


astronaut_png_local = _local_fixture("astronaut_png")
two_faces_png_local = _local_fixture("two_faces_png")
no_face_png_local = _local_fixture("no_face_png")
pan_mp4_local = _local_fixture("pan_mp4")
talking_clip_local = _local_fixture("talking_clip")
