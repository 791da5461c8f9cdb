"""Test-time adaptation on a tiny CNN trained for real on real faces (skimage's LFW subset vs
non-face patches), then shown a shifted test stream."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from sovtp.baselines.data import CropSet  # noqa: E402
from sovtp.baselines.predict import crop_logits, load  # noqa: E402
from sovtp.baselines.tta import OnlineAdapter, parse_method  # noqa: E402
from sovtp.baselines.tta_stream import adapt_predict, batches, corrupt, evaluate_stream  # noqa: E402
from tests.lfw_crops import trained_tiny  # noqa: E402

S = 32


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A MobileNetV2 (width 0.35, 32 px) trained 4 × 15 steps on 140 LFW crops (~7 s), and the
    60 held-out crops (faces and non-faces interleaved, seeded)."""
    out, held_out = trained_tiny(tmp_path_factory.mktemp("tta") / "ck", S)
    return load(out), held_out


def _shifted(crops, kind="dark", severity=1.4):
    """Brightness × 0.16 by default: at × 0.4 (severity 1) the source model's accuracy on the
    stream ranged 0.45 … 0.85 over training seeds, so "adaptation helps" was a coin toss; at
    × 0.16 it is at chance on every seed and the effect is large."""
    return CropSet(corrupt(crops.x, kind, severity), crops.owner, crops.y, crops.ids, crops.labels)


def test_methods_parse():
    assert str(parse_method("fisher:12")) == "fisher:12" and parse_method("BN").kind == "bn"
    for bad in ("fisher", "fisher:-1", "fisher:0", "tent2", "fisher:x"):
        with pytest.raises(ValueError, match="unknown TTA method"):
            parse_method(bad)


def test_none_is_the_plain_checkpoint(trained):
    m, held = trained
    logits, info = adapt_predict(m, batches(held.x, 16), "none")
    assert torch.allclose(logits, crop_logits(m, held.x), atol=1e-5)
    assert info["params_adapted"] == 0 and info["frames"] == 60 and info["batches"] == 4


def test_bn_and_tent_recover_accuracy_on_a_darkened_stream(trained):
    """Brightness × 0.16: the source model falls to chance and re-estimated BN statistics and
    Tent bring it back.  Spread over training seeds 0-9 × torch threads 1/2, batches of 16:
    accuracy before 0.47 … 0.50; after − before +0.17 … +0.47 (bn), +0.22 … +0.45 (tent); macro
    F1 after − before +0.32 … +0.62.  Bounds: before < 0.6, gains ≥ 0.1 (accuracy) and ≥ 0.2
    (F1); without adaptation both gains are 0."""
    m, held = trained
    dark = _shifted(held)
    src = {k: v.clone() for k, v in m.model.state_dict().items()}
    res = {k: evaluate_stream(m, dark, k, batch_size=16) for k in ("bn", "tent")}
    before = res["bn"]["before"]["frame"]["accuracy"]
    assert before == res["tent"]["before"]["frame"]["accuracy"] and before < 0.6
    for k, r in res.items():
        assert r["after"]["frame"]["accuracy"] >= before + 0.1, (k, r["after"]["frame"])
        f1 = (r["before"]["frame"]["macro_f1"], r["after"]["frame"]["macro_f1"])
        assert f1[1] >= f1[0] + 0.2, (k, f1)
    assert res["bn"]["info"]["params_adapted"] == 0 and res["bn"]["info"]["stats_adapted"] > 0
    # Tent adapts exactly the norm layers' affine parameters
    norm = sum(
        p.numel()
        for mod in m.model.modules()
        if isinstance(mod, torch.nn.BatchNorm2d)
        for p in mod.parameters()
    )
    assert res["tent"]["info"]["params_adapted"] == norm > 0
    # the loaded checkpoint's own model (weights and BN statistics) was never touched
    for k, v in m.model.state_dict().items():
        assert torch.equal(v, src[k]), k


def test_tta_does_not_break_the_clean_stream(trained):
    """On unshifted data adaptation may cost a little, never a collapse (chance is 0.5 here,
    0.4 … 0.5 below the clean accuracy).  Spread over seeds 0-9 × threads 1/2, batches of 30:
    after − before −0.10 … +0.03 (bn), −0.07 … +0.05 (tent), −0.08 … +0.07 (fisher:500); with
    batches of 16 BatchNorm's estimate is noisier (bn down to −0.17), hence 30."""
    m, held = trained
    for k in ("bn", "tent", "fisher:500"):
        r = evaluate_stream(m, held, k, batch_size=30)
        assert r["after"]["frame"]["accuracy"] >= r["before"]["frame"]["accuracy"] - 0.2, k


def test_bn_on_stills_pools_single_crops_and_never_answers_from_reset_statistics(trained):
    """One crop per sample (stills): BatchNorm statistics cannot come from one crop, so single
    crops are pooled 16 at a time.  Before the first pool the model answers exactly as the
    untouched one (it reset the statistics and answered every still alike before: macro F1
    0.559 → 0.100 with "updates 0").  Spread over seeds 0-5 × threads 1/2 (60 stills): clean
    after − before −0.10 … 0.00; darkened (× 0.16) +0.30 … +0.38."""
    m, held = trained
    plain, _ = adapt_predict(m, batches(held.x, 1), "none")
    after, info = adapt_predict(m, batches(held.x, 1), "bn")
    assert torch.equal(after[:15], plain[:15])  # the source statistics until 16 crops are in
    assert (info["updates"], info["window"], info["pooled_waiting"]) == (3, 16, 12)
    clean = evaluate_stream(m, held, "bn", batch_size=1)
    assert clean["after"]["frame"]["accuracy"] >= clean["before"]["frame"]["accuracy"] - 0.2
    dark = evaluate_stream(m, _shifted(held), "bn", batch_size=1)
    assert dark["after"]["frame"]["accuracy"] >= dark["before"]["frame"]["accuracy"] + 0.15
    with pytest.raises(ValueError, match="window"):
        OnlineAdapter(m.model, "bn", window=1)


def test_fisher_adapts_exactly_k_parameters_and_no_other(trained):
    m, held = trained
    src = {n: p.detach().clone() for n, p in m.model.named_parameters()}
    ad = OnlineAdapter(m.model, "fisher:300", lr=1e-2, fisher_frames=16)
    for xb in batches(_shifted(held).x, 16):
        ad.step(xb)
    info = ad.info()
    assert info["params_adapted"] == 300 and info["updates"] == 4
    changed = 0
    for n, p in ad.model.named_parameters():
        mask = ad.masks[n]
        assert torch.equal(p[~mask], src[n][~mask]), n  # bit-identical outside the selection
        changed += int((p[mask] != src[n][mask]).sum())
    assert 0 < changed <= 300
    assert 0 < info["tensors_adapted"] < len(src)
    for n, p in m.model.named_parameters():  # the checkpoint's model is untouched
        assert torch.equal(p, src[n]), n

    # the Fisher comes from the first batch: its frames are reported, not the cap asked for
    assert info["fisher_frames"] == 16
    small = OnlineAdapter(m.model, "fisher:300", lr=1e-2, fisher_frames=32)
    small.step(held.x[:4])
    assert small.info()["fisher_frames"] == 4


def test_fisher_selection_is_the_largest_fisher_values(trained):
    from sovtp.baselines.tta import fisher_diagonal, top_k_masks

    m, held = trained
    f = fisher_diagonal(m.model, held.x[:8])
    masks = top_k_masks(f, 50)
    sel = torch.cat([f[n][masks[n]] for n in f])
    rest = torch.cat([f[n][~masks[n]] for n in f])
    assert len(sel) == 50 and sel.min() >= rest.max() and sel.max() > 0


def test_adaptation_is_online_and_order_matters(trained):
    """Same crops, stream reversed: Tent's logits for a crop depend on what came before it; the
    un-adapted model's do not."""
    m, held = trained
    x = _shifted(held).x
    rev = list(range(len(x)))[::-1]
    for method, same in (("none", True), ("tent", False)):
        a, _ = adapt_predict(m, batches(x, 12), method, lr=1e-2)
        b, _ = adapt_predict(m, batches(x, 12, rev), method, lr=1e-2)
        b = b.flip(0)  # back to the original order (12 | 60: the same batches, reversed)
        assert torch.allclose(a, b, atol=1e-5) is same, method
    # online: batch 2 after batch 1 differs from batch 2 on a fresh adapter
    ad = OnlineAdapter(m.model, "tent", lr=1e-2)
    ad.step(x[:12])
    after = ad.step(x[12:24])
    fresh = OnlineAdapter(m.model, "tent", lr=1e-2).step(x[12:24])
    assert not torch.allclose(after, fresh, atol=1e-5)
    # reset_every=1: every batch starts from the source model again
    r = OnlineAdapter(m.model, "tent", lr=1e-2, reset_every=1)
    r.step(x[:12])
    assert torch.allclose(r.step(x[12:24]), fresh, atol=1e-5)


def test_report_section_from_results(trained):
    from sovtp.report.tta import tta_section

    m, held = trained
    r = evaluate_stream(m, _shifted(held), "bn", batch_size=20)
    sec = tta_section([r])
    head, rows = sec["table"]
    row = dict(zip(head, rows[0], strict=True))
    assert row["method"] == "bn" and row["params adapted"] == 0 and row["frames"] == 60
    assert row["delta"] == pytest.approx(row["macro_f1 after"] - row["macro_f1 before"])
    assert row["macro_f1 before"] == r["before"]["sample"]["macro_f1"]


def test_tta_predictor_adapts_across_samples_in_order(trained, pan_mp4, tmp_path):
    """The bench-system form: one sample's crops are one batch; the state carries over."""
    from sovtp.baselines.system import CnnSystem
    from sovtp.data.sample import Sample

    m, _ = trained
    ck = tmp_path / "ck"
    ck.mkdir()
    torch.save(
        {
            "config": {**m.config, "sampling": "uniform:3"},
            "labels": m.labels,
            "model": m.model.state_dict(),
        },
        ck / "last.pt",
    )
    pr = CnnSystem(ck, "tent", lr=1e-2, device="cpu")
    a = pr.predict(Sample("v1", pan_mp4, "face"))
    b = pr.predict(Sample("v1", pan_mp4, "face"))  # same clip again: the model has moved
    assert pr.variant == "ck+tta=tent" and a.parse_status == b.parse_status == "ok"
    assert a.scores != b.scores
    info = pr.stream.adapter.info()
    assert pr.stateful and info["frames"] == 6 and info["updates"] == 2


# -- `sovtp bench --system cnn:CKPT --tta METHOD`: the AffWild2 protocol on a tiny tree ---------
WINDOW_LABELS = ["happiness", "neutral", "happiness", "happiness", "neutral"]  # 5 windows of 6


@pytest.fixture(scope="module")
def affwild2_tree(tmp_path_factory, pan_mp4_shared):
    """An Aff-Wild2 layout built here: the panning astronaut clip (30 frames) with one EXPR
    label per frame, cut by the adapter into 5 windows of 6 frames."""
    import shutil

    from sovtp.data.adapters import ABAW_EXPR

    root = tmp_path_factory.mktemp("aw2") / "AffWild2"
    (root / "videos").mkdir(parents=True)
    shutil.copy(pan_mp4_shared, root / "videos" / "clip.mp4")
    ann = root / "annotations/EXPR_Classification_Challenge/Validation_Set"
    ann.mkdir(parents=True)
    frames = [ABAW_EXPR.index(lab) for lab in WINDOW_LABELS for _ in range(6)]
    ann.joinpath("clip.txt").write_text(
        ",".join(x.capitalize() for x in ABAW_EXPR) + "\n" + "\n".join(map(str, frames))
    )
    return root


@pytest.fixture(scope="module")
def expr_ckpt(tmp_path_factory):
    """The tiny LFW CNN with Aff-Wild2 labels: faces → happiness, non-faces → neutral."""
    from sovtp.baselines.train import fit
    from tests.lfw_crops import lfw_cropsets, tiny_config

    torch.set_num_threads(1)
    faces, _ = lfw_cropsets(S)
    relabel = CropSet.from_arrays(
        [faces.x[faces.owner == i].permute(0, 2, 3, 1).numpy() for i in range(len(faces.ids))],
        ["happiness" if faces.labels[int(y)] == "face" else "neutral" for y in faces.y],
        list(faces.ids),
        ["happiness", "neutral"],
    )
    out = tmp_path_factory.mktemp("expr") / "mnv2"
    fit(
        relabel,
        tiny_config(S, epochs=1, steps_per_epoch=8),
        out,
        progress=False,
    )
    return out


def _bench(tree, ck, out, tta="none", **kw):
    from sovtp.engine.config import BenchConfig, SystemSpec

    return BenchConfig(
        data=f"affwild2:{tree}",
        evaluator="affwild2",
        adapter_options={"window": 6},
        sampling="uniform:2",
        systems=[SystemSpec.parse(f"cnn:{ck}")],
        out=str(out),
        n_boot=20,
        gallery=0,
        tta=tta,
        **({"workers": 0} | kw),
    )


def _cnn_rows(run):
    """The run's rows in the order they were written (every write, not the latest per key)."""
    from sovtp.jsonl import iter_jsonl

    return [
        r for r in iter_jsonl(run / "predictions.jsonl") if r.get("system", "").startswith("cnn")
    ]


def _f1(rows, labels):
    from sovtp.scoring.metrics import compute

    return compute([r["gold"] for r in rows], [r["label"] for r in rows], labels)


@pytest.mark.slow  # ~14 s on 2 shared cores: two runs, a pool of two annotating processes
def test_bench_tta_answers_in_sample_order_and_records_before_after(
    affwild2_tree, expr_ckpt, tmp_path, monkeypatch
):
    """Two preparation workers, the first sample held back 1 s so the pool finishes it last:
    the adapting CNN still answers in sample order (rows written in manifest order), its
    ``tta.json`` has F1 before = what a ``--tta none`` run answers on the same stream, after =
    the run's own rows, and the parameters/statistics adapted; the report shows the section."""
    import json
    import time

    from sovtp.engine import runner
    from sovtp.recipes.bench import run_bench

    plain, _ = run_bench(_bench(affwild2_tree, expr_ckpt, tmp_path / "none"), report=False)
    assert not (plain / "tta.json").exists()
    order = [f"clip@{6 * i}" for i in range(5)]
    base = {r["sample_id"]: r for r in _cnn_rows(plain)}
    assert list(base) == order and all(r["variant"] == "mnv2" for r in base.values())

    slow_first = runner.Preparer.prepare

    def prepare(self, sample, items, gallery):  # runs in the forked workers
        if sample.id == order[0]:
            time.sleep(1.0)
        return slow_first(self, sample, items, gallery)

    monkeypatch.setattr(runner.Preparer, "prepare", prepare)
    monkeypatch.setenv("SOVTP_START_METHOD", "fork")
    run, stats = run_bench(_bench(affwild2_tree, expr_ckpt, tmp_path / "bn", "bn", workers=2))
    rows = _cnn_rows(run)
    assert [r["sample_id"] for r in rows] == order and stats.errors == 0
    assert {r["variant"] for r in rows} == {"mnv2+tta=bn"}
    assert [r["gold"] for r in rows] == WINDOW_LABELS
    # the adapted model answers differently from the checkpoint as trained
    assert any(r["scores"] != base[r["sample_id"]]["scores"] for r in rows)

    doc = json.loads((run / "tta.json").read_text())
    assert doc["complete"] is True and len(doc["results"]) == 1
    res = doc["results"][0]
    assert res["system"] == "cnn:mnv2" and res["method"] == "bn" and res["samples"] == 5
    labels = res["labels"]
    assert res["before"]["sample"]["macro_f1"] == pytest.approx(
        _f1(list(base.values()), labels).macro_f1
    )
    assert res["after"]["sample"]["macro_f1"] == pytest.approx(_f1(rows, labels).macro_f1)
    info = res["info"]
    assert info["params_adapted"] == 0 and info["stats_adapted"] > 0
    assert info["frames"] == 10 and info["batches"] == 5 and info["updates"] == 5
    man = json.loads((run / "manifest.json").read_text())
    assert man["protocol"]["tta"]["method"] == "bn" and man["protocol"]["tta"]["systems"] == [
        "cnn:mnv2"
    ]
    assert json.loads((plain / "manifest.json").read_text())["protocol"]["tta"] is False

    md = (run / "report.md").read_text()
    assert "## Test-time adaptation" in md and "| cnn:mnv2 | bn |" in md
    html = (run / "report.html").read_text()
    assert "Test-time adaptation" in html and "params adapted" in html
    rep = json.loads((run / "report.json").read_text())
    (sec,) = [s for s in rep["sections"] if s["name"] == "tta"]
    head, (row,) = sec["table"]
    assert row[head.index("params adapted")] == 0 and row[head.index("frames")] == 10


def test_bench_tta_resume_replays_the_stream(affwild2_tree, expr_ckpt, tmp_path):
    """An interrupted TTA run lost its adapted state: --resume replays the stream from the
    first sample, so its rows end as an uninterrupted run's (not as a fresh model's on the
    rest); Tent's updated parameters are counted."""
    import json
    import shutil

    from sovtp.recipes.bench import load_rows, run_bench

    full, _ = run_bench(_bench(affwild2_tree, expr_ckpt, tmp_path / "full", "tent"), report=False)
    want = {r["sample_id"]: r["scores"] for r in load_rows(full)}
    res = json.loads((full / "tta.json").read_text())["results"][0]
    assert res["info"]["params_adapted"] > 0 and res["info"]["updates"] == 5
    cut = shutil.copytree(full, tmp_path / "cut")
    lines = (cut / "predictions.jsonl").read_text().splitlines(keepends=True)
    (cut / "predictions.jsonl").write_text("".join(lines[:2]))  # killed after two samples
    cfg = _bench(affwild2_tree, expr_ckpt, cut, "tent")
    run, _ = run_bench(cfg, resume=True, report=False)
    rows = load_rows(run)
    assert {r["sample_id"]: r["scores"] for r in rows} == want
    res = json.loads((run / "tta.json").read_text())["results"][0]
    assert res["samples"] == 5 and res["after"]["sample"]["macro_f1"] == pytest.approx(
        _f1(rows, res["labels"]).macro_f1
    )


def test_tta_needs_a_cnn_system_and_a_known_method(tmp_path):
    from sovtp.engine.config import BenchConfig
    from sovtp.errors import SovtpError
    from sovtp.recipes.bench import run_bench

    with pytest.raises(SovtpError, match="unknown TTA method"):
        BenchConfig(data="x.csv", tta="tent2")
    assert BenchConfig(data="x.csv", tta="Fisher:7").tta == "fisher:7"
    m = tmp_path / "m.csv"
    m.write_text("id,media,label\na,a.png,happy\n")
    with pytest.raises(SovtpError, match="adapts cnn:CKPT systems"):
        run_bench(BenchConfig(data=str(m), tta="bn", out=str(tmp_path / "r")))


def test_in_order_releases_samples_in_the_order_they_were_read():
    """The runner's reorder buffer: whatever order the pool finishes samples in, their TTA items
    are answered 0, 1, 2, ...; a sample's slot frees only when its turn has passed."""
    from sovtp.engine.runner import InOrder

    answered, freed = [], []
    order = InOrder(answered.append)
    finish = [3, 1, 0, 7, 2, 5, 4, 6]  # the order the pool finishes them in
    for n in finish:
        order.put(n, [f"{n}a", f"{n}b"] if n != 5 else [], lambda n=n: freed.append(n))
        assert freed == list(range(len(freed)))  # a prefix of the samples, never a later one
    assert answered == [f"{n}{k}" for n in range(8) if n != 5 for k in "ab"]
    assert freed == list(range(8)) and not order.waiting
