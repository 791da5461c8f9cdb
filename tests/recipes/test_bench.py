"""Benchmark runs end to end on real clips: one annotation pass, resume after a crash, the
response cache, several endpoints, per-face labels, failures as rows, reports, Ray."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sovtp.engine.config import BenchConfig, SystemSpec
from sovtp.errors import SovtpError
from sovtp.jsonl import iter_jsonl
from sovtp.recipes.bench import run_bench
from sovtp.testing import Behaviour, FakeOpenAIServer

VARIANTS = ["ladder/plain", "ladder/au_text", "sovtp/full"]


@pytest.fixture(scope="module")
def manifest(
    media_dir, astronaut_png_shared, two_faces_png_shared, no_face_png_shared, pan_mp4_shared
) -> Path:
    rows = [
        {"id": "astro", "media": astronaut_png_shared.name, "label": "happy"},
        {"id": "pan", "media": pan_mp4_shared.name, "label": "Happiness"},  # a synonym of the gold
        {"id": "coffee", "media": no_face_png_shared.name, "label": "neutral"},
        {"id": "pair", "media": two_faces_png_shared.name, "label": "sad", "scene": "two"},
        {"id": "gone", "media": "missing.mp4", "label": "sad"},
    ]
    p = media_dir / "bench.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def cfg(manifest: Path, out: Path, **kw) -> BenchConfig:
    base = dict(
        data=str(manifest),
        variants=VARIANTS,
        sampling="uniform:2",
        out=str(out),
        n_boot=100,
        gallery=2,
        max_faces=2,
    )
    return BenchConfig(**(base | kw))


def preds(run: Path) -> dict[str, dict]:
    return {r["key"]: r for r in iter_jsonl(run / "predictions.jsonl")}


def test_every_variant_shares_one_annotation_and_failures_become_rows(manifest, tmp_path):
    run, stats = run_bench(cfg(manifest, tmp_path / "r", annotation_cache=False))
    rows = preds(run)
    assert len(rows) == 5 * len(VARIANTS)
    # one detector pass per sample whatever the number of variants: 2 frames for the video
    assert stats.annotations == 4 and stats.detector_calls == 2 + 1 + 1 + 1
    gone = [r for r in rows.values() if r["sample_id"] == "gone"]
    assert len(gone) == 3 and all(r["error"] and r["label"] is None for r in gone)
    astro = rows["astro||facs|sovtp/full"]
    assert astro["label"] == "happy" and astro["gold"] == "happy" and astro["n_faces"] == 1
    assert rows["pan||facs|ladder/plain"]["gold"] == "happy"  # gold normalised by the label set
    assert rows["pair||facs|ladder/plain"]["meta"] == {"scene": "two"}
    from sovtp.report.build import build_report

    with open(run / "config.yaml", "a") as f:
        f.write("tier_by: scene\n")  # a manifest column as the difficulty tier
    tiers = build_report(run, n_boot=20)["scoring"]["systems"][0]["tiers"]
    assert tiers["two"]["n"] == 1 and tiers["None"]["n"] == 4
    man = json.loads((run / "manifest.json").read_text())
    assert man["variants"] == VARIANTS and set(man["prompts"]) == set(VARIANTS)
    assert (
        man["frames"]["pan"] == rows["pan||facs|sovtp/full"]["frames"]
        and len(man["frames"]["pan"]) == 2
    )
    assert "mediapipe" in man["versions"]
    assert len(list(iter_jsonl(run / "responses.jsonl"))) == len(rows)
    rep = json.loads((run / "report.json").read_text())
    assert [e["variant"] for e in rep["scoring"]["systems"]] == VARIANTS
    assert len(rep["scoring"]["comparisons"]) == 2
    assert (run / "report.md").read_text().startswith("# sovtp report")
    gal = list(iter_jsonl(run / "gallery.jsonl"))
    assert gal and all((run / g["image"]).exists() for g in gal)
    # the FACS reasoner reads text only: its gallery samples were asked the same text-only
    # prompt as the rest, their picture was drawn for the report, and nothing records an image
    # as sent to it (gallery samples got the image prompt with the image dropped)
    assert all(g["image_sent"] is False and "No image is attached" in g["prompt"] for g in gal)
    sent = list(iter_jsonl(run / "outgoing" / "index.jsonl"))
    assert sent and not [e for e in sent if e["images"]]
    assert "sent no image" in (run / "report.html").read_text()


def test_resume_after_a_crash_matches_an_uninterrupted_run(manifest, tmp_path):
    full, _ = run_bench(cfg(manifest, tmp_path / "full"), report=False)
    crashed = tmp_path / "crashed"
    shutil.copytree(full, crashed)
    lines = (crashed / "predictions.jsonl").read_text().splitlines(keepends=True)
    # a crash: 5 rows written, the 6th torn half-way
    (crashed / "predictions.jsonl").write_text("".join(lines[:5]) + lines[5][: len(lines[5]) // 2])
    with pytest.raises(Exception, match="--resume"):
        run_bench(cfg(manifest, crashed), report=False)
    run_bench(cfg(manifest, crashed), resume=True, report=False)
    a, b = preds(full), preds(crashed)
    keys = [r["key"] for r in iter_jsonl(crashed / "predictions.jsonl")]
    assert len(keys) == len(set(keys)) == len(a)  # nothing twice, nothing lost
    assert {k: r["label"] for k, r in a.items()} == {k: r["label"] for k, r in b.items()}
    for line in (crashed / "predictions.jsonl").read_text().splitlines():
        json.loads(line)  # the torn line is gone


def test_openai_endpoints_load_balanced_and_responses_cached(manifest, tmp_path):
    with (
        FakeOpenAIServer(Behaviour(latency_s=0.01)) as s1,
        FakeOpenAIServer(Behaviour(latency_s=0.01)) as s2,
    ):
        system = SystemSpec.parse(f"openai:fake-vlm@{s1.base_url},{s2.base_url}")
        c = cfg(manifest, tmp_path / "a", systems=[system])
        run, _ = run_bench(c, report=False)
        answered = [r for r in preds(run).values() if not r["error"]]
        assert len(answered) == 4 * len(VARIANTS) and all(r["label"] == "happy" for r in answered)
        n1, n2 = s1.state.count, s2.state.count
        assert n1 + n2 == len(answered) and n1 > 0 and n2 > 0
        body = s1.state.requests[0]
        assert body["model"] == "fake-vlm" and body["temperature"] == 0.0
        # a vision server's gallery pictures are the images it was sent (the FACS reasoner's
        # are drawn for the report only: see the test above)
        gal = list(iter_jsonl(run / "gallery.jsonl"))
        assert gal and all(g["image_sent"] is True for g in gal)
        # a second run of the same deterministic requests is served from the cache
        run2, _ = run_bench(c.model_copy(update={"out": str(tmp_path / "b")}), report=False)
        assert (s1.state.count, s2.state.count) == (n1, n2)
        again = [r for r in preds(run2).values() if not r["error"]]
        assert len(again) == len(answered) and all(r["cached"] for r in again)
        assert "api_key" not in (run / "config.yaml").read_text()


def test_per_face_labels_query_each_face(media_dir, two_faces_png, tmp_path):
    m = tmp_path / "faces.jsonl"
    rel = two_faces_png.relative_to(two_faces_png.parents[1])
    m.write_text(
        json.dumps(
            {
                "id": "pair",
                "media": str(rel),
                "label": "happy",
                "face_labels": {"1": "happy", "2": "sad"},
            }
        )
        + "\n"
    )
    run, _ = run_bench(
        cfg(m, tmp_path / "r", root=str(two_faces_png.parents[1]), variants=["sovtp/full"])
    )
    rows = sorted(preds(run).values(), key=lambda r: r["face_id"])
    assert [(r["face_id"], r["gold"]) for r in rows] == [(1, "happy"), (2, "sad")]
    rep = json.loads((run / "report.json").read_text())
    assert set(rep["scoring"]["systems"][0]["per_face"]) == {"face 1", "face 2"}


def test_dfew_tree_through_bench(tmp_path, astronaut_png, pan_mp4):
    from PIL import Image

    root = tmp_path / "DFEW"
    (root / "Clip/original").mkdir(parents=True)
    shutil.copy(pan_mp4, root / "Clip/original/00001.mp4")
    frames = root / "Clip/clip_224x224/00002"
    frames.mkdir(parents=True)
    for i in range(6):
        Image.open(astronaut_png).resize((224, 224)).save(frames / f"{i + 1:05d}.jpg")
    split = root / "EmoLabel_DataSplit/test(single-labeled)"
    split.mkdir(parents=True)
    (split / "set_1.csv").write_text("video_name,label\n1,1\n2,2\n")
    run, _ = run_bench(
        BenchConfig(
            data=f"dfew:{root}",
            evaluator="dfew",
            variants=["sovtp/full"],
            sampling="uniform:2",
            out=str(tmp_path / "run"),
            n_boot=50,
        )
    )
    rows = preds(run)
    assert {(r["sample_id"], r["gold"], r["fold"]) for r in rows.values()} == {
        ("00001", "happy", 1),
        ("00002", "sad", 1),
    }
    assert all(
        r["label"] in {"happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"}
        for r in rows.values()
    )


def test_report_html_renders_in_headless_chromium(manifest, tmp_path):
    import re

    run, _ = run_bench(cfg(manifest, tmp_path / "r"))
    html = (run / "report.html").read_text()
    # self-contained: nothing (script, image, style, font) is fetched from anywhere
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert not re.search(r"url\(\s*[\"']?(?:https?:)?//", html)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian `chromium` is not installed")
    out = subprocess.run(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            (run / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in out.stderr.splitlines() if "CONSOLE" in line]
    assert any("sovtp-report rendered=" in line for line in console), out.stderr[-2000:]
    assert not [line for line in console if "sovtp-report" not in line], console  # no errors
    rendered = int(re.search(r'data-rendered="(\d+)"', out.stdout).group(1))
    broken = int(re.search(r'data-broken="(\d+)"', out.stdout).group(1))
    # 2 bar charts + 3 confusion matrices + the gallery images, all drawn
    assert broken == 0 and rendered >= 5 + len(list(iter_jsonl(run / "gallery.jsonl")))


def test_cli_bench_report_compare_and_ablate(manifest, tmp_path):
    def sovtp(*args):
        return subprocess.run(
            [sys.executable, "-m", "sovtp", *map(str, args)], capture_output=True, text=True
        )

    a = tmp_path / "a"
    r = sovtp("bench", manifest, "-o", a, "-p", "ladder/plain", "-s", "uniform:1", "--limit", 2)
    assert r.returncode == 0, r.stderr
    assert "WAR" in r.stdout and (a / "report.html").exists()
    assert "…" not in r.stdout + r.stderr  # a pipe gets every word (no 80-column cut)
    assert len(list(iter_jsonl(a / "predictions.jsonl"))) == 2
    r = sovtp("bench", manifest, "-o", a)
    assert r.returncode == 2 and "--resume" in r.stderr
    b = tmp_path / "b"
    r = sovtp("ablate", manifest, "--grid", "boxes,au", "-o", b, "-s", "uniform:1", "--limit", 2)
    assert r.returncode == 0, r.stderr
    rep = json.loads((b / "report.json").read_text())
    assert [e["variant"] for e in rep["scoring"]["systems"]] == [
        "grid/none",
        "grid/au",
        "grid/boxes",
        "grid/boxes+au",
    ]
    assert (
        len(rep["scoring"]["comparisons"]) == 3 and (b / "prompts" / "grid_boxes+au.yaml").exists()
    )
    (a / "report.html").unlink()
    assert sovtp("report", a).returncode == 0
    assert (a / "report.html").exists()
    r = sovtp("compare", a, b, "-o", tmp_path / "cmp.md")
    assert r.returncode == 0 and (tmp_path / "cmp.md").read_text().count("\n") == 2 + 1 + 4


def test_reasoning_scores_offline_and_by_an_llm_judge(tmp_path):
    from sovtp.backends.base import get_backend
    from sovtp.scoring.reasoning import offline_scores, score_rows

    s = offline_scores(
        "Happy: AU6 and AU12, a broad smile.", "She smiles broadly (AU12) and is joyful."
    )
    assert s["label_overlap"] == 10.0 and 0 < s["clue_overlap"] < 10
    assert offline_scores("angry frown", "joyful smile")["label_overlap"] == 0.0
    rows = [
        {
            "key": f"k{i}",
            "system": "m",
            "variant": "v",
            "rationale": "a smile, AU12",
            "description": "smiling (AU12), happy",
        }
        for i in range(3)
    ]
    with FakeOpenAIServer(Behaviour(content='{"score": 7, "clues_matched": ["AU12"]}')) as srv:
        res = score_rows(rows, "llm", get_backend("openai", base_url=srv.base_url))
        assert srv.state.count == 6  # clue + label overlap per row
        prompt = srv.state.requests[0]["messages"][0]["content"][0]["text"]
        assert "smiling (AU12), happy" in prompt and "a smile, AU12" in prompt
        again = score_rows(rows, "llm", get_backend("openai", base_url=srv.base_url))
        assert srv.state.count == 6 and again["scores"] == res["scores"]  # cached verdicts
    assert res["method"] == "llm"
    assert res["scores"]["m · v"] == {
        "clue_overlap (mean of 3)": 7.0,
        "label_overlap (mean of 3)": 7.0,
    }
    assert score_rows(rows)["method"] == "offline"


def test_ray_engine_writes_the_same_predictions(manifest, tmp_path):
    pytest.importorskip("ray")
    local, _ = run_bench(cfg(manifest, tmp_path / "local", variants=VARIANTS[:2]), report=False)
    ray_run, _ = run_bench(
        cfg(manifest, tmp_path / "ray", variants=VARIANTS[:2], engine="ray"), report=False
    )
    a, b = preds(local), preds(ray_run)
    assert set(a) == set(b)
    for k in a:
        assert (
            a[k]["label"],
            a[k]["gold"],
            a[k]["parse_status"],
            a[k]["n_faces"] if not a[k]["error"] else None,
        ) == (
            b[k]["label"],
            b[k]["gold"],
            b[k]["parse_status"],
            b[k]["n_faces"] if not b[k]["error"] else None,
        )


def test_deemo_run_scores_reasoning_offline_and_reports_it(tmp_path, pan_mp4):
    root = tmp_path / "DEEMO"
    (root / "videos").mkdir(parents=True)
    (root / "annotations").mkdir()
    shutil.copy(pan_mp4, root / "videos" / "d1.mp4")
    (root / "annotations" / "test.jsonl").write_text(
        json.dumps(
            {
                "id": "d1",
                "emotion": "happy",
                "description": "She smiles (AU12 lip corner puller); she is happy.",
            }
        )
        + "\n"
    )
    run, _ = run_bench(
        BenchConfig(
            data=f"deemo:{root}",
            evaluator="deemo",
            variants=["sovtp/full"],
            sampling="uniform:2",
            out=str(tmp_path / "run"),
            n_boot=20,
        )
    )
    res = json.loads((run / "reasoning.json").read_text())
    assert res["method"] == "offline"
    (scores,) = res["scores"].values()
    assert scores["label_overlap (mean of 1)"] == 10.0  # the FACS reasoner says happiness too
    assert "Reasoning scores" in (run / "report.html").read_text()
    assert json.loads((run / "report.json").read_text())["reasoning"]["method"] == "offline"


def test_a_server_given_without_model_is_named_by_its_model_as_query_names_it(manifest, tmp_path):
    """`bench --base-url URL` without --model named its rows `openai`, while `sovtp query` on the
    same server named them `openai:fake-vlm`: one system, two names in one study. The served
    model names it (its last path part), in the rows and in config.yaml."""
    from sovtp.systems import system_name

    with FakeOpenAIServer(Behaviour(model="org/fake-vlm")) as srv:
        c = cfg(manifest, tmp_path / "r", systems=[SystemSpec.parse(f"openai@{srv.base_url}")])
        run, _ = run_bench(c, report=False)
    assert {r["system"] for r in preds(run).values()} == {"openai:fake-vlm"}
    assert system_name("openai", "org/fake-vlm") == "openai:fake-vlm"  # what query writes
    saved = yaml.safe_load((run / "config.yaml").read_text())["systems"]
    assert [(x["name"], x["options"]["model"]) for x in saved] == [
        ("openai:fake-vlm", "org/fake-vlm")
    ]


def test_a_run_named_openai_before_served_names_still_resumes(manifest, tmp_path, monkeypatch):
    """A run made without --model before systems were named by their served model holds rows
    under `openai`; its resume (the same command) was refused as 'systems: openai removed',
    naming a setting no command can give. It keeps its name."""
    import sovtp.recipes.bench as rb

    with FakeOpenAIServer(Behaviour()) as srv:
        c = cfg(manifest, tmp_path / "r", systems=[SystemSpec.parse(f"openai@{srv.base_url}")])
        with monkeypatch.context() as m:  # the naming of then: the backend alone
            m.setattr(rb, "name_served_models", lambda cfg, keep=(): cfg)
            run_bench(c.model_copy(update={"limit": 2}), report=False)
        assert {r["system"] for r in preds(tmp_path / "r").values()} == {"openai"}
        with pytest.raises(SovtpError, match="would change"):  # another limit is another run
            run_bench(c, resume=True, report=False)
        _, stats = run_bench(c.model_copy(update={"limit": 2}), resume=True, report=False)
    assert stats.errors == 0 and {r["system"] for r in preds(tmp_path / "r").values()} == {"openai"}


def test_two_systems_of_one_name_are_refused(manifest, tmp_path):
    """Two servers serving models of one last path part (org/x, other/x) were both written as
    openai:x: one row per key, the second server's answers silently won. Refused, both named."""
    from sovtp.errors import SovtpError

    with (
        FakeOpenAIServer(Behaviour(model="org/x")) as s1,
        FakeOpenAIServer(Behaviour(model="other/x")) as s2,
    ):
        two = [SystemSpec.parse(f"openai@{s.base_url}") for s in (s1, s2)]
        with pytest.raises(SovtpError, match="both named 'openai:x'") as e:
            run_bench(cfg(manifest, tmp_path / "r", systems=two))
    assert s1.base_url in str(e.value) and s2.base_url in str(e.value)
    assert not (tmp_path / "r" / "predictions.jsonl").exists()


def test_a_server_that_is_down_is_a_clear_error(manifest, tmp_path):
    import socket

    from sovtp.errors import BackendError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(BackendError, match="cannot list models"):
        run_bench(cfg(manifest, tmp_path / "r", systems=[SystemSpec.parse(f"openai@{url}")]))


def test_cli_ablate_takes_a_list_of_variants_with_bench_options(manifest, tmp_path):
    out = tmp_path / "list"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sovtp",
            "ablate",
            str(manifest),
            "-p",
            "ladder/plain",
            "-p",
            "sovtp/full",
            "-o",
            str(out),
            "-s",
            "uniform:1",
            "--limit",
            "2",
            "--no-pose",
            "--tier-by",
            "scene",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    (c,) = rep["scoring"]["comparisons"]
    assert (c["a"]["variant"], c["b"]["variant"]) == ("ladder/plain", "sovtp/full")


def test_evaluator_refuses_a_split_or_fold_the_benchmark_does_not_have(tmp_path):
    from sovtp.errors import SovtpError

    with pytest.raises(SovtpError, match="no fold 9"):
        run_bench(
            BenchConfig(data=f"dfew:{tmp_path}", evaluator="dfew", fold=9, out=str(tmp_path / "r"))
        )
    with pytest.raises(SovtpError, match="no split 'dev'"):
        run_bench(
            BenchConfig(
                data=f"dfew:{tmp_path}", evaluator="dfew", split="dev", out=str(tmp_path / "r")
            )
        )


def test_fields_added_later_leave_an_older_runs_identity_unchanged(tmp_path):
    """A run folder made before --tta/--hands existed still resumes: at their defaults those
    fields are not part of the identity; set, they are (a changed setting is refused)."""
    from sovtp.engine.config import LATER_FIELDS, run_identity
    from sovtp.labels import load_label_set

    ls = load_label_set("basic7")
    base = BenchConfig(data=str(tmp_path / "m.csv"), out=str(tmp_path / "r"))
    settings = run_identity(base, ls)["settings"]
    assert not set(LATER_FIELDS) & set(settings)
    on = run_identity(base.model_copy(update={"hands": True}), ls)
    assert on["settings"]["hands"] is True and on["detector"]["hands"] is True


def test_without_a_prompt_a_run_asks_the_evaluators_own(tmp_path):
    """`sovtp bench DATA --evaluator bah` asks bah/definition (the evaluator's prompt), not the
    emotion prompt; --prompt still wins, and no evaluator means sovtp/full."""
    from sovtp.cli.bench import build_config

    given = {"data": str(tmp_path / "m.csv"), "out": str(tmp_path / "r")}
    assert build_config(None, {**given, "evaluator": "bah"}).variants == ["bah/definition"]
    assert build_config(None, {**given, "evaluator": "physio_va"}).variants == ["physio/valence"]
    assert build_config(
        None, {**given, "evaluator": "bah", "variants": ["sovtp/full"]}
    ).variants == ["sovtp/full"]
    assert build_config(None, given).variants == ["sovtp/full"]


def test_a_missing_checkpoint_is_refused_before_any_work(tmp_path):
    from sovtp.errors import SovtpError

    c = BenchConfig(
        data=str(tmp_path / "m.csv"),
        out=str(tmp_path / "r"),
        systems=[SystemSpec.parse(f"cnn:{tmp_path / 'nope'}")],
    )
    (tmp_path / "m.csv").write_text("id,media,label\na,x.png,happy\n")
    with pytest.raises(SovtpError, match="no checkpoint at .*nope/last"):
        run_bench(c)
    assert not (tmp_path / "r" / "predictions.jsonl").exists()
