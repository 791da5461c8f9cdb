"""Test-time adaptation on a tiny CNN trained for real on real faces (skimage's LFW subset vs
non-face patches), then shown a shifted test stream."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from sovtp.baselines.data import CropSet  # noqa: E402
from sovtp.baselines.predict import crop_logits, load  # noqa: E402
from sovtp.baselines.tta import (  # noqa: E402
    OnlineAdapter,
    adapt_predict,
    batches,
    corrupt,
    evaluate_stream,
    parse_method,
)
from tests.lfw_crops import trained_tiny  # noqa: E402

S = 32


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A MobileNetV2 (width 0.35, 32 px) trained 2 × 10 steps on 140 LFW crops (~5 s), and the
    60 held-out crops (faces and non-faces interleaved, seeded)."""
    out, held_out = trained_tiny(tmp_path_factory.mktemp("tta") / "ck", S)
    return load(out), held_out


def _shifted(crops, kind="dark"):
    return CropSet(corrupt(crops.x, kind), crops.owner, crops.y, crops.ids, crops.labels)


def test_methods_parse():
    assert str(parse_method("fisher:12")) == "fisher:12" and parse_method("BN").kind == "bn"
    for bad in ("fisher", "fisher:-1", "tent2", "fisher:x"):
        with pytest.raises(ValueError, match="unknown TTA method"):
            parse_method(bad)


def test_none_is_the_plain_checkpoint(trained):
    m, held = trained
    logits, info = adapt_predict(m, batches(held.x, 16), "none")
    assert torch.allclose(logits, crop_logits(m, held.x), atol=1e-5)
    assert info["params_adapted"] == 0 and info["frames"] == 60 and info["batches"] == 4


def test_bn_and_tent_recover_accuracy_on_a_darkened_stream(trained):
    """Brightness × 0.4: the source model drops towards chance; re-estimated BN statistics and
    Tent bring it back (measured: 0.57 → 0.85 for both, frames; clean is 0.90)."""
    m, held = trained
    dark = _shifted(held)
    src = {k: v.clone() for k, v in m.model.state_dict().items()}
    res = {k: evaluate_stream(m, dark, k, batch_size=16) for k in ("bn", "tent")}
    before = res["bn"]["before"]["frame"]["accuracy"]
    assert before == res["tent"]["before"]["frame"]["accuracy"] and before < 0.7
    for k, r in res.items():
        assert r["after"]["frame"]["accuracy"] >= before + 0.15, k
        assert r["after"]["frame"]["macro_f1"] > r["before"]["frame"]["macro_f1"], k
    assert res["bn"]["info"]["params_adapted"] == 0 and res["bn"]["info"]["stats_adapted"] > 0
    # Tent adapts exactly the norm layers' affine parameters
    norm = sum(p.numel() for mod in m.model.modules()
               if isinstance(mod, torch.nn.BatchNorm2d) for p in mod.parameters())  # fmt: skip
    assert res["tent"]["info"]["params_adapted"] == norm > 0
    # the loaded checkpoint's own model (weights and BN statistics) was never touched
    for k, v in m.model.state_dict().items():
        assert torch.equal(v, src[k]), k


def test_tta_does_not_break_the_clean_stream(trained):
    """On unshifted data adaptation may cost a little (measured: 0.90 → 0.87 bn, 0.85 tent on
    60 crops, batches of 16), never a collapse."""
    m, held = trained
    for k in ("bn", "tent", "fisher:500"):
        r = evaluate_stream(m, held, k, batch_size=16)
        assert r["after"]["frame"]["accuracy"] >= r["before"]["frame"]["accuracy"] - 0.1, k


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
    from sovtp.baselines.tta import TtaPredictor
    from sovtp.data.sample import Sample

    m, _ = trained
    ck = tmp_path / "ck"
    ck.mkdir()
    torch.save({"config": {**m.config, "sampling": "uniform:3"}, "labels": m.labels,
                "model": m.model.state_dict()}, ck / "last.pt")  # fmt: skip
    pr = TtaPredictor(ck, "tent", lr=1e-2, device="cpu")
    a = pr.predict(Sample("v1", pan_mp4, "face"))
    b = pr.predict(Sample("v1", pan_mp4, "face"))  # same clip again: the model has moved
    assert pr.variant == "ck+tta=tent" and a.parse_status == b.parse_status == "ok"
    assert a.scores != b.scores
    assert pr.provenance["tta"]["frames"] == 6 and pr.provenance["tta"]["updates"] == 2
