"""The run engine's folder guarantees, the same for every recipe (issue 18 item 4): one writer,
one kind of run per folder, atomic files, no lock left in a finished folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sovtp.engine.folder import RunFolder, RunKindError, RunLocked, atomic_write
from sovtp.errors import SovtpError


def sovtp(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sovtp", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_folder_of_one_kind_is_refused_by_another(tmp_path):
    with RunFolder(tmp_path / "r", "pad") as f:
        f.claim()
    assert json.loads((tmp_path / "r" / "run.json").read_text())["kind"] == "pad"
    assert not (tmp_path / "r" / ".lock").exists()
    with pytest.raises(RunKindError, match="holds a `pad` run; `sovtp bench`"):
        RunFolder(tmp_path / "r", "bench").claim()
    assert not (tmp_path / "r" / ".lock").exists()  # a refusal lets the folder go
    # a folder from before run.json is known by its files
    (tmp_path / "old" / "last").mkdir(parents=True)
    (tmp_path / "old" / "last" / "checkpoint.json").write_text("{}")
    with pytest.raises(RunKindError, match="holds a `train` run"):
        RunFolder(tmp_path / "old", "spot").claim()


def test_results_need_resume_and_a_resume_names_each_change(tmp_path):
    class F(RunFolder):
        def has_results(self) -> bool:
            return (self.root / "rows").exists()

    f = F(tmp_path, "bench")
    f.claim({"settings": {"fps": 2, "seed": 5}})
    (tmp_path / "rows").write_text("x")
    f.close()
    with pytest.raises(SovtpError, match="add --resume"):
        F(tmp_path, "bench").claim({"settings": {"fps": 2, "seed": 5}})
    with pytest.raises(SovtpError) as e:
        F(tmp_path, "bench").claim({"settings": {"fps": 8, "seed": 0}}, resume=True)
    assert "settings.fps: 2 → 8" in str(e.value) and "settings.seed: 5 → 0" in str(e.value)
    g = F(tmp_path, "bench")
    g.claim({"settings": {"fps": 2, "seed": 5}}, resume=True)  # the same settings: goes on
    with pytest.raises(RunLocked, match="already being written by this process"):
        F(tmp_path, "bench").lock()
    g.close()


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    """A write that fails midway (here: data the file cannot take) leaves the old file and no
    temporary file behind; one that succeeds replaces it whole."""
    p = tmp_path / "a.json"
    atomic_write(p, "old")

    with pytest.raises((OSError, TypeError)):
        atomic_write(p, [b"half", None])  # type: ignore[arg-type]
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["a.json"]
    atomic_write(p, b"new")
    assert p.read_bytes() == b"new" and [x.name for x in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.slow
def test_recipes_of_different_kinds_on_one_folder_are_refused(tmp_path, astronaut_png):
    """A bench run's folder taken by `pad` (and a pad folder by `bench`) is refused in one line
    before anything is written; `pad --predictions` of an emotion run is refused, not scored as
    100 % error."""
    from tests.baselines.test_liveness import _write_pad_manifest

    man = tmp_path / "m.csv"
    man.write_text(f"id,media,label\na,{astronaut_png},happy\n")
    run = tmp_path / "run"
    p = sovtp("bench", man, "-o", run, "--no-check")
    assert p.returncode == 0, p.stderr
    assert json.loads((run / "run.json").read_text())["kind"] == "bench"
    assert not (run / ".lock").exists()
    before = sorted(x.name for x in run.iterdir())
    (tmp_path / "pad").mkdir()
    data = _write_pad_manifest(tmp_path / "pad", 2, 2, 2, side=16)
    p = sovtp("pad", data, "-o", run, "--arch", "none", "--predictions", run, "--no-progress")
    assert p.returncode == 2 and "not a PAD run (gold labels happy)" in p.stderr, p.stderr
    zero = tmp_path / "zero"  # a folder of another kind
    (zero).mkdir()
    (zero / "run.json").write_text(json.dumps({"kind": "pad"}))
    p = sovtp("bench", man, "-o", zero, "--no-check")
    assert p.returncode == 2 and "holds a `pad` run" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.count("error:") == 1, p.stderr
    p = sovtp("spot", man, "-o", run)
    assert p.returncode == 2 and "holds a `bench` run" in p.stderr, p.stderr
    assert sorted(x.name for x in run.iterdir()) == before
