"""The `sovtp` command as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SOVTP = [sys.executable, "-m", "sovtp.cli"]


def run(*args, check=True):
    p = subprocess.run(
        [*SOVTP, *map(str, args)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_help_imports_no_heavy_modules():
    code = (
        "import sys; from sovtp.cli import app, main; main(['--help']); "
        "bad = [m for m in ('torch', 'transformers', 'mediapipe', 'cv2', 'supervision') if m in sys.modules]; "
        "print('HEAVY', bad)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in p.stdout, p.stdout + p.stderr
    assert "annotate" in p.stdout and "prompt" in p.stdout


def test_annotate_writes_pngs_json_and_cues(pan_mp4, tmp_path):
    out = tmp_path / "ann"
    p = run("annotate", pan_mp4, "-o", out, "--sampling", "uniform:4")
    assert "1 face ID(s) [1]" in p.stdout
    assert len(list(out.glob("frame_*.png"))) == 4
    data = json.loads((out / "annotations.json").read_text())
    assert [len(f["faces"]) for f in data["frames"]] == [1, 1, 1, 1]
    assert len(data["frames"][0]["faces"][0]["landmarks"]) == 478
    assert "AU12 lip corner puller" in (out / "cues.txt").read_text()
    again = run("annotate", pan_mp4, "-o", out, "--sampling", "uniform:4")
    assert "annotation cache hit" in again.stdout
    fresh = run("annotate", pan_mp4, "-o", out, "--sampling", "uniform:4", "--no-cache")
    assert "annotation cache hit" not in fresh.stdout and "1 face ID(s) [1]" in fresh.stdout


def test_prompt_prints_text_and_json(two_faces_png, tmp_path):
    p = run(
        "prompt", two_faces_png, "--prompt", "sovtp/full", "--subject", "1", "-o", tmp_path / "q"
    )
    assert "Stage 4 - Facial action units." in p.stdout and "person 1" in p.stdout
    assert "Person 2: looks like happiness" in p.stdout
    assert (tmp_path / "q" / "image_0.jpg").exists() and (tmp_path / "q" / "prompt.txt").exists()
    pj = run("prompt", two_faces_png, "--prompt", "ladder/plain", "--json", "-o", tmp_path / "q2")
    messages = json.loads(pj.stdout)
    assert messages[-1]["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_prompts_and_models_list():
    p = run("prompts", "list")
    assert (
        "sovtp/full" in p.stdout
        and "baseline/red_circle" in p.stdout
        and "ladder/au_overlay" in p.stdout
    )
    m = run("models", "list")
    core = [ln for ln in m.stdout.splitlines() if ln.startswith(("face_landmarker", "pose_"))]
    assert len(core) == 2 and not any("missing" in ln for ln in core)
    assert "centerface" in m.stdout and "MIT" in m.stdout  # every file names its licence


def test_bad_input_is_one_line_not_a_traceback(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_text("hello")
    p = run("annotate", bad, "-o", tmp_path / "o", check=False)
    assert p.returncode == 2
    assert "sovtp: error: cannot read media" in p.stderr and "Traceback" not in p.stderr
    p = run("prompt", bad, "--prompt", "nope/nope", check=False)
    assert p.returncode == 2 and "unknown prompt" in p.stderr
    p = run(
        "annotate",
        Path(tmp_path / "x.mp4"),
        "-o",
        tmp_path / "o",
        "--sampling",
        "every:2",
        check=False,
    )
    assert p.returncode == 2 and "bad sampling" in p.stderr


def test_query_offline_and_against_a_loopback_server(two_faces_png, tmp_path):
    from sovtp.testing import Behaviour, FakeOpenAIServer

    p = run("query", two_faces_png, "--subject", "1", "-o", tmp_path / "q")
    assert "happy" in p.stdout and "facs" in p.stdout
    for f in ("prompt.txt", "request.json", "response.json", "prediction.json"):
        assert (tmp_path / "q" / f).exists()
    assert json.loads((tmp_path / "q" / "prediction.json").read_text())["label"] == "happy"
    # the FACS reasoner reads no pixels: the folder records a text-only query, not an image it
    # never got, and the prompt does not claim one is shown or describe marks nobody drew
    assert json.loads((tmp_path / "q" / "request.json").read_text())["images"] == []
    assert not list((tmp_path / "q").glob("image_*.jpg"))
    text = (tmp_path / "q" / "prompt.txt").read_text()
    assert "No image is attached" in text and "You are shown" not in text
    assert "each detected face has a box" not in text and "person 1" in text
    with FakeOpenAIServer(Behaviour(label="sad")) as srv:
        env_key = "sk-do-not-leak-42"
        os.environ["SOVTP_API_KEY"] = env_key
        try:
            p = run("query", two_faces_png, "--base-url", srv.base_url, "-o", tmp_path / "s")
        finally:
            del os.environ["SOVTP_API_KEY"]
        auth = {k.lower(): v for k, v in srv.state.headers[-1].items()}["authorization"]
        assert auth == f"Bearer {env_key}"
    assert "sad" in p.stdout and "fake-vlm" in p.stdout
    assert (tmp_path / "s" / "image_0.jpg").exists()  # a vision model is sent the drawn image
    assert "You are shown an image" in (tmp_path / "s" / "prompt.txt").read_text()
    for f in (tmp_path / "s").iterdir():
        assert env_key not in f.read_bytes().decode("latin-1")
    body = json.loads((tmp_path / "s" / "request.json").read_text())["body"]
    assert body["response_format"]["type"] == "json_schema"


def test_usage_errors_are_one_message_not_a_traceback():
    for args in (["score", "x.csv", "--nope"], ["bench"]):
        p = subprocess.run([*SOVTP, *args], capture_output=True, text=True)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert "No such option" in p.stderr or "give DATA" in p.stderr


def test_clean_errors_for_common_mistakes(tmp_path):
    """Each mistake is one line naming the fix, exit 2, no traceback."""
    import sovtp

    assert run("--version").stdout.strip() == f"sovtp {sovtp.__version__}"
    img = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(img)
    afile = tmp_path / "afile"
    afile.write_text("x")
    env_dir = tmp_path / "no-weights"
    cases = [
        (["query", img, "--model", "qwen"], "--base-url"),  # never silently the offline reasoner
        (["query", img, "-o", afile], "is a file"),
        (["query", img, "--output", "essay"], "output must be one of"),
        (["query", img, "--label-order", "random"], "label order must be one of"),
        (["score", img, "--n-boot", "0"], "--n-boot"),
        (["annotate", img, "-o", tmp_path / "o", "--au-source", "pyfeat"], str(env_dir)),
    ]
    for args, needle in cases:
        p = subprocess.run(
            [*SOVTP, *map(str, args)],
            capture_output=True,
            text=True,
            env=os.environ | {"SOVTP_PYFEAT_DIR": str(env_dir)},
        )
        assert p.returncode == 2 and "Traceback" not in p.stderr, (args, p.stderr)
        assert needle in p.stderr, (args, p.stderr)
        if "sovtp: error:" in p.stderr:  # ours (not click's usage block): one line, all of it
            assert len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)


def test_score_binary_and_interval_predictions_made_elsewhere(tmp_path):
    """`sovtp score` on files made elsewhere: binary scores against scikit-learn, spotted
    intervals against a hand count (IoU ≥ 0.5, each ground truth matched once, F1 summed)."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    s = np.clip(y * 0.4 + rng.random(60) * 0.6, 0, 1)
    pred, gold = tmp_path / "pred.csv", tmp_path / "gold.csv"
    pred.write_text("id,score\n" + "".join(f"s{i},{v:.6f}\n" for i, v in enumerate(s)))
    gold.write_text(
        "id,gold\n" + "".join(f"s{i},{'live' if t else 'attack'}\n" for i, t in enumerate(y))
    )
    args = ["score", pred, "--gold", gold, "--task", "binary", "--positive", "live"]
    out = json.loads(run(*args, "--score-column", "score", "--json", "--n-boot", "200").stdout)
    m = out["systems"][0]["metrics"]
    assert abs(m["ap"] - average_precision_score(y, s)) < 1e-3
    assert abs(m["roc_auc"] - roc_auc_score(y, s)) < 1e-9
    assert "roc_auc" in run(*args, "--score-column", "score", "--n-boot", "200").stdout
    # spotting: video a has GT [10,20] and [40,50]; spotted [12,21] (TP), [60,70] (FP);
    # video b has GT [5,15] spotted [0,30] (IoU 1/3: FP + FN) → TP 1, FP 2, FN 2 → F1 1/3
    spots, truth = tmp_path / "spots.csv", tmp_path / "truth.csv"
    spots.write_text("video,start,end\na,12,21\na,60,70\nb,0,30\n")
    truth.write_text("video,start,end\na,10,20\na,40,50\nb,5,15\n")
    out = json.loads(
        run(
            "score", spots, "--gold", truth, "--task", "intervals", "--json", "--n-boot", "200"
        ).stdout
    )
    f1 = out["systems"][0]["metrics"]
    assert abs(f1.get("spot_f1", f1.get("f1", -1)) - 1 / 3) < 1e-9, f1


def test_credentials_in_a_base_url_reach_no_file_and_no_log(tmp_path, astronaut_png):
    """user:pass@ and ?api_key= inside --base-url: redacted in config.yaml, manifest.json,
    request.json, rows and -v logs, like the API key itself."""
    from sovtp.testing import FakeOpenAIServer

    with FakeOpenAIServer() as srv:
        url = srv.base_url.replace("http://", "http://alice:hunter2@") + "?api_key=sk-zzz"
        m = tmp_path / "m.csv"
        m.write_text(f"id,media,label\na,{astronaut_png},happy\n")
        common = ["--base-url", url, "--model", "fake-vlm", "-s", "uniform:1"]
        b = run("-v", "bench", m, *common, "--no-check", "-o", tmp_path / "run", check=False)
        q = run("-v", "query", astronaut_png, *common, "-o", tmp_path / "q", check=False)
        # the credential reaches the server (as a query parameter), and only the server
        assert "api_key=sk-zzz" in srv.state.queries and b.returncode == 0 and q.returncode == 0
    files = [f for f in tmp_path.rglob("*") if f.is_file() and f.suffix != ".jpg"]
    blob = b.stderr + b.stdout + q.stderr + q.stdout
    blob += "".join(f.read_text(errors="ignore") for f in files)
    assert (tmp_path / "run" / "config.yaml").exists() and (
        tmp_path / "q" / "request.json"
    ).exists()
    assert "hunter2" not in blob and "sk-zzz" not in blob
    assert "***" in (tmp_path / "run" / "config.yaml").read_text()


def test_score_refuses_a_binary_file_with_an_id_twice(tmp_path):
    pred, gold = tmp_path / "p.csv", tmp_path / "g.csv"
    pred.write_text("id,score\na,0.2\na,0.9\nb,0.5\n")  # which score is a's? refuse, don't pick
    gold.write_text("id,gold\na,live\nb,attack\n")
    p = run(
        "score",
        pred,
        "--gold",
        gold,
        "--task",
        "binary",
        "--positive",
        "live",
        "--score-column",
        "score",
        check=False,
    )
    assert p.returncode == 2 and "'a'" in p.stderr and "Traceback" not in p.stderr
