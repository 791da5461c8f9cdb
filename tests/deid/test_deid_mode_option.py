"""How faces are obscured under ``--deid`` is a user option: ``--deid-mode blur|pixelate|fill``
of query, prompt, bench and ablate reaches the one prepare pipeline (``fill`` sends each face box
one flat grey), a bench run's config, identity and manifest; runs made before it (which blurred)
resume, and without --deid (nothing obscured) the mode is no part of a run."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from sovtp.cli.app import main
from sovtp.deid.faces import FILL_GREY, MODES
from sovtp.engine.config import LATER_FIELDS, BenchConfig, run_identity
from sovtp.engine.folder import identity_changes, identity_hash


def _sent(q) -> list[np.ndarray]:
    """The query's images as the server decodes them (JPEG artefacts included)."""
    urls = [p["image_url"]["url"] for p in q.messages[-1]["content"] if p["type"] == "image_url"]
    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))).convert("RGB"))
        for u in urls
    ]


def _face_patch(img: np.ndarray, clip, subject: int) -> np.ndarray:
    """The subject's face box (from the raw annotation), scaled to the image as sent, less a
    3-pixel margin; as int so differences do not wrap."""
    fa = clip.frames[0]
    sx, sy = img.shape[1] / fa.size[0], img.shape[0] / fa.size[1]
    x0, y0, x1, y1 = fa.face(subject).bbox
    return img[int(y0 * sy) + 3 : int(y1 * sy) - 3, int(x0 * sx) + 3 : int(x1 * sx) - 3].astype(int)


# -- the prepare pipeline -----------------------------------------------------------------------
def test_fill_sends_each_face_one_flat_grey_and_blur_does_not(astronaut_png):
    from sovtp.prepare import PrepareOptions, Preparer
    from sovtp.prompting.spec import load_spec
    from sovtp.render.marks import VisualSpec

    # no marks, so the face box holds only what the mode left of the face
    spec = replace(load_spec("sovtp/full"), visual=VisualSpec(boxes=False, ids=False))
    opts = PrepareOptions(deid=True, deid_mode="fill", sampling="uniform:2", annotation_cache=False)
    got = {}
    with Preparer(opts) as prep:
        clip, frames = prep.annotate(astronaut_png)
        for mode in ("fill", "blur"):
            prep.options = opts.replace(deid_mode=mode)
            q, _ = prep.query(clip, frames, spec)
            assert q.meta["deid"]["mode"] == mode  # the request records how faces left
            (img,) = _sent(q)
            got[mode] = _face_patch(img, clip, q.subject)
    fill, blur = got["fill"], got["blur"]
    assert fill.size > 3 * 50 * 50
    assert np.abs(fill - FILL_GREY).max() <= 2  # one grey (JPEG keeps a flat block flat)
    assert blur.std() > 5 and np.abs(blur - FILL_GREY).max() > 20  # a blur leaves a face's shading


def test_prepare_options_refuse_an_unknown_mode_when_built():
    from sovtp.prepare import PrepareOptions

    with pytest.raises(ValueError, match=r"blur \| pixelate \| fill.*'smudge'"):
        PrepareOptions(deid=True, deid_mode="smudge")
    assert PrepareOptions(deid=True, deid_mode="pixelate").deid_mode == "pixelate"
    assert PrepareOptions().deid_mode == "blur"


# -- the commands -------------------------------------------------------------------------------
_ARGS = {
    "query": ["MEDIA"],
    "prompt": ["MEDIA"],
    "bench": ["x.csv"],
    "ablate": ["x.csv", "--ladder"],
}


@pytest.mark.parametrize("cmd", list(_ARGS))
def test_an_unknown_deid_mode_is_a_usage_error_naming_the_choices(cmd, tmp_path, capfd):
    media = tmp_path / "clip.png"
    media.write_bytes(b"never read: the option is refused first")
    args = [str(media) if a == "MEDIA" else a for a in _ARGS[cmd]]
    out = tmp_path / "o"
    assert main([cmd, *args, "--deid", "--deid-mode", "smudge", "-o", str(out)]) == 2
    err = capfd.readouterr().err  # click writes its usage errors to the real stderr
    assert "--deid-mode" in err and "blur | pixelate | fill" in err and "smudge" in err
    assert not out.exists()


@pytest.mark.parametrize("cmd", list(_ARGS))
def test_a_deid_mode_without_deid_is_refused(cmd, tmp_path, capfd):
    """Without --deid nothing is obscured: asking for fill must not look as if faces were."""
    media = tmp_path / "clip.png"
    media.write_bytes(b"never read")
    args = [str(media) if a == "MEDIA" else a for a in _ARGS[cmd]]
    out = tmp_path / "o"
    assert main([cmd, *args, "--deid-mode", "fill", "-o", str(out)]) == 2
    assert "obscures nothing without --deid" in capfd.readouterr().err
    assert not out.exists()


def test_query_cli_sends_the_chosen_mode(astronaut_png, tmp_path):
    """``sovtp query --deid --deid-mode fill`` to a vision model (a loopback server): the request
    the run records says the faces left filled, and the guard checked the image sent.  The
    offline FACS reasoner is sent no image, so there is nothing for the guard to check."""
    from sovtp.testing import Behaviour, FakeOpenAIServer

    def ask(*backend: str, out: str) -> dict:
        args = ["query", str(astronaut_png), *backend, "-s", "uniform:2", "--no-cache"]
        assert main([*args, "--deid", "--deid-mode", "fill", "-o", str(tmp_path / out)]) == 0
        return json.loads((tmp_path / out / "request.json").read_text())

    with FakeOpenAIServer(Behaviour(label="happy")) as srv:
        sent = ask("--base-url", srv.base_url, out="v")
    assert sent["query"]["meta"]["deid"] == {"faces": "all", "mode": "fill", "checked": 1}
    assert sent["images"] == ["image_0.jpg"]
    offline = ask("--backend", "facs", out="f")
    assert offline["query"]["meta"]["deid"] == {"faces": "all", "mode": "fill", "checked": 0}
    assert offline["images"] == []


@pytest.mark.parametrize("cmd", ["bench", "ablate"])
def test_bench_and_ablate_put_the_deid_mode_in_the_run_config(cmd, tmp_path, monkeypatch):
    import sovtp.cli.bench as cli_bench

    ran = []
    monkeypatch.setattr(cli_bench, "run_and_exit", lambda cfg, *a, **k: ran.append(cfg))
    extra = ["--ladder"] if cmd == "ablate" else []
    out = str(tmp_path / "r")
    for mode in ("fill", "pixelate", None):
        flag = ["--deid-mode", mode] if mode else []
        assert main([cmd, str(tmp_path / "m.csv"), *extra, "--deid", *flag, "-o", out]) == 0
    assert [c.deid_mode for c in ran] == ["fill", "pixelate", "blur"]
    assert all(c.deid for c in ran)


def test_a_config_file_keeps_its_mode_and_the_runner_passes_it_on(tmp_path):
    from sovtp.cli.bench import build_config
    from sovtp.engine.workers import prepare_options
    from sovtp.errors import SovtpError

    base = {"data": str(tmp_path / "m.csv"), "out": str(tmp_path / "r")}
    assert BenchConfig(**base).deid_mode == "blur" == LATER_FIELDS["deid_mode"]
    with pytest.raises(SovtpError, match="deid_mode must be one of blur | pixelate | fill"):
        BenchConfig(**base, deid_mode="smudge")
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(f"data: {base['data']}\nout: {base['out']}\ndeid: true\ndeid_mode: fill\n")
    # no option typed (`bench --config FILE`): the file's deid and mode stay
    cfg = build_config(cfg_file, {})
    assert (cfg.deid, cfg.deid_mode) == (True, "fill")
    assert prepare_options(cfg).deid_mode == "fill" and prepare_options(cfg).deid
    assert prepare_options(BenchConfig(**base, deid=True)).deid_mode == "blur"


# -- a run's identity and manifest --------------------------------------------------------------
def test_the_deid_mode_is_part_of_a_deid_runs_identity_only():
    """Runs made before the option blurred: at blur the identity is theirs (they resume); fill
    and pixelate are other runs; without deid nothing is obscured, so the mode is left out."""
    from sovtp.labels import load_label_set

    ls = load_label_set("basic7")
    deid = BenchConfig(data="m.csv", out="r", deid=True)

    def ident(mode: str, cfg: BenchConfig = deid) -> dict:
        return run_identity(cfg.model_copy(update={"deid_mode": mode}), ls)

    old = run_identity(deid, ls)
    assert "deid_mode" not in old["settings"]  # as a run made before the option hashes
    assert identity_hash(ident("blur")) == identity_hash(old)
    hashes = {identity_hash(ident(m)) for m in MODES}
    assert len(hashes) == len(MODES)
    assert identity_changes(old, ident("fill")) == ["settings.deid_mode: None → 'fill'"]
    plain = deid.model_copy(update={"deid": False})
    assert identity_hash(ident("fill", plain)) == identity_hash(ident("blur", plain))
    assert "deid_mode" not in ident("fill", plain)["settings"]


def test_the_manifest_records_the_deid_mode():
    from sovtp.labels import load_label_set
    from sovtp.recipes.bench import run_manifest

    cfg = BenchConfig(data="m.csv", out="r", deid=True, deid_mode="fill")
    protocol = run_manifest(cfg, load_label_set("basic7"), {})["protocol"]
    assert protocol["deid"] == {"on": True, "blur": "all", "mode": "fill"}
    plain = BenchConfig(data="m.csv", out="r")
    assert run_manifest(plain, load_label_set("basic7"), {})["protocol"]["deid"] is False


def test_the_option_costs_help_no_face_module_import():
    """``--deid-mode``'s choices come from sovtp.deid.faces (scipy, ~1 s), looked up only for a
    mode other than the default: ``sovtp --help``, the option at its default and a config that
    spells the default out never import it."""
    code = (
        "import sys\n"
        "from sovtp.cli.app import main\n"
        "from sovtp.cli.options import deid_mode_option\n"
        "from sovtp.engine.config import BenchConfig\n"
        "assert deid_mode_option('blur') == 'blur'\n"
        "BenchConfig(data='m.csv', deid=True, deid_mode='blur')\n"
        "assert 'sovtp.deid.faces' not in sys.modules and 'scipy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
