"""One run config, declared once (issue 18): the CLI lays the options the user *typed* (click's
parameter source) over an optional ``--config`` file; every prepare knob is one field of
``PrepareSettings`` and one option line; one system name across query, bench and the report."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from sovtp.cli.app import main
from sovtp.engine.config import BenchConfig, SystemSpec, run_identity
from sovtp.engine.folder import identity_changes


@pytest.fixture
def ran(monkeypatch):
    """The configs ``bench``/``ablate`` would run (nothing runs)."""
    import sovtp.cli.bench as cli_bench

    got: list[BenchConfig] = []
    monkeypatch.setattr(cli_bench, "run_and_exit", lambda cfg, *a, **k: got.append(cfg))
    return got


@pytest.fixture
def config_file(tmp_path):
    """A run's config.yaml that differs from every default it names."""
    f = tmp_path / "c.yaml"
    f.write_text(
        f"data: {tmp_path / 'm.csv'}\nout: {tmp_path / 'r'}\nsampling: fps:2\nseed: 5\n"
        "gen_seed: 5\nlabel_order: shuffled\nmax_faces: 3\ntemperature: 0.7\nmax_side: 300\n"
    )
    return f


def test_options_typed_equal_to_their_default_override_the_config_file(config_file, ran):
    """The measured bug: ``--sampling uniform:8 --seed 0`` (both the defaults) ran the file's
    fps:2 and seed 5."""
    assert (
        main(
            [
                "bench",
                "--config",
                str(config_file),
                "--sampling",
                "uniform:8",
                "--seed",
                "0",
                "--label-order",
                "fixed",
                "--no-check",
            ]
        )
        == 0
    )
    (cfg,) = ran
    assert (cfg.sampling, cfg.seed, cfg.gen_seed, cfg.label_order) == ("uniform:8", 0, 0, "fixed")
    # what was not typed keeps the file's value
    assert (cfg.max_faces, cfg.temperature, cfg.max_side) == (3, 0.7, 300)


def test_the_evaluators_sampling_holds_unless_typed(tmp_path, ran):
    """casme_ii's protocol samples uniform:4; bench ran the default uniform:8 (the evaluator's
    `sampling:` was never read). Now the evaluator's, unless --sampling is typed — even typed
    equal to the default."""
    from sovtp.recipes.bench import resolve

    m = tmp_path / "m.csv"
    m.write_text("id,media,label\na,a.png,happiness\n")
    assert main(["bench", str(m), "--evaluator", "casme_ii", "--no-check"]) == 0
    assert main(["bench", str(m), "--evaluator", "casme_ii", "-s", "uniform:8", "--no-check"]) == 0
    own, typed = (resolve(c).sampling for c in ran)
    assert (own, typed) == ("uniform:4", "uniform:8")


def test_ablate_takes_a_config_file_under_the_same_rule(config_file, ran):
    """`ablate --config` reads a run's data, systems and knobs (it had no --config); its own
    variants replace the file's, and a typed option equal to its default still wins."""
    config_file.write_text(config_file.read_text() + "variants: [sovtp/full]\n")
    argv = ["ablate", "--config", str(config_file), "-p", "ladder/plain", "-p", "ladder/full"]
    assert main([*argv, "--sampling", "uniform:8", "--no-check"]) == 0
    (cfg,) = ran
    assert cfg.data == str(config_file.parent / "m.csv") and cfg.variants[:2] == [
        "ladder/plain",
        "ladder/full",
    ]
    assert "sovtp/full" not in cfg.variants  # the file's variants gave way
    assert (cfg.sampling, cfg.seed, cfg.max_faces, cfg.temperature) == ("uniform:8", 5, 3, 0.7)


def test_options_not_typed_keep_the_file_and_without_a_file_the_defaults(config_file, ran):
    assert main(["bench", "--config", str(config_file), "--max-faces", "6", "--no-check"]) == 0
    assert main(["bench", str(config_file.parent / "m.csv"), "--no-check"]) == 0
    from_file, plain = ran
    assert (from_file.sampling, from_file.seed, from_file.max_faces) == ("fps:2", 5, 6)
    assert from_file.systems == BenchConfig(data="x").systems  # no system option typed
    defaults = BenchConfig(data=plain.data)
    assert plain.model_dump() == defaults.model_dump()  # not typed: the model's defaults


def test_server_typed_over_a_config_sets_its_systems_flavour_or_is_refused(tmp_path, ran):
    """`--server vllm` alone over a config's server system changes that system's flavour (it
    was dropped silently); with no server system in the run it is refused, not ignored."""
    f = tmp_path / "c.yaml"
    f.write_text(
        f"data: {tmp_path / 'm.csv'}\nout: {tmp_path / 'r'}\nsystems:\n- name: openai\n"
        "  backend: openai\n  options: {base_url: ['http://127.0.0.1:9/v1'], server: openai}\n"
    )
    assert main(["bench", "--config", str(f), "--server", "vllm", "--no-check"]) == 0
    (cfg,) = ran
    assert [s.options["server"] for s in cfg.systems] == ["vllm"]
    offline = tmp_path / "o.yaml"
    offline.write_text(f"data: {tmp_path / 'm.csv'}\nout: {tmp_path / 'r2'}\n")
    assert main(["bench", "--config", str(offline), "--server", "vllm", "--no-check"]) == 2
    assert main(["bench", str(tmp_path / "m.csv"), "--server", "vllm", "--no-check"]) == 2
    assert len(ran) == 1


def test_ablate_takes_typed_options_over_the_defaults(tmp_path, ran):
    assert (
        main(
            [
                "ablate",
                str(tmp_path / "m.csv"),
                "--ladder",
                "--seed",
                "3",
                "--max-side",
                "256",
                "-o",
                str(tmp_path / "a"),
                "--no-check",
            ]
        )
        == 0
    )
    (cfg,) = ran
    assert (cfg.seed, cfg.max_side, cfg.sampling, cfg.out) == (
        3,
        256,
        "uniform:8",
        str(tmp_path / "a"),
    )


# -- --max-side: a prepare knob added in one field and one option line ---------------------------
def test_max_side_caps_the_long_side_of_every_image_sent(two_faces_png, tmp_path):
    for side, out in ((None, tmp_path / "full"), (200, tmp_path / "capped")):
        flag = [] if side is None else ["--max-side", str(side)]
        assert main(["prompt", str(two_faces_png), "-p", "sovtp/full", "-o", str(out), *flag]) == 0
    sizes = {p.parent.name: Image.open(p).size for p in tmp_path.glob("*/image_*.jpg")}
    assert max(sizes["capped"]) <= 200 < max(sizes["full"])


def test_max_side_reaches_the_runner_and_is_part_of_a_runs_identity_only_when_set(tmp_path):
    from sovtp.engine.workers import prepare_options
    from sovtp.labels import load_label_set

    ls = load_label_set("basic7")
    base = BenchConfig(data=str(tmp_path / "m.csv"), out=str(tmp_path / "r"))
    capped = BenchConfig(**{**base.model_dump(), "max_side": 200})
    assert prepare_options(capped).image.max_side == 200
    assert prepare_options(base).image.max_side == base.image_size == 768  # today's images
    old = run_identity(base, ls)
    assert "max_side" not in old["settings"]  # a run made before the knob still resumes
    assert identity_changes(old, run_identity(capped, ls)) == ["settings.max_side: None → 200"]


def test_max_side_is_declared_once(capsys, monkeypatch):
    """The knob is a field of the prepare settings and a line of the shared option table:
    query, prompt, bench and ablate all take it, with no code of their own."""
    from sovtp.cli.options import PREPARE_KNOBS
    from sovtp.prepare import PrepareSettings

    assert set(PREPARE_KNOBS) <= set(PrepareSettings.model_fields)
    assert "max_side" in PREPARE_KNOBS
    for cmd in ("query", "prompt", "bench", "ablate"):
        monkeypatch.setenv("COLUMNS", "200")
        assert main([cmd, "--help"]) == 0
        assert "--max-side" in capsys.readouterr().out, cmd


# -- one system name ------------------------------------------------------------------------------
def test_a_system_has_one_name_in_query_and_bench(two_faces_png, tmp_path, ran):
    from sovtp.testing import Behaviour, FakeOpenAIServer

    with FakeOpenAIServer(Behaviour(label="sad")) as srv:
        q = tmp_path / "q"
        assert (
            main(
                [
                    "query",
                    str(two_faces_png),
                    "--base-url",
                    srv.base_url,
                    "--model",
                    "fake-vlm",
                    "-s",
                    "uniform:1",
                    "-o",
                    str(q),
                ]
            )
            == 0
        )
        discovered = tmp_path / "d"  # no --model: the model the server serves
        assert (
            main(
                [
                    "query",
                    str(two_faces_png),
                    "--base-url",
                    srv.base_url,
                    "-s",
                    "uniform:1",
                    "-o",
                    str(discovered),
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    "bench",
                    str(tmp_path / "m.csv"),
                    "--base-url",
                    srv.base_url,
                    "--model",
                    "fake-vlm",
                    "--no-check",
                ]
            )
            == 0
        )
    named = json.loads((q / "prediction.json").read_text())["system"]
    assert named == json.loads((discovered / "prediction.json").read_text())["system"]
    assert named == ran[0].systems[0].name == "openai:fake-vlm"
    assert SystemSpec.parse(f"openai:org/fake-vlm@{srv.base_url}").name == named
    assert main(["query", str(two_faces_png), "-s", "uniform:1", "-o", str(tmp_path / "f")]) == 0
    facs = json.loads((tmp_path / "f" / "prediction.json").read_text())["system"]
    assert facs == SystemSpec.parse("facs").name == "facs"


def test_every_refused_setting_is_named_at_once():
    """A bad sampling raised on its own and hid the other bad settings: every refused setting
    is named (a run config: one SovtpError line; the settings alone: pydantic's ValueError)."""
    from sovtp.errors import SovtpError
    from sovtp.prepare import PrepareSettings

    with pytest.raises(ValueError) as e:
        PrepareSettings(sampling="bogus:3", label_order="nope")
    assert "bad sampling 'bogus:3'" in str(e.value) and "label order" in str(e.value)
    with pytest.raises(SovtpError) as e:
        BenchConfig(data="x", sampling="bogus:3", label_order="nope")
    assert "bad sampling 'bogus:3'" in str(e.value) and "label order" in str(e.value)
