"""``sovtp train`` under the run engine's folder rules (issue 24 item 5): one writer, ``--resume``
only with the settings the folder was trained with (each change named), a label set that can
train a classifier, and a clear line for an ``-o`` that is a file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.lfw_crops import TRAIN_ARGS, crop_cache, two_sample_manifest  # noqa: E402


def sovtp(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sovtp", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


@pytest.fixture
def manifest(tmp_path, astronaut_png):
    return two_sample_manifest(tmp_path, astronaut_png)


@pytest.fixture
def trained(tmp_path, manifest) -> Path:
    out = tmp_path / "ck"
    crop_cache(out)  # no face detector needed: the crops are cached
    p = sovtp("train", manifest, "-o", out, *TRAIN_ARGS, "--epochs", 1, "--lr", "0.001")
    assert p.returncode == 0, p.stderr
    return out


CHANGES = {  # option → how the refusal names it
    ("--lr", "0.05"): "config.lr: 0.001 → 0.05",
    ("--seed", "3"): "config.seed: 0 → 3",
    ("--epochs", "2"): "config.epochs: 1 → 2",
    ("--no-augment",): "config.augment: True → False",
    ("--balance", "loss"): "config.balance: 'sampler' → 'loss'",
    ("--batch-size", "4"): "config.batch_size: 2 → 4",
    ("--freq",): "config.freq: False → True",
}


@pytest.mark.slow
def test_resume_refuses_changed_settings_naming_each(trained, manifest):
    before = (trained / "config.json").read_text()
    base = ["train", manifest, "-o", trained, *TRAIN_ARGS, "--epochs", 1, "--lr", "0.001"]
    base.append("--resume")
    p = sovtp(*base, *[a for opt in CHANGES for a in opt])  # every change at once: each named
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    for named in CHANGES.values():
        assert named in p.stderr, (named, p.stderr)
    p = sovtp(*base, "--lr", "0.05")  # one change alone is enough
    assert p.returncode == 2 and "config.lr: 0.001 → 0.05" in p.stderr, p.stderr
    assert (trained / "config.json").read_text() == before  # nothing written over


@pytest.mark.slow
def test_resume_with_the_same_settings_goes_on_and_a_run_needs_resume(trained, manifest):
    same = ["train", manifest, "-o", trained, *TRAIN_ARGS, "--epochs", 1, "--lr", "0.001"]
    p = sovtp(*same)
    assert p.returncode == 2 and "add --resume" in p.stderr, p.stderr
    p = sovtp(*same, "--resume")
    assert p.returncode == 0, p.stderr
    assert not (trained / ".lock").exists()  # a finished folder holds no lock


def test_a_folder_held_by_another_process_is_refused(tmp_path, manifest):
    """Another process holds the folder (as a training does for its whole run): train is
    refused at once, naming the holder's pid, and writes nothing."""
    out = tmp_path / "ck"
    hold = (
        "import sys, time; from sovtp.recipes.train import TrainFolder; "
        "f = TrainFolder(sys.argv[1]); f.lock(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        p = sovtp("train", manifest, "-o", out, *TRAIN_ARGS, "--epochs", 1)
        assert p.returncode == 2, p.stderr
        assert f"in use by another sovtp process (pid {holder.pid})" in p.stderr, p.stderr
        assert not (out / "last").exists()
    finally:
        holder.kill()
        holder.wait()


def test_one_class_and_a_file_as_out_are_one_line(tmp_path, astronaut_png):
    one = tmp_path / "one.csv"
    one.write_text(f"id,media,label,split\na,{astronaut_png},happy,train\n")
    p = sovtp("train", one, "-o", tmp_path / "ck", *TRAIN_ARGS, "--labels", "happy,sad")
    assert p.returncode == 2 and "at least two" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    f = tmp_path / "file"
    f.write_text("x")
    p = sovtp("train", one, "-o", f, *TRAIN_ARGS)
    assert p.returncode == 2 and "is a file" in p.stderr and "Traceback" not in p.stderr, p.stderr


@pytest.mark.slow
def test_a_checkpoint_from_another_label_set_is_refused_by_bench(trained, manifest, tmp_path):
    """Trained on happy/sad, benched against the liveness labels: refused before any sample
    (its answers would all be invalid, silently); against a set that maps them it runs."""
    run = tmp_path / "run"
    bench = ["bench", manifest, "--system", f"cnn:{trained}", "--no-check"]
    p = sovtp(*bench, "--labels", "liveness", "-o", run)
    assert p.returncode == 2, p.stderr
    assert "trained on labels happy, sad" in p.stderr and "'liveness'" in p.stderr, p.stderr
    assert not (run / "predictions.jsonl").exists()
    p = sovtp(*bench, "--labels", "basic7", "-o", tmp_path / "ok")
    rows = [json.loads(x) for x in (tmp_path / "ok" / "predictions.jsonl").read_text().splitlines()]
    assert p.returncode in (0, 3), p.stderr
    assert {r["label"] for r in rows} <= {"happy", "sad", None} and len(rows) == 2
    assert all(r["scores"] is None or set(r["scores"]) <= {"happy", "sad"} for r in rows)


def test_an_interrupted_training_says_how_to_go_on(tmp_path, manifest):
    """Ctrl-C (or a scheduler's SIGTERM) mid-training: exit 130, the folder let go, and the way
    on said (last/ holds the last finished epoch; --resume continues it) — it ended silently."""
    import signal

    from tests.processes import signal_when

    out = tmp_path / "ck"
    crop_cache(out)
    argv = ["train", manifest, "-o", out, *TRAIN_ARGS, "--epochs", 100000, "--lr", "0.001"]
    argv = [sys.executable, "-m", "sovtp", *argv]
    rc, _, err = signal_when(argv, (out / "last").exists, signal.SIGTERM, wait_s=120)
    assert rc == 130, err
    assert f"interrupted: {out}/last holds the last finished epoch" in err and "--resume" in err
    assert not (out / ".lock").exists()
