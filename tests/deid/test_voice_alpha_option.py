"""The McAdams coefficient as a user option: one parser (``0.75`` or a range ``0.5-0.9`` drawn
per utterance from a seed) behind ``sovtp deid --alpha/--seed`` and ``--voice-alpha`` of query,
bench and ablate; a run's identity follows it, and older runs (made before it existed) resume."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from sovtp.cli.app import main
from sovtp.deid.voice import ALPHA_RANGE, DEFAULT_ALPHA, format_alpha, parse_alpha
from sovtp.engine.config import LATER_FIELDS, BenchConfig, run_identity
from sovtp.engine.folder import identity_changes

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt)"
)


# -- the parser ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("0.75", 0.75),
        ("0.9", 0.9),  # VoicePrivacy 2022's range ends here: accepted, with a warning
        (" 0.8 ", 0.8),
        ("5e-1", 0.5),  # an exponent's dash is no range
        ("0.5-0.9", (0.5, 0.9)),
        ("0.5 - 0.9", (0.5, 0.9)),
        (".6-.6", (0.6, 0.6)),
    ],
)
def test_parse_alpha_reads_a_value_or_a_range(text, want):
    got = parse_alpha(text)
    assert got == want and type(got) is type(want)
    assert parse_alpha(format_alpha(got)) == got  # the one spelling reads back


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("abc", "number such as 0.75 or a range"),
        ("", "number such as 0.75"),
        ("0.5-", "range LOW-HIGH"),
        ("0.5-0.7-0.9", "range LOW-HIGH"),
        ("0", r"in \(0, 2\)"),
        ("2", r"in \(0, 2\)"),
        ("-0.5", r"in \(0, 2\)"),
        ("nan", r"in \(0, 2\)"),
        ("0.5-2.5", r"in \(0, 2\)"),
        ("0.9-0.5", "LOW <= HIGH"),
        ("1", "above 0.9"),  # the identity: the voice would leave as it is
        ("0.95", "above 0.9"),
        ("1.2", "above 0.9"),  # formants lowered: never measured
        ("0.5-1.2", "above 0.9"),
    ],
)
def test_parse_alpha_refuses_what_is_no_alpha(text, why):
    with pytest.raises(ValueError, match=why):
        parse_alpha(text)


def test_a_weak_alpha_is_accepted_with_a_warning_naming_what_was_measured(tmp_path, capfd):
    from sovtp.deid.voice import alpha_warning

    assert alpha_warning(0.75) is None and alpha_warning(0.8) is None
    assert alpha_warning((0.5, 0.8)) is None
    for weak in (0.85, (0.5, 0.9)):
        assert "weak anonymisation" in alpha_warning(weak) and "7" in alpha_warning(weak)
    raw = tmp_path / "missing.wav"  # the option is read (and warned about) before the media
    main(["deid", str(raw), "-o", str(tmp_path / "o.wav"), "--alpha", "0.85"])
    assert "warning: McAdams alpha 0.85 reaches above 0.8" in capfd.readouterr().err


# -- sovtp deid ---------------------------------------------------------------------------------
def _deid(capsys, raw, out, *args) -> dict:
    assert main(["deid", str(raw), "-o", str(out), *args]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    raw = tmp_path_factory.mktemp("voice") / "raw.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(raw), "I am quite upset about how this went today."], check=True
    )
    return raw


@needs_espeak
def test_deid_draws_a_seeded_alpha_in_the_range_and_reports_it(spoken, tmp_path, capsys):
    from sovtp.deid.voice import anonymise_audio
    from sovtp.media.audio import load_audio

    first = _deid(capsys, spoken, tmp_path / "a.wav", "--alpha", "0.5-0.9", "--seed", "3")
    again = _deid(capsys, spoken, tmp_path / "b.wav", "--alpha", "0.5-0.9", "--seed", "3")
    a = first["alpha"]
    assert 0.5 <= a <= 0.9 and again["alpha"] == a and "seed 3" in first["audio"]
    x, rate = load_audio(spoken, 16000)
    y1, _ = load_audio(tmp_path / "a.wav", 16000)
    y2, _ = load_audio(tmp_path / "b.wav", 16000)
    assert np.array_equal(y1, y2)  # the same seed: the same α, the same audio

    # the reported α is the one the audio went through: closer to it than to a neighbour
    def err(alpha: float) -> float:
        z = anonymise_audio(x, rate, alpha=alpha)
        n = min(len(z), len(y1))
        return float(np.mean((z[:n] - y1[:n]) ** 2))

    assert err(a) < 0.2 * min(err(a - 0.05), err(a + 0.05))

    other = _deid(capsys, spoken, tmp_path / "s4.wav", "--alpha", "0.5-0.9", "--seed", "4")
    assert 0.5 <= other["alpha"] <= 0.9 and other["alpha"] != a  # another seed, another α
    y4, _ = load_audio(tmp_path / "s4.wav", 16000)
    assert not np.array_equal(y1, y4)  # the seed reaches the audio, not only the report

    fixed = _deid(capsys, spoken, tmp_path / "f.wav", "--alpha", "0.6")
    assert fixed["alpha"] == 0.6 and "α 0.6" in fixed["audio"]


@needs_espeak
def test_a_drawn_alpha_is_keyed_on_the_files_bytes_and_unseeded_is_private(
    spoken, tmp_path, capsys
):
    """The same recording under another name draws the same α from the same seed (the key is
    its bytes, so clip.wav in every folder does not share one α by name); without --seed the α
    comes from OS entropy, and the audio still goes through exactly the α reported."""
    import shutil

    from sovtp.deid.voice import anonymise_audio
    from sovtp.media.audio import load_audio

    other_name = tmp_path / "renamed.wav"
    shutil.copyfile(spoken, other_name)
    a = _deid(capsys, spoken, tmp_path / "a.wav", "--alpha", "0.5-0.9", "--seed", "5")["alpha"]
    b = _deid(capsys, other_name, tmp_path / "b.wav", "--alpha", "0.5-0.9", "--seed", "5")
    assert b["alpha"] == a
    drawn = [_deid(capsys, spoken, tmp_path / f"u{k}.wav", "--alpha", "0.5-0.9") for k in "01"]
    assert all("OS entropy" in d["audio"] for d in drawn)
    assert drawn[0]["alpha"] != drawn[1]["alpha"]  # two draws (equal with odds ~1e-15)
    x, rate = load_audio(spoken, 16000)
    y, _ = load_audio(tmp_path / "u0.wav", 16000)

    def err(alpha: float) -> float:
        z = anonymise_audio(x, rate, alpha=alpha)
        n = min(len(z), len(y))
        return float(np.mean((z[:n] - y[:n]) ** 2))

    u = drawn[0]["alpha"]  # the reported α, not another draw: far closer than a neighbour
    assert err(u) < 0.2 * min(err(u - 0.05), err(u + 0.05))


def test_deid_refuses_a_bad_alpha_as_a_usage_error(tmp_path, capfd):
    raw = tmp_path / "raw.wav"
    raw.write_bytes(b"not read: the option is refused first")
    assert main(["deid", str(raw), "-o", str(tmp_path / "o.wav"), "--alpha", "0.9-0.5"]) == 2
    err = capfd.readouterr().err  # click writes its usage errors to the real stderr
    assert "--alpha" in err and "LOW <= HIGH" in err and "Traceback" not in err
    assert not (tmp_path / "o.wav").exists()


# -- query / prepare ----------------------------------------------------------------------------
def test_prepare_sends_the_voice_at_the_chosen_alpha(talking_clip):
    from sovtp.prepare import PrepareOptions, Preparer
    from sovtp.prompting.spec import load_spec

    spec = replace(load_spec("sovtp/full"), audio=True)  # an omni-model prompt
    opts = PrepareOptions(sampling="uniform:2", deid=True, voice_alpha=0.6, annotation_cache=False)
    with Preparer(opts) as prep:
        clip, frames = prep.annotate(talking_clip)
        q, _ = prep.query(clip, frames, spec, sample_key="talk")
        assert q.meta["audio"] == {"anonymised": True, "mcadams_alpha": 0.6}
        # a range: one α per utterance, drawn from the seed and the sample key (the voice is
        # anonymised with or without --deid; without, the face guard's time is saved)
        prep.options = opts.replace(voice_alpha="0.5-0.9", deid=False)
        assert prep.options.alpha == (0.5, 0.9)
        drawn = [prep.query(clip, frames, spec, sample_key=k)[0].meta["audio"] for k in "ab"]
    assert all(0.5 <= d["mcadams_alpha"] <= 0.9 and d["mcadams_range"] == [0.5, 0.9] for d in drawn)
    assert drawn[0]["mcadams_alpha"] != drawn[1]["mcadams_alpha"]
    assert PrepareOptions().alpha == DEFAULT_ALPHA
    with pytest.raises(ValueError, match=r"in \(0, 2\)"):
        PrepareOptions(voice_alpha=2.5)


def test_query_cli_takes_voice_alpha(talking_clip, tmp_path):
    """``sovtp query --voice-alpha`` reaches the audio sent (the offline FACS backend answers)."""
    from sovtp.prompting.spec import prompts_dir

    spec = tmp_path / "omni.yaml"
    text = (prompts_dir() / "sovtp" / "full.yaml").read_text()
    spec.write_text(text.replace("id: sovtp/full", "id: test/omni") + "\naudio: true\n")
    out = tmp_path / "q"
    rc = main(
        [
            "query",
            str(talking_clip),
            "--backend",
            "facs",
            "-p",
            str(spec),
            "-s",
            "uniform:2",
            "--no-cache",
            "--voice-alpha",
            "0.55",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    meta = json.loads((out / "request.json").read_text())["query"]["meta"]
    assert meta["audio"]["mcadams_alpha"] == 0.55


@pytest.mark.parametrize("cmd", ["query", "bench", "ablate"])
def test_a_bad_voice_alpha_is_a_usage_error(cmd, tmp_path, capfd):
    args = {"query": [str(tmp_path)], "bench": ["x.csv"], "ablate": ["x.csv", "--ladder"]}[cmd]
    assert main([cmd, *args, "--voice-alpha", "0.5-x", "-o", str(tmp_path / "o")]) == 2
    err = capfd.readouterr().err
    assert "--voice-alpha" in err and "range LOW-HIGH" in err
    assert not (tmp_path / "o").exists()


# -- bench: config, identity, manifest ----------------------------------------------------------
@pytest.mark.parametrize("cmd", ["bench", "ablate"])
def test_bench_and_ablate_put_voice_alpha_in_the_run_config(cmd, tmp_path, monkeypatch):
    import sovtp.cli.bench as cli_bench

    ran = []
    monkeypatch.setattr(cli_bench, "run_and_exit", lambda cfg, *a, **k: ran.append(cfg))
    extra = ["--ladder"] if cmd == "ablate" else []
    out = str(tmp_path / "r")
    for alpha in ("0.5-0.9", None):
        flag = ["--voice-alpha", alpha] if alpha else []
        assert main([cmd, str(tmp_path / "m.csv"), *extra, *flag, "-o", out]) == 0
    assert [c.voice_alpha for c in ran] == ["0.5-0.9", "0.75"]


def test_bench_config_keeps_one_spelling_and_the_runner_parses_it(tmp_path):
    from sovtp.cli.bench import build_config
    from sovtp.cli.options import VOICE_ALPHA
    from sovtp.engine.workers import prepare_options
    from sovtp.errors import SovtpError

    base = {"data": str(tmp_path / "m.csv"), "out": str(tmp_path / "r")}
    assert BenchConfig(**base).voice_alpha == VOICE_ALPHA == format_alpha(DEFAULT_ALPHA)
    assert LATER_FIELDS["voice_alpha"] == "0.8"  # what runs made before the option used
    for given in (0.6, "0.60", " 0.6"):
        assert BenchConfig(**base, voice_alpha=given).voice_alpha == "0.6"
    assert BenchConfig(**base, voice_alpha=[0.5, 0.9]).voice_alpha == "0.5-0.9"
    with pytest.raises(SovtpError, match="voice_alpha"):
        BenchConfig(**base, voice_alpha="0.9-0.5")
    cfg = build_config(None, {**base, "voice_alpha": "0.5-0.9"})
    assert prepare_options(cfg).alpha == ALPHA_RANGE
    assert prepare_options(BenchConfig(**base)).alpha == DEFAULT_ALPHA


def test_voice_alpha_is_part_of_a_runs_identity_and_older_runs_keep_their_alpha(tmp_path):
    """Runs made before the option anonymised at α 0.8 (the default then): their identity has
    no voice_alpha, and only α 0.8 matches it — resuming one at today's 0.75 is refused, so a
    run never mixes voices anonymised two ways.  A run whose prompts send no audio leaves the
    field out whatever its value: α changes nothing it asks."""
    from sovtp.engine.folder import identity_hash
    from sovtp.labels import load_label_set
    from sovtp.prompting.spec import prompts_dir

    ls = load_label_set("basic7")
    omni = tmp_path / "omni.yaml"
    text = (prompts_dir() / "sovtp" / "full.yaml").read_text()
    omni.write_text(text.replace("id: sovtp/full", "id: test/omni") + "\naudio: true\n")
    base = BenchConfig(
        data=str(tmp_path / "m.csv"), out=str(tmp_path / "r"), deid=True, variants=[str(omni)]
    )

    def ident(alpha: str, cfg: BenchConfig = base) -> dict:
        return run_identity(BenchConfig(**{**cfg.model_dump(), "voice_alpha": alpha}), ls)

    old = ident("0.8")
    assert "voice_alpha" not in old["settings"]  # as a run made before the option hashes
    assert identity_hash(ident("0.80")) == identity_hash(old)  # 0.8, spelt otherwise
    ids = [old, run_identity(base, ls), ident("0.6"), ident("0.5-0.9")]
    assert len({identity_hash(i) for i in ids}) == 4
    assert identity_changes(old, ids[1]) == ["settings.voice_alpha: None → '0.75'"]
    assert identity_changes(old, ids[2]) == ["settings.voice_alpha: None → '0.6'"]
    silent = base.model_copy(update={"variants": ["sovtp/full"]})  # no audio in its prompts
    assert identity_hash(ident("0.6", silent)) == identity_hash(ident("0.75", silent))
    assert "voice_alpha" not in ident("0.6", silent)["settings"]


def test_the_manifest_records_the_voice_alpha(tmp_path):
    from sovtp.labels import load_label_set
    from sovtp.recipes.bench import run_manifest

    cfg = BenchConfig(
        data=str(tmp_path / "m.csv"), out=str(tmp_path / "r"), deid=True, voice_alpha="0.5-0.9"
    )
    protocol = run_manifest(cfg, load_label_set("basic7"), {})["protocol"]
    assert protocol["voice_alpha"] == "0.5-0.9" and protocol["deid"]["on"]
