"""Liveness / presentation-attack detection: a PAD manifest of real faces (skimage's astronaut
and LFW faces) and *simulated* attacks built from them, the leave-one-attack-out folds, a tiny
CNN trained with and without the frequency channel, and the error rates recomputed by hand from
the predictions.  The tests assert that the numbers are computed right, not that the model is
good (a few steps on 32-px crops)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from sovtp.data.manifest import read_manifest
from sovtp.data.pad import (
    SIMULATED,
    PadProtocol,
    attack_of,
    leave_one_attack_out,
    simulate_attack,
)
from sovtp.report.pad import FOLD_METRICS, pad_report, pad_section

SIDE = 64  # stored image side; the CNN reads 32-px crops


def _faces(n_lfw: int, side: int = SIDE) -> list[np.ndarray]:
    """Bona fide face crops: the astronaut's face, then ``n_lfw`` LFW faces (grey → RGB)."""
    from skimage import data

    a = data.astronaut()[30:190, 150:290]
    out = [np.asarray(Image.fromarray(a).resize((side, side), Image.Resampling.BICUBIC))]
    for f in data.lfw_subset()[:n_lfw]:  # the first 100 are faces
        g = Image.fromarray((f * 255).astype(np.uint8)).resize((side, side), Image.BICUBIC)
        out.append(np.repeat(np.asarray(g)[..., None], 3, -1))
    return out


def _write_pad_manifest(root, n_train, n_dev, n_test, side=SIDE, kinds=SIMULATED, drop=()):
    """Identities × (bona fide + each simulated attack in ``kinds``), split by identity so no
    face crosses splits; ``drop`` leaves those columns out."""
    rows = []
    for i, face in enumerate(_faces(n_train + n_dev + n_test - 1, side)):
        split = "train" if i < n_train else "dev" if i < n_train + n_dev else "test"
        for kind in ("bona_fide", *kinds):
            img = face if kind == "bona_fide" else simulate_attack(face, kind, seed=i)
            name = f"id{i:02d}_{kind}.png"
            Image.fromarray(img).save(root / name)
            rows.append(
                {
                    "id": f"id{i:02d}_{kind}",
                    "media": name,
                    "label": "bona fide" if kind == "bona_fide" else "attack",
                    "attack": "" if kind == "bona_fide" else kind,
                    "split": split,
                    "subject": f"id{i:02d}",
                }
            )
    p = root / "manifest.csv"
    with p.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k not in drop])
        w.writeheader()
        w.writerows([{k: v for k, v in r.items() if k not in drop} for r in rows])
    return p


@pytest.fixture(scope="module")
def pad_manifest(tmp_path_factory):
    """24 identities × (bona fide + 3 simulated attacks); identities split 12/6/6 into
    train/dev/test so no face crosses splits."""
    return _write_pad_manifest(tmp_path_factory.mktemp("pad"), 12, 6, 6)


def test_simulated_attacks_leave_their_artefacts():
    face = _faces(0)[0]

    def hf(img):  # share of spectral energy above 1/4 cycle per pixel, per colour channel
        x = np.asarray(img, float)
        fy, fx = np.meshgrid(*(np.fft.fftfreq(n) for n in x.shape[:2]), indexing="ij")
        high = np.hypot(fy, fx) > 0.25
        f = np.abs(np.fft.fft2(x - x.mean((0, 1)), axes=(0, 1))) ** 2
        return f[high].sum() / f.sum()

    base = hf(face)
    assert hf(simulate_attack(face, "print")) > 3 * base  # halftone dots
    assert hf(simulate_attack(face, "replay")) > 3 * base  # sub-pixel stripes
    assert hf(simulate_attack(face, "digital")) < base  # resampled: detail lost
    pr = simulate_attack(face, "print")
    assert pr.shape == face.shape and (pr[:3] > 200).all()  # the paper border
    with pytest.raises(ValueError, match="mask"):
        simulate_attack(face, "mask")


def test_leave_one_attack_out_folds(pad_manifest):
    samples = list(read_manifest(pad_manifest, split="all"))
    assert attack_of(samples[1]) == "print" and attack_of(samples[0]) is None
    folds = leave_one_attack_out(samples)
    assert [f.held_out for f in folds] == ["digital", "print", "replay"]
    for f in folds:
        assert f.held_out not in {attack_of(s) for s in f.train + f.dev}
        assert {attack_of(s) for s in f.test} == {None, f.held_out}
        assert {s.split for s in f.train} == {"train"} and {s.split for s in f.test} == {"test"}
        d = f.describe()
        assert d["train"] == {"bona_fide": 12, **{k: 12 for k in SIMULATED if k != f.held_out}}
        assert d["test"] == {"bona_fide": 6, f.held_out: 6}
    no_dev = leave_one_attack_out(samples, PadProtocol(dev_split=None))
    assert all(not f.dev for f in no_dev)
    samples[1].meta.pop("attack")  # an attack without its species cannot be held out honestly
    with pytest.raises(ValueError, match="disagree"):
        leave_one_attack_out(samples)


def test_pad_evaluator_declares_the_protocol():
    from sovtp.evaluator import load_evaluator

    ev = load_evaluator("pad")
    assert ev.protocol is not None and ev.protocol.by == "attack"
    assert (ev.protocol.train_split, ev.protocol.dev_split) == ("train", "dev")
    assert ev.labels().normalize("bona fide") == "bona_fide"
    assert ev.labels().normalize("spoof") == "attack" and ev.prompt == "liveness/plain"


# ------------------------------------------------------------------------ frequency channel


torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_frequency_channel_is_a_highpass_and_the_widened_net_starts_where_rgb_was():
    pytest.importorskip("torchvision")
    from sovtp.baselines.freq import FreqNet, build_freq_model, highpass_luminance
    from sovtp.baselines.models import build_model
    from sovtp.baselines.train import normalise

    flat = torch.full((2, 3, 32, 32), 0.4)
    assert highpass_luminance(flat).abs().max() < 1e-4  # a constant has no high frequencies
    face = torch.from_numpy(_faces(0)[0].copy()).permute(2, 0, 1)[None].float() / 255
    printed = torch.from_numpy(simulate_attack(_faces(0)[0], "print")).permute(2, 0, 1)[None]
    e_face = highpass_luminance(face).pow(2).mean()
    e_print = highpass_luminance(printed.float() / 255).pow(2).mean()
    assert e_print > 2 * e_face

    torch.manual_seed(0)
    rgb, _ = build_model("mobilenet_v2", 2, None, width_mult=0.35)
    torch.manual_seed(0)
    wide, prov = build_freq_model("mobilenet_v2", 2, None, width_mult=0.35, init_std=0.0)
    assert isinstance(wide, FreqNet) and prov["freq"]["init_std"] == 0.0
    conv = wide.backbone.features[0][0]
    assert conv.in_channels == 4
    assert torch.equal(conv.weight[:, :3], rgb.features[0][0].weight)
    x = normalise(face.expand(2, -1, -1, -1).contiguous())
    rgb.eval(), wide.eval()
    with torch.no_grad():  # zero weights on the new channel: the RGB network, unchanged
        assert torch.allclose(wide(x), rgb(x), atol=1e-5)
    small, _ = build_freq_model("mobilenet_v2", 2, None, width_mult=0.35)
    w = small.backbone.features[0][0].weight
    assert 0 < w[:, 3].abs().max() < 0.01 < w[:, :3].abs().max()  # new weights start small
    small.train()
    small(x).sum().backward()
    assert w.grad[:, 3].abs().sum() > 0  # and they learn


# --------------------------------------------------------- training + metrics by hand


def _score(r):
    return r["scores"]["attack"]


def _eer_threshold(rows):
    """EER point by brute force: thresholds +inf and every score, high to low; the first with
    the smallest |miss rate − false-alarm rate|."""
    y = np.array([r["gold"] == "attack" for r in rows])
    s = np.array([_score(r) for r in rows])
    best, th = None, None
    for t in [np.inf, *sorted(set(s.tolist()), reverse=True)]:
        d = abs((s[y] < t).mean() - (s[~y] >= t).mean())
        if best is None or d < best - 1e-15:
            best, th = d, t
    return th, y, s


def _by_hand(dev, test):
    th, _, _ = _eer_threshold(dev)
    kinds = sorted({r["attack_type"] for r in test if r["attack_type"]})
    apcer = {
        k: float(np.mean([_score(r) < th for r in test if r["attack_type"] == k])) for k in kinds
    }
    bpcer = float(np.mean([_score(r) >= th for r in test if r["gold"] == "bona_fide"]))
    worst = max(apcer.values())
    # BPCER20: the smallest BPCER over thresholds whose worst APCER is <= 5 %
    att = [r for r in test if r["gold"] == "attack"]
    bona = [_score(r) for r in test if r["gold"] == "bona_fide"]
    ok = []
    for t in [-np.inf, *sorted({_score(r) for r in test})]:
        w = max(np.mean([_score(r) < t for r in att if r["attack_type"] == k]) for k in kinds)
        if w <= 0.05:
            ok.append(np.mean([b >= t for b in bona]))
    return {
        "threshold": th,
        "apcer_per_type": apcer,
        "apcer": worst,
        "bpcer": bpcer,
        "acer": (worst + bpcer) / 2,
        "bpcer20": min(ok),
    }


def _cfg(**changes):
    from sovtp.baselines.train import TrainConfig

    return TrainConfig(
        model="mobilenet_v2",
        size=32,
        epochs=1,
        batch_size=16,
        lr=1e-2,
        weight_decay=0.0,
        steps_per_epoch=4,
        model_kwargs={"width_mult": 0.35},
        device="cpu",
        precise_bn=2,
        **changes,
    )


def test_one_fold_with_the_frequency_channel(pad_manifest, tmp_path):
    """The fast path: one held-out species, the 4-channel model trained, saved, reloaded."""
    pytest.importorskip("torchvision")
    from sovtp.baselines.pad import leave_one_attack_out_cnn

    samples = list(read_manifest(pad_manifest, split="all"))
    rows = leave_one_attack_out_cnn(samples, tmp_path, _cfg(freq=True), species=["print"])
    assert {r["system"] for r in rows} == {"cnn:mobilenet_v2+freq"}
    from sovtp.baselines.checkpoint import read_checkpoint

    ck = read_checkpoint(tmp_path / "print-freq")  # last/: safetensors + JSON
    assert ck["freq"] is True and ck["model"]["backbone.features.0.0.weight"].shape[1] == 4
    assert ck["pad"]["train"] == {"bona_fide": 12, "digital": 12, "replay": 12}
    _check_against_hand(rows, n_folds=1)


@pytest.mark.slow
def test_leave_one_attack_out_cnn_with_and_without_frequency_channel(pad_manifest, tmp_path):
    pytest.importorskip("torchvision")
    from sovtp.baselines.pad import leave_one_attack_out_cnn

    samples = list(read_manifest(pad_manifest, split="all"))
    rows = leave_one_attack_out_cnn(samples, tmp_path / "rgb", _cfg())
    rows += leave_one_attack_out_cnn(samples, tmp_path / "freq", _cfg(freq=True))
    assert {r["system"] for r in rows} == {"cnn:mobilenet_v2", "cnn:mobilenet_v2+freq"}
    _check_against_hand(rows, n_folds=6)  # 2 systems x 3 held-out species


def _check_against_hand(rows, n_folds):
    from sovtp.scoring.summary import summarise

    sec = pad_section(rows)
    assert sum(len(e["folds"]) for e in sec["systems"]) == n_folds
    assert {e["variant"] for e in sec["systems"]} == {"loao"}  # one entry per detector
    for e, f in [(x, f) for x in sec["systems"] for f in x["folds"]]:
        var = "loao:" + f["held_out"]
        mine = [r for r in rows if (r["system"], r["variant"]) == (e["system"], var)]
        dev = [r for r in mine if r["split"] == "dev"]
        test = [r for r in mine if r["split"] == "test"]
        assert len(dev) == 18 and len(test) == 12 and f["n_attack"] == 6
        assert {r["attack_type"] for r in dev} - {None} == set(SIMULATED) - {f["held_out"]}
        hand = _by_hand(dev, test)
        assert f["threshold"] == pytest.approx(hand["threshold"])
        assert f["apcer_per_type"] == pytest.approx(hand["apcer_per_type"])
        assert set(f["apcer_per_type"]) == {f["held_out"]}
        for k in ("apcer", "bpcer", "acer", "bpcer20"):
            assert f[k] == pytest.approx(hand[k]), k
        # EER (threshold-free) against scikit-learn's ROC
        from sklearn.metrics import roc_curve

        y = [r["gold"] == "attack" for r in test]
        fpr, tpr, _ = roc_curve(y, [_score(r) for r in test], drop_intermediate=False)
        i = int(np.argmin(np.abs((1 - tpr) - fpr)))
        assert f["eer"] == pytest.approx(((1 - tpr[i]) + fpr[i]) / 2)
    # the run's summary (evaluator scoring, dev threshold per variant) agrees with the section
    from sovtp.evaluator import load_evaluator

    ev = load_evaluator("pad")
    summ = summarise(rows, ev.labels().labels, n_boot=20, tier_by=None, **ev.scoring())
    by = {(s["system"], s["variant"]): s for s in summ["systems"]}
    for e, f in [(x, f) for x in sec["systems"] for f in x["folds"]]:
        m = by[(e["system"], "loao:" + f["held_out"])]["metrics"]
        for k in ("apcer", "bpcer", "acer", "bpcer20", "eer"):
            assert m[k] == pytest.approx(f[k]), k
        assert e["mean"].keys() == set(FOLD_METRICS)
    for e in sec["systems"]:
        for k in FOLD_METRICS:  # the mean is over the detector's folds
            assert e["mean"][k] == pytest.approx(np.mean([f[k] for f in e["folds"]]))
    md, _ = pad_report(sec)
    assert "| loao | print |" in md and "mean ± std" in md and "not an ISO" in md
    json.dumps(sec)


# ----------------------------------------------------------------- vision-LLM answers


def test_vision_llm_liveness_answers_are_scored_the_same_way():
    """A prompt answer → label + confidence → attack score: confidence of the chosen label,
    1 − confidence when it chose bona fide; an invalid answer is always wrong: a missed attack,
    or a bona fide presentation called an attack — never a correct decision."""
    from sovtp.prompting.spec import load_spec
    from sovtp.scoring.parse import parse_answer

    spec = load_spec("liveness/plain")
    assert spec.label_set == "liveness" and spec.output == "json"
    answers = [  # (gold, attack species, answer)
        ("bona_fide", None, '{"label": "real", "confidence": 0.9}'),
        ("bona_fide", None, '{"label": "spoof", "confidence": 0.6}'),
        ("bona_fide", None, "I cannot tell."),
        ("bona_fide", None, '{"label": "genuine", "confidence": 80}'),  # a percentage
        ("attack", "print", '{"label": "print attack", "confidence": 0.8}'),
        ("attack", "print", '{"label": "live face", "confidence": 0.7}'),
        ("attack", "replay", '{"label": "replay", "confidence": 0.95}'),
        ("attack", "replay", "no idea"),
    ]
    rows = []
    for i, (gold, kind, text) in enumerate(answers):
        p = parse_answer(text, "liveness", f"s{i}", output="json", system="vlm", gold=gold)
        rows.append({**p.model_dump(), "attack_type": kind})
    assert [r["label"] for r in rows] == [
        "bona_fide",
        "attack",
        None,
        "bona_fide",
        "attack",
        "bona_fide",
        "attack",
        None,
    ]
    sec = pad_section(rows, dev_split=None)
    (f,) = sec["systems"][0]["folds"]
    # attack scores: bona fide 0.1, 0.6, NaN (ranked above every score), 1 - 80 (a percentage
    # the parser keeps as given: the lowest); attacks 0.8, 0.3, 0.95, NaN (ranked below all).
    # EER point: at 0.6 misses {0.3, NaN} = 2/4 and alarms {0.6, NaN} = 2/4
    assert f["threshold"] == pytest.approx(0.6)
    assert f["apcer_per_type"] == {"print": 0.5, "replay": 0.5}
    assert f["bpcer"] == pytest.approx(0.5) and f["n_invalid"] == 2
    assert f["acer"] == pytest.approx(0.5) and f["eer"] == pytest.approx(0.5)


# ------------------------------------------------------------------ the `sovtp pad` command


def _pad_app():
    """The command as the integrator registers it (``app.command("pad")(pad_cmd)``)."""
    import typer

    from sovtp.cli.pad import pad_cmd

    app = typer.Typer()
    app.command("pad")(pad_cmd)
    app.command("noop")(lambda: None)  # two commands: typer keeps the "pad" name
    return app


TINY_ARGS = [
    "--arch",
    "mobilenetv2",
    "--model-kwargs",
    '{"width_mult": 0.35}',
    "--size",
    "32",
    "--epochs",
    "1",
    "--steps-per-epoch",
    "2",
    "--batch-size",
    "16",
    "--lr",
    "0.01",
    "--device",
    "cpu",
    "--no-progress",
]


def _recompute(rows):
    """Every fold's rates from the bare ``predictions.jsonl`` fields (fold, split, gold,
    attack, score) by brute force — no sovtp scoring code: the dev EER threshold (the first
    of +inf and the scores, high to low, with the smallest |FNR − FPR|; an attack is called
    when score >= threshold), then APCER per species, BPCER, ACER, EER and BPCER20 on test."""

    def rates(att, bona, t):  # (miss rate, false-alarm rate) at threshold t
        return np.mean([a < t for a in att]), np.mean([b >= t for b in bona])

    def eer_point(rs):
        att = [r["score"] for r in rs if r["gold"] == "attack"]
        bona = [r["score"] for r in rs if r["gold"] == "bona_fide"]
        best = None
        for t in [np.inf, *sorted({r["score"] for r in rs}, reverse=True)]:
            fnr, fpr = rates(att, bona, t)
            if best is None or abs(fnr - fpr) < best[0] - 1e-15:
                best = (abs(fnr - fpr), t, (fnr + fpr) / 2)
        return best[1], best[2]

    worst = {"attack": -np.inf, "bona_fide": np.inf}  # no answer: as wrong as it can be
    rows = [{**r, "score": worst[r["gold"]] if r["score"] is None else r["score"]} for r in rows]
    out = {}
    for fold in sorted({r["fold"] for r in rows}):
        dev = [r for r in rows if r["fold"] == fold and r["split"] == "dev"]
        test = [r for r in rows if r["fold"] == fold and r["split"] == "test"]
        th, _ = eer_point(dev)
        kinds = sorted({r["attack"] for r in test if r["attack"]})
        apcer = {
            k: float(np.mean([r["score"] < th for r in test if r["attack"] == k])) for k in kinds
        }
        bona = [r["score"] for r in test if r["gold"] == "bona_fide"]
        bpcer = float(np.mean([b >= th for b in bona]))
        ok = [
            np.mean([b >= t for b in bona])
            for t in [-np.inf, *sorted({r["score"] for r in test})]
            if max(np.mean([r["score"] < t for r in test if r["attack"] == k]) for k in kinds)
            <= 0.05
        ]
        out[fold] = {
            "threshold": th,
            "apcer_per_type": apcer,
            "apcer": max(apcer.values()),
            "bpcer": bpcer,
            "acer": (max(apcer.values()) + bpcer) / 2,
            "eer": eer_point(test)[1],
            "bpcer20": min(ok),
        }
    return out


@pytest.fixture(scope="module")
def tiny_pad(tmp_path_factory):
    """6 identities × (bona fide + print, replay, digital) at 32 px, split 2/2/2."""
    return _write_pad_manifest(tmp_path_factory.mktemp("tinypad"), 2, 2, 2, side=32)


def test_pad_freq_is_the_training_knob_train_has(tiny_pad, tmp_path):
    """`--freq` is one TrainConfig knob (declared once for train and pad): the fold's model is
    the 4-channel one, and pad.json's config says so."""
    pytest.importorskip("torchvision")
    from typer.testing import CliRunner

    run = tmp_path / "run"
    args = ["pad", str(tiny_pad), "-o", str(run), *TINY_ARGS, "--species", "print", "--freq"]
    res = CliRunner().invoke(_pad_app(), args)
    assert res.exit_code == 0, (res.output, res.exception)
    doc = json.loads((run / "pad.json").read_text())
    assert [e["system"] for e in doc["systems"]] == ["cnn:mobilenet_v2+freq"]
    assert doc["config"]["freq"] is True, doc["config"]
    assert (run / "print-freq" / "last" / "model.safetensors").exists()


def test_pad_command_writes_pad_json_predictions_and_report(tiny_pad, tmp_path):
    """`sovtp pad` end to end: one fold per species, and every rate in pad.json recomputed
    independently from predictions.jsonl; the report hook's contract (pad_section of pad.json)."""
    pytest.importorskip("torchvision")
    from typer.testing import CliRunner

    run = tmp_path / "run"
    res = CliRunner().invoke(_pad_app(), ["pad", str(tiny_pad), "-o", str(run), *TINY_ARGS])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "cnn:mobilenet_v2 (loao): 3 fold(s)" in res.output
    doc = json.loads((run / "pad.json").read_text())
    rows = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    (e,) = doc["systems"]
    assert e["system"] == "cnn:mobilenet_v2"
    assert [f["held_out"] for f in e["folds"]] == ["digital", "print", "replay"]
    assert [f["held_out"] for f in doc["folds"]] == ["digital", "print", "replay"]
    for f in doc["folds"]:  # the held-out species never reaches training or the threshold
        assert f["held_out"] not in f["train"] and f["held_out"] not in f["dev"]
        assert (run / f["held_out"] / "last" / "model.safetensors").exists()
    # 3 folds × (dev: 2 bona fide + 2 × 2 seen attacks; test: 2 bona fide + 2 held out)
    assert len(rows) == 3 * (6 + 4)
    assert all(r["score"] is not None and r["system"] == "cnn:mobilenet_v2" for r in rows)
    assert not [r for r in rows if r["split"] != "test" and r["attack"] == r["fold"]]
    assert {r["attack"] for r in rows if r["gold"] == "bona_fide"} == {None}
    hand = _recompute(rows)
    for f in e["folds"]:
        h = hand[f["held_out"]]
        assert set(f["apcer_per_type"]) == {f["held_out"]}
        assert f["threshold"] == pytest.approx(h["threshold"])
        assert f["apcer_per_type"] == pytest.approx(h["apcer_per_type"])
        for k in ("apcer", "bpcer", "acer", "eer", "bpcer20"):
            assert f[k] == pytest.approx(h[k]), (f["held_out"], k)
    for k in ("apcer", "bpcer", "acer", "eer", "bpcer20"):
        assert e["mean"][k] == pytest.approx(np.mean([hand[f][k] for f in hand]))
    # the report hook reads pad.json through pad_section: the same section back
    again = pad_section({**doc, "systems": []})  # scored afresh from its rows
    assert again["systems"] == doc["systems"] and again["note"] == doc["note"]
    bare = {k: v for k, v in doc.items() if k != "rows"}  # already a section: as it is
    assert pad_section(bare)["systems"] == doc["systems"]
    md = (run / "report.md").read_text()
    assert md.count("| cnn:mobilenet_v2 |") == 4 and "| print | test |" in md  # folds: a table
    html = (run / "report.html").read_text()
    assert html.count("<tr>") == (1 + 4) + (1 + 3 * 3) and "<td>replay</td>" in html


def test_pad_command_refuses_what_it_cannot_score(tmp_path):
    """One attack species (nothing left to train on once it is held out), a missing column,
    a dev split with no bona fide: each an error that names the problem, before training."""
    from typer.testing import CliRunner

    from sovtp.errors import SovtpError

    app = _pad_app()

    def err(manifest):
        res = CliRunner().invoke(app, ["pad", str(manifest), "-o", str(tmp_path / "r"), *TINY_ARGS])
        assert res.exit_code != 0 and isinstance(res.exception, SovtpError), res.output
        return str(res.exception)

    one = tmp_path / "one"
    one.mkdir()
    msg = err(_write_pad_manifest(one, 1, 1, 1, side=16, kinds=("print",)))
    assert "at least two attack species" in msg and "['print']" in msg
    for col in ("attack", "split", "label"):
        d = tmp_path / f"no_{col}"
        d.mkdir()
        msg = err(_write_pad_manifest(d, 1, 1, 1, side=16, kinds=("print", "replay"), drop=[col]))
        assert "needs the column(s) " + col in msg
    lop = tmp_path / "lopsided"
    lop.mkdir()
    p = _write_pad_manifest(lop, 1, 1, 1, side=16, kinds=("print", "replay"))
    text = p.read_text().replace("bona fide,,dev", "attack,print,dev")
    p.write_text(text)
    assert "dev side needs bona fide and attack" in err(p)
    assert not (tmp_path / "r" / "pad.json").exists()


def test_zero_shot_answers_are_scored_under_the_same_folds(tiny_pad, tmp_path):
    """`sovtp pad --arch none --predictions RUN`: a vision-LLM's liveness answers (as `sovtp
    bench --prompt liveness/plain --split all` writes them) get each fold's own dev threshold
    (held-out species excluded) and test rows; a sample it never answered counts as wrong."""
    from typer.testing import CliRunner

    from sovtp.scoring.parse import parse_answer

    samples = list(read_manifest(tiny_pad, split="all"))
    rng = np.random.default_rng(0)
    with (tmp_path / "predictions.jsonl").open("w") as f:
        for s in samples:
            if s.id == "id05_print":  # a test attack left unanswered
                continue
            live = s.label == "bona fide"
            p = 0.55 + 0.4 * rng.random()
            said = "real face" if live == (rng.random() < 0.7) else "spoof"
            text = json.dumps({"label": said, "confidence": round(p, 3)})
            r = parse_answer(text, "liveness", s.id, output="json", system="vlm")
            f.write(json.dumps({**r.model_dump(), "variant": "liveness/plain"}) + "\n")
    run = tmp_path / "run"
    res = CliRunner().invoke(
        _pad_app(),
        [
            "pad",
            str(tiny_pad),
            "-o",
            str(run),
            "--arch",
            "none",
            "--predictions",
            str(tmp_path),
            "--no-progress",
        ],
    )
    # the unanswered sample is an error row: exit 3 (some rows), its count printed (each dev and
    # test sample once, though it stands in several folds)
    assert res.exit_code == 3, (res.output, res.exception)
    assert "16 rows: 15 valid answers, 0 invalid answers, 1 errors" in res.output
    doc = json.loads((run / "pad.json").read_text())
    assert doc["answers"] == {
        "rows": 16,
        "errors": 1,
        "invalid": 0,
        "interrupted": False,
        "hint": None,
    }
    (e,) = doc["systems"]
    assert (e["system"], e["variant"]) == ("vlm", "liveness/plain loao")
    rows = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * (6 + 4) and not list(run.glob("*/last"))  # nothing trained
    assert not [r for r in rows if r["split"] == "dev" and r["attack"] == r["fold"]]
    gone = [r for r in rows if r["sample_id"] == "id05_print"]
    assert [(r["fold"], r["split"], r["score"]) for r in gone] == [("print", "test", None)]
    (fp,) = [f for f in e["folds"] if f["held_out"] == "print"]
    assert fp["n_invalid"] == 1
    hand = _recompute(rows)
    for f in e["folds"]:
        h = hand[f["held_out"]]
        assert f["threshold"] == pytest.approx(h["threshold"]), f["held_out"]
        for k in ("apcer", "bpcer", "acer", "eer", "bpcer20"):
            assert f[k] == pytest.approx(h[k]), (f["held_out"], k)
    # the held-out species' dev answers never set its fold's threshold: it moves with them
    assert len({f["threshold"] for f in e["folds"]}) > 1


@pytest.mark.slow
def test_bench_liveness_prompt_then_pad_folds(tmp_path):
    """The vision-LLM path for real: `sovtp bench --evaluator pad --prompt liveness/plain` with
    the offline FACS reasoner (no liveness skill: it answers 50/50 where it finds a face, and
    is invalid where it does not) scored by the binary task, then its predictions under the
    leave-one-attack-out folds by `sovtp pad --arch none --predictions`."""
    from typer.testing import CliRunner

    from sovtp.cli.app import main

    manifest = _write_pad_manifest(tmp_path, 2, 2, 2, side=SIDE)
    bench = tmp_path / "bench"
    rc = main(
        [
            "bench",
            str(manifest),
            "--evaluator",
            "pad",
            "--prompt",
            "liveness/plain",
            "--system",
            "facs",
            "--split",
            "all",
            "-o",
            str(bench),
            "--workers",
            "1",
        ]
    )
    assert rc in (0, 3)  # 3: some samples had no measurable face (invalid rows, kept)
    rep = json.loads((bench / "report.json").read_text())
    (s,) = rep["scoring"]["systems"]
    assert {"apcer", "bpcer", "acer", "eer", "bpcer20"} <= set(s["metrics"])
    assert "dev" in s["binary"]["threshold_source"]  # the dev split's EER point
    run = tmp_path / "pad"
    res = CliRunner().invoke(
        _pad_app(),
        [
            "pad",
            str(manifest),
            "-o",
            str(run),
            "--arch",
            "none",
            "--predictions",
            str(bench),
            "--no-progress",
        ],
    )
    # pad reads the bench rows: some without a measurable face (bench's 3) stay errors there
    assert res.exit_code == rc and "16 rows:" in res.output, (res.output, res.exception)
    doc = json.loads((run / "pad.json").read_text())
    (e,) = doc["systems"]
    assert (e["system"], e["variant"]) == ("facs", "liveness/plain loao")
    assert [f["held_out"] for f in e["folds"]] == ["digital", "print", "replay"]
    rows = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    hand = _recompute(rows)
    for f in e["folds"]:
        for k in ("apcer", "bpcer", "acer", "eer", "bpcer20"):
            assert f[k] == pytest.approx(hand[f["held_out"]][k]), (f["held_out"], k)


def test_two_zero_shot_runs_of_one_system_count_apart(tiny_pad, tmp_path):
    """Two --predictions runs of one system under two prompts, one answered well, one not at
    all: 3 (some rows invalid), both counted — keyed by system alone, the later run's rows hid
    the earlier's (exit 0 or 4 by argument order)."""
    from typer.testing import CliRunner

    from sovtp.scoring.parse import parse_answer

    samples = list(read_manifest(tiny_pad, split="all"))
    runs = []
    for variant, good in (("liveness/plain", True), ("ladder/plain", False)):
        d = tmp_path / variant.replace("/", "_")
        d.mkdir()
        with (d / "predictions.jsonl").open("w") as f:
            for s in samples:
                said = "real face" if s.label == "bona fide" else "spoof"
                text = json.dumps({"label": said, "confidence": 0.9}) if good else "no idea ###"
                r = parse_answer(text, "liveness", s.id, output="json", system="vlm")
                f.write(json.dumps({**r.model_dump(), "variant": variant}) + "\n")
        runs.append(d)
    for order in (runs, runs[::-1]):
        out = tmp_path / f"pad{len(list(tmp_path.glob('pad*')))}"
        argv = ["pad", tiny_pad, "-o", out, "--arch", "none", "--no-progress"]
        argv += [a for r in order for a in ("--predictions", r)]
        res = CliRunner().invoke(_pad_app(), list(map(str, argv)))
        assert res.exit_code == 3, (res.output, res.exception)
        assert "32 rows: 16 valid answers, 16 invalid answers, 0 errors" in res.output


def test_pad_of_a_run_with_no_valid_answer_exits_4_with_the_cause(tiny_pad, tmp_path):
    """A liveness run against a server that answers prose to every request (it ignores the
    schema): bench exits 4, and `pad --predictions` of that run used to print "ACER 100 %" and
    exit 0. Now 4, with the cause read from the run's own responses; a finished pad run is
    kept, not replaced by a second one into the same folder."""
    from typer.testing import CliRunner

    from sovtp.cli.app import main
    from sovtp.testing import Behaviour, FakeOpenAIServer

    bench = tmp_path / "bench"
    argv = ["bench", tiny_pad, "--evaluator", "pad", "--split", "all", "-o", bench]
    with FakeOpenAIServer(Behaviour(content="I cannot tell, sorry ###")) as srv:
        rc = main([*map(str, argv), "--base-url", srv.base_url, "--workers", "0", "--no-check"])
    assert rc == 4
    run = tmp_path / "pad"
    pad = ["pad", tiny_pad, "-o", run, "--arch", "none", "--predictions", bench, "--no-progress"]
    res = CliRunner().invoke(_pad_app(), list(map(str, pad)))
    assert res.exit_code == 4, (res.output, res.exception)
    assert "16 rows: 0 valid answers, 16 invalid answers" in res.output
    assert "the answers are prose" in res.output and "--no-structured" in res.output
    before = (run / "pad.json").read_bytes()
    again = CliRunner().invoke(_pad_app(), list(map(str, pad)))
    assert again.exit_code != 0 and "already holds a `pad` run" in str(again.exception)
    assert (run / "pad.json").read_bytes() == before


def test_a_sample_without_a_face_crop_counts_as_wrong_not_dropped(tiny_pad, tmp_path):
    """With --crops face, a detector that misses the face of an attack must not hide it: the
    sample becomes an invalid row (no score), a missed attack in APCER."""
    pytest.importorskip("torchvision")
    from sovtp.baselines.pad import leave_one_attack_out_cnn
    from sovtp.data.pad import image_crops

    def crops(samples, size):  # the face of id05's print is "not found"
        got = image_crops(samples, size)
        return [g[:0] if s.id == "id05_print" else g for s, g in zip(samples, got, strict=True)]

    samples = list(read_manifest(tiny_pad, split="all"))
    cfg = _cfg()
    cfg.steps_per_epoch, cfg.precise_bn = 2, 1
    rows = leave_one_attack_out_cnn(samples, tmp_path, cfg, species=["print"], crops=crops)
    test = [r for r in rows if r["split"] == "test"]
    assert len(test) == 4  # 2 bona fide + 2 prints: none dropped
    (gone,) = [r for r in test if r["sample_id"] == "id05_print"]
    assert gone["parse_status"] == "invalid" and gone["error"] == "no face crop"
    assert gone["gold"] == "attack" and gone["attack_type"] == "print"
    (f,) = pad_section(rows)["systems"][0]["folds"]
    assert f["n_attack"] == 2 and f["n_invalid"] == 1
    assert f["apcer_per_type"]["print"] >= 0.5  # the unseen print is a missed attack
