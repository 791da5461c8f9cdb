"""``sovtp export lmms-eval``: the task folder, its scoring glue, and lmms-eval itself running the
exported task against a loopback OpenAI-compatible server with the scores of ``sovtp bench``.

The end-to-end test installs ``lmms-eval`` from PyPI into a virtualenv of its own (cached under
``~/.cache/sovtp/test`` or ``SOVTP_TEST_CACHE``, keyed by version) that sees this environment's
packages through a ``.pth`` (torch, datasets, transformers, openai and sovtp are not installed
twice): lmms-eval itself with ``--no-deps``, the few small packages its evaluation path imports
that this environment lacks (pinned below), and ``filelock<4`` (lmms-eval 0.7.3 patches
``filelock._api``, which filelock 4 no longer has).  Without the package index it skips.
"""

from __future__ import annotations

import base64
import csv
import importlib.util
import io
import json
import os
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from sovtp.export.lmms_eval import export_lmms_eval
from sovtp.testing import Behaviour, FakeOpenAIServer

SOVTP = [sys.executable, "-m", "sovtp.cli"]
LMMS_EVAL = os.environ.get("SOVTP_LMMS_EVAL_VERSION", "0.7.3")
# what lmms-eval's evaluation path imports beyond this environment (measured: each one's
# ModuleNotFoundError in turn), pinned; filelock below 4 for filelock._api
LMMS_EXTRA = [
    "loguru==0.8.0",
    "python-dotenv==1.2.4",
    "tenacity==9.2.1",
    "jsonlines==4.0.0",
    "pytablewriter==1.2.1",
    "sacrebleu==2.6.0",
    "evaluate==0.4.6",
]
FILELOCK = "filelock==3.32.7"
CACHE = Path(os.environ.get("SOVTP_TEST_CACHE", Path.home() / ".cache" / "sovtp" / "test"))


def _manifest(path: Path, rows: list[tuple[str, Path, str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "media", "label"])
        w.writerows(rows)
    return path


class _TaggedLoader(yaml.SafeLoader):
    """Reads lmms-eval's ``!function module.name`` tags as their text."""


_TaggedLoader.add_constructor("!function", lambda loader, node: f"!function {node.value}")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, astronaut_png_shared, two_faces_png_shared):
    import shutil

    d = tmp_path_factory.mktemp("export")
    (d / "media").mkdir()  # a manifest names media under its own folder
    astronaut_png = Path(shutil.copy(astronaut_png_shared, d / "media"))
    two_faces_png = Path(shutil.copy(two_faces_png_shared, d / "media"))
    m = _manifest(
        d / "m.csv",
        [
            ("r1", astronaut_png, "happy"),
            ("r2", two_faces_png, "Sadness"),
            ("r3", astronaut_png, "angry"),
        ],
    )
    from sovtp.engine.config import BenchConfig
    from sovtp.evaluator import load_evaluator

    cfg = BenchConfig(
        data=str(m),
        evaluator="dfew",
        variants=[load_evaluator("dfew").prompt],
        sampling="uniform:1",
    )
    res = export_lmms_eval(cfg, d / "task")
    return d, m, res


def test_the_folder_is_an_lmms_eval_task_on_local_data(exported):
    d, _, res = exported
    task = d / "task"
    assert {p.name for p in task.iterdir()} == {
        "images",
        "sovtp_dfew.jsonl",
        "sovtp_dfew.yaml",
        "sovtp_task.json",
        "utils.py",
    }
    cfg = yaml.load((task / "sovtp_dfew.yaml").read_text(), Loader=_TaggedLoader)
    assert cfg["task"] == "sovtp_dfew" and cfg["dataset_path"] == "json"
    assert cfg["dataset_kwargs"]["data_files"]["test"] == str(task / "sovtp_dfew.jsonl")
    assert cfg["doc_to_messages"] == "!function utils.doc_to_messages"
    assert cfg["process_results"] == "!function utils.process_results"
    assert [m["metric"] for m in cfg["metric_list"]] == ["war", "uar", "macro_f1", "invalid_rate"]
    docs = [json.loads(x) for x in (task / "sovtp_dfew.jsonl").read_text().splitlines()]
    # one document per sample, gold normalised by the evaluator's label set ("Sadness" → sad)
    assert [(x["sample_id"], x["gold"]) for x in docs] == [
        ("r1", "happy"),
        ("r2", "sad"),
        ("r3", "angry"),
    ]
    assert res.docs == 3 and res.images == 2  # r1 and r3 share one annotated frame
    for x in docs:
        msgs = json.loads(x["messages"])
        assert [m["role"] for m in msgs] == ["system", "user"]
        imgs = [p["url"] for p in msgs[1]["content"] if p["type"] == "image"]
        assert len(imgs) == 1 and (task / imgs[0]).is_file()
        assert "Choose from: happy, sad, neutral" in msgs[1]["content"][-1]["text"]


def _utils(task: Path):
    spec = importlib.util.spec_from_file_location("exported_utils", task / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_process_results_parses_like_sovtp_and_aggregates_war_uar(exported):
    d, _, _ = exported
    u = _utils(d / "task")
    docs = [json.loads(x) for x in (d / "task" / "sovtp_dfew.jsonl").read_text().splitlines()]
    messages = u.doc_to_messages(docs[0])
    assert Path(messages[1]["content"][0]["url"]).is_absolute()  # resolved beside utils.py
    assert u.doc_to_visual(docs[0])[0].size == Image.open(messages[1]["content"][0]["url"]).size

    def answer(label: str) -> str:
        return json.dumps(
            {
                "scene": ".",
                "body": ".",
                "others": ".",
                "action_units": ".",
                "self_correction": ".",
                "label": label,
                "confidence": 0.8,
            }
        )

    # r1 (happy) answered "happiness" (a synonym) and, again, "bored" (outside the set: invalid);
    # r2 (sad) answered "sad": WAR 2/3, UAR (1/2 + 1) / 2, one invalid in three
    answers = [(docs[0], "happiness"), (docs[0], "bored"), (docs[1], "sad")]
    pairs = [u.process_results(doc, [answer(a)])["war"] for doc, a in answers]
    assert [p["pred"] for p in pairs] == ["happy", None, "sad"]
    assert u.aggregate_war(pairs) == pytest.approx(2 / 3)
    assert u.aggregate_uar(pairs) == pytest.approx(0.75)
    assert u.aggregate_invalid_rate(pairs) == pytest.approx(1 / 3)
    assert u.aggregate_macro_f1(pairs) == pytest.approx((2 / 3 + 1) / 2)


def test_refusals_are_one_line(tmp_path, astronaut_png):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    m = _manifest(tmp_path / "m.csv", [("r1", astronaut_png, "happy")])
    p = subprocess.run(
        [*SOVTP, "export", "lmms-eval", "dfew", "-o", tmp_path / "busy", "--data", m],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "not a sovtp lmms-eval export" in p.stderr
    assert (tmp_path / "busy" / "notes.txt").exists()
    bad = _manifest(tmp_path / "bad.csv", [("r1", astronaut_png, "bored")])
    p = subprocess.run(
        [*SOVTP, "export", "lmms-eval", "dfew", "-o", tmp_path / "t", "--data", bad],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "'bored'" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    (tmp_path / "a_file").write_text("mine")  # -o names a file: refused by name, kept
    p = subprocess.run(
        [*SOVTP, "export", "lmms-eval", "dfew", "-o", tmp_path / "a_file", "--data", m],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert f"{tmp_path / 'a_file'} exists and is a file; choose a folder" in p.stderr
    assert (tmp_path / "a_file").read_text() == "mine"


def test_the_command_exports_what_bench_would_run(tmp_path, astronaut_png):
    """`sovtp export lmms-eval` builds the run config bench builds: no --prompt means the
    evaluator's own prompt (pad: liveness/plain, as bench asks it), --prompt and --max-tokens
    reach the task, a prepare knob reaches the prompts."""
    for ev, label, extra, prompt, tokens in (
        ("pad", "bona_fide", [], "liveness/plain", 1024),
        ("dfew", "happy", ["-p", "ladder/plain", "--max-tokens", "64"], "ladder/plain", 64),
    ):
        m = _manifest(tmp_path / f"{ev}.csv", [("r1", astronaut_png, label)])
        out = tmp_path / ev
        argv = [*SOVTP, "export", "lmms-eval", ev, "--data", m, "-s", "uniform:1", "-o", out]
        p = subprocess.run([*argv, *extra], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        meta = json.loads((out / "sovtp_task.json").read_text())
        assert meta["prompt"] == prompt and meta["settings"]["sampling"] == "uniform:1", meta
        task = yaml.load((out / f"sovtp_{ev}.yaml").read_text(), Loader=_TaggedLoader)
        assert task["generation_kwargs"]["max_new_tokens"] == tokens, task


# -- lmms-eval itself --------------------------------------------------------------------------
def _lmms_python() -> Path:
    """A cached virtualenv with lmms-eval that sees this environment's packages."""
    venv = CACHE / f"lmms-eval-{LMMS_EVAL}-py{sys.version_info[0]}{sys.version_info[1]}"
    py = venv / "bin" / "python"
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    if not (venv / ".ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
        pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        _pth(venv, ours)  # so pip sees what is installed here and installs nothing twice
        steps = [
            [*pip, "--no-deps", f"lmms-eval=={LMMS_EVAL}"],
            [*pip, *LMMS_EXTRA],
            [*pip, "--no-deps", "--ignore-installed", FILELOCK],
        ]
        for cmd in steps:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if p.returncode != 0:
                pytest.skip(f"cannot install lmms-eval from the package index: {p.stderr[-300:]}")
        (venv / ".ready").write_text("ok")
    _pth(venv, ours)  # this checkout's environment may have moved since the cache was made
    return py


def _pth(venv: Path, dirs: list[str]) -> None:
    (sp,) = (venv / "lib").glob("python3*/site-packages")
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in dirs)
    (sp / "zz_sovtp_env.pth").write_text(lines)


def _pixels(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


@pytest.mark.slow
def test_lmms_eval_runs_the_export_and_scores_like_sovtp(exported, tmp_path):
    d, m, _ = exported
    py = _lmms_python()
    with FakeOpenAIServer(Behaviour(label="happy")) as srv:
        env = dict(
            os.environ,
            OPENAI_API_KEY="sk-test",
            HF_DATASETS_OFFLINE="1",
            HF_HUB_OFFLINE="1",
            HF_HOME=str(tmp_path / "hf"),
        )
        p = subprocess.run(
            [
                py,
                "-m",
                "lmms_eval",
                "--model",
                "openai",
                "--model_args",
                f"model_version=fake-vlm,base_url={srv.base_url}",
                "--include_path",
                d / "task",
                "--tasks",
                "sovtp_dfew",
                "--limit",
                "2",
                "--output_path",
                tmp_path / "lmms",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert p.returncode == 0, p.stderr[-3000:]
        lmms_sent = list(srv.state.requests)
        b = subprocess.run(
            [
                *SOVTP,
                "bench",
                m,
                "--evaluator",
                "dfew",
                "--base-url",
                srv.base_url,
                "--model",
                "fake-vlm",
                "-s",
                "uniform:1",
                "--limit",
                "2",
                "--no-check",
                "--no-response-cache",  # the session's cache may hold an answer: ask the server
                "--workers",
                "0",
                "-o",
                tmp_path / "run",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert b.returncode == 0, b.stderr[-3000:]
        bench_sent = srv.state.requests[len(lmms_sent) :]
    (results,) = (tmp_path / "lmms").rglob("*_results.json")
    got = json.loads(results.read_text())["results"]["sovtp_dfew"]
    s = subprocess.run(
        [*SOVTP, "score", tmp_path / "run", "--evaluator", "dfew", "--json", "--n-boot", "100"],
        capture_output=True,
        text=True,
        check=True,
    )
    want = json.loads(s.stdout)["systems"][0]["metrics"]
    for k in ("war", "uar", "macro_f1", "invalid_rate"):
        assert got[f"{k},none"] == pytest.approx(want[k]), k
    assert got["war,none"] == pytest.approx(0.5)  # happy right, sad answered happy

    # the same prompts reached the server: text identical, images the same pixels (lmms-eval
    # re-encodes sovtp's JPEG as PNG)
    def parts(body):
        user = body["messages"][-1]["content"]
        texts = [x["text"] for x in user if x["type"] == "text"]
        imgs = [_pixels(x["image_url"]["url"]) for x in user if x["type"] == "image_url"]
        return body["messages"][0], texts, imgs

    assert len(lmms_sent) == len(bench_sent) == 2
    for body in bench_sent:
        sys_b, texts_b, imgs_b = parts(body)
        match = [parts(x) for x in lmms_sent if parts(x)[1] == texts_b]
        assert len(match) == 1
        sys_l, _, imgs_l = match[0]
        assert sys_l["content"][0]["text"] == sys_b["content"]
        assert all(np.array_equal(a, c) for a, c in zip(imgs_b, imgs_l, strict=True))
