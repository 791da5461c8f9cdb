"""Nothing sovtp reads runs what is inside it (issue 23): checkpoints are safetensors + JSON (+ a
weights-only optimiser state), a pickle that needs full unpickling is refused with one line,
and the caches, HF datasets and transformers models are read as data only.

Each crafted file below would create a marker file if it were fully unpickled; the marker must
never appear, and the commands that were given it exit 2 with one line naming it."""

from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("safetensors")

from sovtp.baselines.checkpoint import (  # noqa: E402
    CONFIG,
    STATE,
    WEIGHTS,
    CheckpointError,
    UnsafeCheckpointError,
    checkpoint_path,
    read_checkpoint,
    variant_name,
)
from sovtp.baselines.data import CropSet  # noqa: E402
from sovtp.baselines.predict import load, predict_crops  # noqa: E402
from sovtp.baselines.train import fit  # noqa: E402
from tests.lfw_crops import (  # noqa: E402
    TINY_MNV2,
    TRAIN_ARGS,
    crop_cache,
    lfw_cropsets,
    tiny_config,
    train_tiny,
    two_sample_manifest,
)

SOVTP = [sys.executable, "-m", "sovtp.cli"]
S = 32

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Touch:
    """Unpickled in full, this creates ``marker`` (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def crafted(path: Path, marker: Path, **extra) -> Path:
    """A .pt that looks like a sovtp checkpoint and runs ``touch MARKER`` when fully loaded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": "sovtp-cnn/1",
            "model": {},
            "config": {"model": "mobilenet_v2"},
            "labels": ["happy", "sad"],
            "payload": Touch(marker),
            **extra,
        },
        path,
    )
    return path


def sovtp(*args, cwd=None):
    return subprocess.run(
        [*SOVTP, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def refused(p, path: Path, marker: Path, convert: bool = True) -> None:
    """Exit 2, one line naming ``path`` (and the conversion), no traceback, nothing run."""
    assert not marker.exists(), "the crafted pickle ran"
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("sovtp: error:")]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert str(path) in lines[0] and "refused" in lines[0], lines[0]
    if convert:
        assert f"convert-checkpoint {path} --i-trust-this-file" in lines[0], lines[0]


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "PWNED_MARKER"
    yield m
    assert not m.exists(), "the crafted pickle ran"


@pytest.fixture(scope="module")
def lfw():
    return lfw_cropsets(S)


def _cfg(**kw):
    return tiny_config(S, **{"steps_per_epoch": 4, "precise_bn": 2} | kw)


@pytest.fixture(scope="module")
def trained(lfw, tmp_path_factory):
    """A training folder (``OUT/last/``) and the predictions on the held-out crops of the model
    as trained, in memory (what every saved and converted form must reproduce exactly)."""
    from sovtp.baselines.pad import load_fold_model

    out = tmp_path_factory.mktemp("trained") / "ck"
    ck = fit(lfw[0], _cfg(), out, progress=False)
    return out, predict_crops(load_fold_model(ck, "cpu"), lfw[1])


def legacy(src: Path, dst: Path, **extra) -> Path:
    """The one-pickle ``last.pt`` today's ``sovtp train`` writes, from a checkpoint folder."""
    ck = read_checkpoint(src, state=True)
    ck.pop("normalisation", None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**ck, "format": "sovtp-cnn/1", **extra}, dst)
    return dst


def _scores(preds):
    return [(p.sample_id, p.label, p.scores) for p in preds]


# -- the checkpoint folder ------------------------------------------------------------------------


def test_a_checkpoint_is_safetensors_json_and_a_weights_only_state(trained):
    out, _ = trained
    last = out / "last"
    assert sorted(x.name for x in last.iterdir()) == sorted([CONFIG, STATE, WEIGHTS])
    meta = json.loads((last / CONFIG).read_text())
    assert meta["format"] == "sovtp-cnn/2" and meta["labels"] == ["face", "other"]
    assert meta["config"]["model"] == "mobilenet_v2" and meta["config"]["seed"] == 0
    assert meta["config"]["size"] == S and "from scratch" in meta["weights"]["weights"]
    assert meta["normalisation"]["mean"] == [0.485, 0.456, 0.406] and len(meta["history"]) == 2
    from safetensors.torch import load_file

    sd = load_file(last / WEIGHTS)
    assert sd.keys() == load(out).model.state_dict().keys()
    st = torch.load(last / STATE, weights_only=True)  # what --resume reads
    assert set(st) == {"optimizer", "scheduler", "epoch"} and st["epoch"] == 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_the_folder_its_files_and_the_training_folder_are_one_checkpoint(trained, lfw):
    out, preds = trained
    assert _scores(predict_crops(out, lfw[1])) == _scores(preds)  # saved exactly
    want = out / "last" / CONFIG
    for p in (out, out / "last", out / "last" / WEIGHTS, out / "last" / CONFIG):
        assert checkpoint_path(p) == want and variant_name(p) == "ck"
    assert _scores(predict_crops(out / "last" / WEIGHTS, lfw[1])) == _scores(preds)
    assert checkpoint_path(out.parent / "nope") == out.parent / "nope" / "last" / CONFIG


def test_the_crafted_file_does_run_when_fully_unpickled(tmp_path, marker):
    """The control: what every test here guards against is real."""
    evil = crafted(tmp_path / "their.pt", marker)
    torch.load(evil, weights_only=False)  # what sovtp did before
    assert marker.exists()
    marker.unlink()


def test_resume_from_an_old_last_pt_is_bit_exact(lfw, tmp_path):
    """An old training folder (one ``last.pt``, read weights-only) resumes exactly as a run
    that never stopped, and from then on writes the folder."""
    cfg = _cfg(steps_per_epoch=2, batch_size=16)
    full = fit(lfw[0], cfg, tmp_path / "a", progress=False)
    fit(lfw[0], cfg, tmp_path / "b", progress=False, stop_after=1)
    legacy(tmp_path / "b", tmp_path / "old" / "last.pt")
    again = fit(lfw[0], cfg, tmp_path / "old", progress=False, resume=True)
    assert again["epoch"] == 1 and (tmp_path / "old" / "last" / WEIGHTS).exists()
    for k, v in full["model"].items():
        assert torch.equal(v, again["model"][k]), k


# -- crafted checkpoints given to every command that reads one ------------------------------------


@pytest.fixture
def manifest(tmp_path, astronaut_png):
    return two_sample_manifest(tmp_path, astronaut_png)


def test_bench_refuses_a_checkpoint_that_would_run_code(tmp_path, manifest, marker):
    evil = crafted(tmp_path / "their.pt", marker)
    refused(
        sovtp("bench", manifest, "--system", f"cnn:{evil}", "-o", tmp_path / "run"), evil, marker
    )
    assert not (tmp_path / "run" / "predictions.jsonl").exists()
    folder = tmp_path / "theirs"  # an old training folder: its last.pt
    bad = crafted(folder / "last.pt", marker)
    refused(
        sovtp("bench", manifest, "--system", f"cnn:{folder}", "-o", tmp_path / "r2"), bad, marker
    )


def test_robust_refuses_a_checkpoint_that_would_run_code(tmp_path, manifest, marker):
    evil = crafted(tmp_path / "their.pt", marker)
    p = sovtp("robust", manifest, "--system", f"cnn:{evil}", "-o", tmp_path / "rob", "--eps", "0,1")
    refused(p, evil, marker)


def test_pad_reads_predictions_as_json_only(tmp_path, marker):
    """``sovtp pad`` reads no checkpoint (it trains its own folds); a pickle handed to it as
    ``--predictions`` is text it cannot read, never unpickled."""
    from tests.baselines.test_liveness import _write_pad_manifest

    (tmp_path / "pad").mkdir()
    data = _write_pad_manifest(tmp_path / "pad", 2, 2, 2, side=32)
    evil = crafted(tmp_path / "preds" / "predictions.jsonl", marker)
    for given in (evil, evil.parent):
        p = sovtp(
            "pad",
            data,
            "-o",
            tmp_path / "run",
            "--arch",
            "none",
            "--predictions",
            given,
            "--no-progress",
        )
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert str(evil) in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not marker.exists()


def test_train_resume_refuses_a_checkpoint_that_would_run_code(tmp_path, manifest, marker):
    old = tmp_path / "old"  # an old training folder: last.pt only
    crop_cache(old)
    evil = crafted(old / "last.pt", marker)
    refused(
        sovtp("train", manifest, "-o", old, *TRAIN_ARGS, "--epochs", 2, "--resume"), evil, marker
    )
    # a real checkpoint folder whose optimiser state was swapped for a crafted pickle
    out = tmp_path / "new"
    crop_cache(out)
    p = sovtp("train", manifest, "-o", out, *TRAIN_ARGS, "--epochs", 1)
    assert p.returncode == 0, p.stderr
    assert "epoch 1" in p.stdout and str(out / "last" / CONFIG) in p.stdout
    state = crafted(out / "last" / STATE, marker)
    p = sovtp("train", manifest, "-o", out, *TRAIN_ARGS, "--epochs", 1, "--resume")
    refused(p, state, marker, convert=False)
    assert "not sovtp's" in p.stderr


def test_initial_weights_are_read_weights_only(tmp_path, marker):
    from sovtp.baselines.models import build_model

    evil = crafted(tmp_path / "w.pth", marker)
    with pytest.raises(UnsafeCheckpointError, match=re.escape(str(evil))):
        build_model("mobilenet_v2", 2, evil, **TINY_MNV2)
    src, _ = build_model("mobilenet_v2", 5, **TINY_MNV2)  # a plain state dict, as torchvision's
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, tmp_path / "w.safetensors")
    m, prov = build_model("mobilenet_v2", 2, tmp_path / "w.safetensors", **TINY_MNV2)
    assert torch.equal(m.features[0][0].weight, src.features[0][0].weight)


# -- old and foreign files: refused, or converted once ---------------------------------------------


def test_todays_checkpoint_converted_once_scores_the_same(trained, lfw, tmp_path, marker):
    """A ``last.pt`` as ``sovtp train`` writes it today reads weights-only (and converts without
    the flag); one that needs full unpickling (an argparse Namespace in it, as many training
    scripts save) is refused until converted with --i-trust-this-file — then it scores exactly
    as the checkpoint it came from."""
    out, preds = trained
    plain = legacy(out, tmp_path / "plain" / "last.pt")
    assert _scores(predict_crops(plain, lfw[1])) == _scores(preds)
    p = sovtp("models", "convert-checkpoint", plain)
    assert p.returncode == 0, p.stderr
    assert _scores(predict_crops(tmp_path / "plain", lfw[1])) == _scores(preds)  # now last/

    foreign = legacy(out, tmp_path / "foreign.pt", args=argparse.Namespace(lr=0.01, seed=0))
    with pytest.raises(UnsafeCheckpointError, match="argparse.Namespace"):
        predict_crops(foreign, lfw[1])
    refused(sovtp("models", "convert-checkpoint", foreign), foreign, marker)
    p = sovtp(
        "models", "convert-checkpoint", foreign, "--i-trust-this-file", "-o", tmp_path / "conv"
    )
    assert p.returncode == 0 and str(tmp_path / "conv") in p.stdout, p.stderr
    assert _scores(predict_crops(tmp_path / "conv", lfw[1])) == _scores(preds)
    meta = json.loads((tmp_path / "conv" / CONFIG).read_text())
    assert meta["converted_from"] == str(foreign) and meta["args"].startswith("Namespace(")
    # and the converted folder resumes (its optimiser state came along)
    assert set(read_checkpoint(tmp_path / "conv", state=True)) >= {"optimizer", "scheduler"}


def test_convert_refuses_a_crafted_file_without_the_flag(tmp_path, marker):
    evil = crafted(tmp_path / "their.pt", marker)
    refused(sovtp("models", "convert-checkpoint", evil), evil, marker)
    assert not (tmp_path / "their").exists()


def test_a_plain_state_dict_is_not_a_trained_checkpoint(tmp_path):
    from sovtp.baselines.models import build_model

    m, _ = build_model("mobilenet_v2", 2, **TINY_MNV2)
    torch.save(m.state_dict(), tmp_path / "sd.pth")
    with pytest.raises(CheckpointError, match=r"sd.pth: not a sovtp checkpoint.*--weights"):
        load(tmp_path / "sd.pth")


# -- caches and other inputs ------------------------------------------------------------------------


def test_a_crafted_crop_cache_is_refused_unread(tmp_path, marker, lfw):
    # crops-eps<e>.pt is what `sovtp robust` names its crop sets
    for name in ("crops-train.safetensors", "crops-eps2.pt", "crops-train.pt"):
        evil = crafted(tmp_path / name, marker)
        with pytest.raises(CheckpointError, match=re.escape(str(evil))):
            CropSet.load(evil)
    lfw[1].save(tmp_path / "crops-eps2.pt")  # any name: the content is safetensors
    back = CropSet.load(tmp_path / "crops-eps2.pt")
    assert torch.equal(back.x, lfw[1].x) and back.ids == lfw[1].ids and back.meta == lfw[1].meta


def test_train_cuts_the_crops_again_over_a_crafted_cache(tmp_path, manifest, marker, monkeypatch):
    import sovtp.baselines.data as data

    out = tmp_path / "ck"
    crop_cache(out)
    good = CropSet.load(out / "crops-train.safetensors")
    crafted(out / "crops-train.safetensors", marker)
    crafted(out / "crops-train.pt", marker)  # the old name is never read
    cut = []
    monkeypatch.setattr(data, "build_cropset", lambda *a, **k: cut.append(1) or good)
    train_tiny(manifest, out)
    assert cut == [1] and CropSet.load(out / "crops-train.safetensors").ids == ["a", "b"]


def test_response_and_annotation_cache_entries_are_data(tmp_path, marker):
    import pickle
    import sqlite3

    from sovtp.annotate.cache import AnnotationCache
    from sovtp.backends.cache import ResponseCache

    rc = ResponseCache(tmp_path / "r.sqlite")
    db = sqlite3.connect(tmp_path / "r.sqlite")
    db.execute("INSERT INTO responses VALUES (?, ?)", ("k", pickle.dumps(Touch(marker)).hex()))
    db.execute("INSERT INTO responses VALUES (?, ?)", ("j", '{"query_id": 3}'))
    db.commit()
    assert rc.get("k") is None and rc.get("j") is None and rc.hits == 0
    ac = AnnotationCache(tmp_path / "ann")
    p = ac._path("ab" * 32)
    p.parent.mkdir(parents=True)
    p.write_bytes(gzip.compress(pickle.dumps(Touch(marker))))
    assert ac.get("ab" * 32) is None
    # JSON of the wrong shape (a damaged entry: a face whose box is null) is a miss, not a crash
    import numpy as np

    from sovtp.types import ClipAnnotation, Face, FrameAnnotation

    face = Face(track_id=1, bbox=(0, 0, 9, 9), score=1.0, landmarks=np.zeros((478, 2), np.float32))
    d = ClipAnnotation("x", "s", "all", [FrameAnnotation(0, 0.0, (9, 9), [face], [])]).to_dict()
    d["frames"][0]["faces"][0]["bbox"] = None
    p.write_bytes(gzip.compress(json.dumps(d).encode()))
    assert ac.get("ab" * 32) is None
    assert not marker.exists()


def test_a_dataset_loading_script_never_runs(tmp_path, marker):
    pytest.importorskip("datasets")
    from sovtp.data.hf import iter_hf
    from sovtp.data.sample import ManifestError

    ds = tmp_path / "myset"
    ds.mkdir()
    (ds / "myset.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    (ds / "data.csv").write_text("image,label\nx.png,happy\n")
    with pytest.raises(ManifestError, match=re.escape(str(ds / "myset.py"))):
        list(iter_hf(str(ds)))
    with pytest.raises(ManifestError, match="loading script"):
        list(iter_hf(str(ds / "myset.py")))


def test_transformers_runs_no_remote_code_unless_told_by_name(monkeypatch):
    pytest.importorskip("transformers")
    from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: F401

    from sovtp.backends.transformers_local import TransformersBackend
    from sovtp.errors import BackendError

    seen = []

    class Fake:
        """Stands for the config, the processor (its own tokenizer) and the model: every
        ``from_pretrained`` records whether it was allowed to run the model's code."""

        model_type = "qwen2_vl"  # an image-text-to-text config: the vision path
        pad_token = eos_token = "</s>"
        padding_side = "right"
        generation_config = type("G", (), {"eos_token_id": 2})()

        @property
        def tokenizer(self):
            return self

        @classmethod
        def from_pretrained(cls, model, **kw):
            seen.append(kw.get("trust_remote_code"))
            return cls()

        def eval(self):
            return self

    transformers = sys.modules["transformers"]  # the module the lazy import settled on
    for name in ("AutoConfig", "AutoProcessor", "AutoModelForImageTextToText"):
        monkeypatch.setattr(transformers, name, Fake)
    TransformersBackend("some/model")
    assert seen == [False, False, False]  # config, processor, model
    with pytest.raises(BackendError, match="trust_remote_code must be true or false"):
        TransformersBackend("some/model", trust_remote_code="no")


def test_nothing_in_sovtp_unpickles_or_runs_remote_code():
    """The source never asks for full unpickling, pickled NumPy, unsafe YAML or remote code,
    and every torch.load says weights_only=True."""
    root = pathlib.Path(__file__).resolve().parents[2] / "sovtp"
    banned = re.compile(
        r"weights_only\s*=\s*False|allow_pickle\s*=\s*True|yaml\.(?:unsafe_|full_)?load\(|"
        r"yaml\.Loader|trust_remote_code\s*=\s*True|pickle\.loads?\(|torch\.load\(\s*\w+\s*\)"
    )
    bad, loads = [], 0
    for f in sorted(root.rglob("*.py")):
        src = f.read_text()
        bad += [f"{f.relative_to(root)}: {m.group(0)}" for m in banned.finditer(src)]
        for m in re.finditer(r"torch\.load\(", src):
            call = re.sub(r"\s+", "", src[m.end() : src.find(")", m.end()) + 1])
            loads += 1
            if "weights_only=True" not in call:
                bad.append(f"{f.relative_to(root)}: torch.load({call}")
    assert not bad and loads >= 2, bad


def test_a_checkpoint_has_one_name_in_runs_and_tables():
    """`cnn:OUT`, `cnn:OUT/last`, a file in it and an old `OUT/last.pt` are one system variant,
    `OUT` — the bench runner's name and the predictor's agree (the runner said `last`)."""
    from sovtp.baselines.checkpoint import variant_name
    from sovtp.baselines.system import cnn_variant as predictor_variant

    for given in (
        "runs/OUT",
        "runs/OUT/last",
        "runs/OUT/last/model.safetensors",
        "runs/OUT/last.pt",
    ):
        assert predictor_variant(given) == variant_name(given) == "OUT", given
    assert predictor_variant("runs/OUT/last", "bn") == "OUT+tta=bn"


def test_convert_never_replaces_a_folder_of_other_files(trained, tmp_path):
    """`convert-checkpoint … -o DIR` replaces DIR whole: a folder that is not a checkpoint (a
    user's work, a training folder given instead of its last/) is refused, untouched."""
    out, _ = trained
    plain = legacy(out, tmp_path / "plain.pt")
    mine = tmp_path / "precious"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("thesis")
    p = sovtp("models", "convert-checkpoint", plain, "-o", mine)
    assert p.returncode == 2 and "not a sovtp checkpoint" in p.stderr, p.stderr
    assert (mine / "chapter1.tex").read_text() == "thesis"
    # an existing checkpoint folder is replaced (that is what converting again means)
    assert sovtp("models", "convert-checkpoint", plain, "-o", tmp_path / "c").returncode == 0
    assert sovtp("models", "convert-checkpoint", plain, "-o", tmp_path / "c").returncode == 0


def test_a_checkpoints_config_cannot_steer_the_model_builder(trained, tmp_path):
    """checkpoint.json is untrusted too: only plain architecture names and numeric shape/rate
    arguments reach the constructor (timm would take checkpoint_path=, hf-hub: names …)."""
    import shutil

    out, _ = trained
    for key, value in (
        ("model_kwargs", {"checkpoint_path": "/tmp/x.pt"}),
        ("model_kwargs", {"width_mult": "0.35"}),
        ("model", "hf-hub:someone/model"),
    ):
        bad = tmp_path / f"bad-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(out / "last", bad)
        meta = json.loads((bad / CONFIG).read_text())
        meta["config"][key] = value
        (bad / CONFIG).write_text(json.dumps(meta))
        with pytest.raises(CheckpointError, match=str(bad)):
            load(bad)
    # an old one-pickle last.pt is read weights-only, and its config is checked all the same
    for cfg in ({"model_kwargs": {"checkpoint_path": "/tmp/x.pt"}}, {"model_kwargs": [1]}):
        old = legacy(out, tmp_path / f"old-{len(list(tmp_path.iterdir()))}" / "last.pt")
        ck = torch.load(old, weights_only=True)
        ck["config"] = {**ck["config"], **cfg}
        torch.save(ck, old)
        with pytest.raises(CheckpointError, match="model_kwargs"):
            load(old)


def test_checkpoint_weights_are_readable_like_any_file_the_user_writes(trained):
    """safetensors writes 0600 whatever the umask; a checkpoint is made to be shared."""
    import os

    out, _ = trained
    mask = os.umask(0)
    os.umask(mask)
    for f in (out / "last" / WEIGHTS, out / "last" / CONFIG):
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f
