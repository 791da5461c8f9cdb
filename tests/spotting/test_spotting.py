"""Micro-expression spotting: the optical-flow spotter on synthetic clips of a real face with a
known micro-expression, the "when" answer parser, the ME adapters, and both end to end through
the MEGC interval metrics."""

from __future__ import annotations

import csv
import functools

import numpy as np
import pytest
from PIL import Image

from sovtp.data.me_adapters import casme2_videos, gold_spans, mmme, read_rows, samm
from sovtp.media.sample import astronaut
from sovtp.scoring import registry as R
from sovtp.scoring.tasks import iou, spot_video, spotting_scores
from sovtp.spotting.flow import (
    FlowConfig,
    LandmarkTrack,
    find_intervals,
    similarity,
    spot_clip,
    spot_media,
)
from sovtp.spotting.parse import parse_when, to_frames, when_prediction, when_schema
from sovtp.types import ClipAnnotation, Frame

FPS = 20.0  # default ME length 0.4 s → 9 frames, k = 4
ON, OFF = 20, 26  # the micro-expression, frames inclusive, apex 23
# (x, y) in the 320×320 crop of the astronaut below, and the direction each point moves:
# mouth corners out and up, brows up (MediaPipe's landmarks 61, 291, 105, 334 on this image)
WARPS = (((122, 139), (-1, -1)), ((164, 141), (1, -1)), ((117, 87), (0, -1)), ((174, 90), (0, -1)))


@functools.lru_cache(maxsize=4)
def me_clip(n: int = 60, warp: bool = True, amp: float = 3.0) -> tuple[np.ndarray, ...]:
    """The astronaut's face drifting slowly (a steady slide plus a sway), and — when ``warp`` — a
    local warp of mouth corners and brows that rises over frames 20–23 and falls back by 26."""
    import cv2

    img = astronaut()[0:320, 80:400].copy()
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    apex, half = (ON + OFF) / 2, (OFF - ON) / 2 + 1
    frames = []
    for t in range(n):
        a = max(0.0, 1 - abs(t - apex) / half) if warp and ON <= t <= OFF else 0.0
        mx, my = xx.copy(), yy.copy()
        for (cx, cy), (vx, vy) in WARPS:
            g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 7.0**2))
            mx -= a * amp * vx * g
            my -= a * amp * vy * g
        im = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        dx = 0.3 * t + 4.0 * np.sin(2 * np.pi * t / n)
        dy = 2.0 * np.sin(2 * np.pi * t / (0.7 * n))
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        frames.append(cv2.warpAffine(im, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    return tuple(frames)


@pytest.fixture(scope="module")
def face_detector():
    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

    with MediaPipeAnnotator(DetectorConfig(pose=False)) as det:
        yield det


@pytest.fixture(scope="module")
def clips(face_detector):
    """The two synthetic clips, annotated by MediaPipe frame by frame (the real path)."""
    from sovtp.annotate.pipeline import annotate_frames

    out = {}
    for name, warp in (("me", True), ("drift", False)):
        frames = [Frame(i, i / FPS, im) for i, im in enumerate(me_clip(warp=warp))]
        anns = annotate_frames(frames, face_detector)
        out[name] = (ClipAnnotation(name, "0" * 64, "all", anns), frames)
    return out


# ------------------------------------------------------------------------- the flow spotter


def test_flow_spotter_finds_the_micro_expression(clips):
    clip, frames = clips["me"]
    res = spot_clip(clip, frames, FPS)
    assert len(res.intervals) == 1, res.intervals
    assert iou(res.intervals[0], (ON, OFF)) >= 0.5
    assert ON <= res.peaks[0] <= OFF
    assert res.region_at(res.peaks[0]) in ("mouth", "brow_left", "brow_right", "nose")
    s = spotting_scores(spot_video(res.intervals, [(ON, OFF, None)]))
    assert s["spot_f1"] == 1.0
    fb = spot_clip(clip, frames, FPS, FlowConfig(method="farneback"))
    assert iou(fb.intervals[0], (ON, OFF)) >= 0.5


def test_head_drift_is_taken_out_by_the_nose_root(clips):
    me = spot_clip(*clips["me"], FPS)
    drift = spot_clip(*clips["drift"], FPS)
    # drift alone: far below the micro-expression's peak ...
    assert drift.signal.max() < 0.25 * me.signal.max()
    # ... because the nose root's flow is subtracted: without it the sway looks like motion
    from sovtp.spotting.flow import spot_frames, subject_track

    clip, frames = clips["drift"]
    raw = spot_frames(
        ((f.index, f.image) for f in frames), subject_track(clip), FPS, stabilise=False
    )
    assert raw.signal.max() > 0.5 * me.signal.max()
    # an absolute floor keeps a quiet video quiet (the relative threshold alone always fires)
    assert spot_clip(*clips["drift"], FPS, FlowConfig(min_height=0.4)).intervals == []


def test_threshold_and_intervals_follow_the_megc_rule():
    sig = np.zeros(40)
    sig[10], sig[30] = 1.0, 0.45  # mean 0.03625: threshold at p=0.5 is 0.518
    cfg = FlowConfig(p=0.5)
    ivs, peaks, thr = find_intervals(sig, list(range(100, 140)), FPS, cfg)
    assert thr == pytest.approx(sig.mean() + 0.5 * (1.0 - sig.mean()))
    assert peaks == [110] and ivs == [(106, 114, None)]  # length 9 at 20 fps, apex centred
    ivs, peaks, _ = find_intervals(sig, list(range(40)), FPS, FlowConfig(p=0.3))
    assert peaks == [10, 30] and ivs[1] == (26, 34, None)
    ivs, _, _ = find_intervals(sig, list(range(40)), 200.0, FlowConfig(p=0.3))
    assert ivs[0] == (0, 39, None)  # 81 frames at 200 fps, clipped to the video


def test_similarity_and_interpolated_landmarks():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (10, 2))
    a = np.deg2rad(12)
    true = np.array(
        [[1.3 * np.cos(a), -1.3 * np.sin(a), 5.0], [1.3 * np.sin(a), 1.3 * np.cos(a), -7]]
    )
    dst = src @ true[:, :2].T + true[:, 2]
    assert np.allclose(similarity(src, dst), true, atol=1e-9)
    # landmarks every 5th frame, moving linearly: interpolated exactly in between
    base = rng.uniform(100, 200, (478, 2))
    known = {i: base + [0.5 * i, 0.2 * i] for i in range(0, 50, 5)}
    tr = LandmarkTrack(known, window=1)
    assert np.allclose(tr.stable_at(12), tr.stable[0] + [6.0, 2.4])


# ------------------------------------------------------------------------------ the parser


def test_when_parser_on_hand_written_answers():
    ok = parse_when('{"intervals": [{"start": 3, "end": 5, "label": "happy"}]}', 12, "casme2_4")
    assert ok.status == "ok" and ok.intervals == [(3, 5, "positive")]
    assert parse_when('{"intervals": []}', 12).status == "ok"
    fenced = 'Here you go:\n```json\n{"intervals": [{"start": 9, "end": 7}]}\n```'
    r = parse_when(fenced, 12)
    assert r.status == "repaired" and r.intervals == [(7, 9, None)]  # swapped
    prose = parse_when("The lip corners twitch in frames 3-5, and the brows in frame 9.", 12)
    assert prose.status == "repaired" and prose.intervals == [(3, 5, None), (9, 9, None)]
    assert parse_when("Pairs: [2, 4] and [10,11]", 12).intervals == [(2, 4, None), (10, 11, None)]
    none = parse_when("No expression is visible in these frames.", 12)
    assert none.status == "repaired" and none.intervals == []
    assert parse_when("The person looks calm and attentive.", 12).status == "invalid"
    assert parse_when('{"label": "happy"}', 12).status == "invalid"
    clipped = parse_when('{"intervals": [[0, 20], [30, 31]]}', 12)
    assert clipped.status == "repaired" and clipped.intervals == [(1, 12, None)]
    odd = parse_when('{"intervals": [{"start": 2, "end": 3, "label": "bored"}]}', 12, "casme2_4")
    assert odd.status == "repaired" and odd.intervals == [(2, 3, None)]
    schema = when_schema(["positive", "negative"])
    assert schema["properties"]["intervals"]["items"]["required"] == ["start", "end", "label"]


def test_image_numbers_map_to_video_frames():
    fi = [0, 5, 10, 15]
    # image 2 starts at frame 5; an interval ending on image 3 lasts until image 4's frame
    assert to_frames([(2, 3, None)], fi) == [(5, 14, None)]
    assert to_frames([(4, 4, "positive")], fi) == [(15, 15, "positive")]
    p = when_prediction("v1", '{"intervals": [{"start": 1, "end": 2}]}', fi, gold=[(0, 8, None)])
    assert p.intervals == [(0.0, 9.0, None)] and p.parse_status == "ok"
    assert p.gold_intervals == [(0, 8, None)]


# ---------------------------------------------------------------------------- the adapters


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def test_spreadsheet_rows_skip_title_lines(tmp_path):
    f = tmp_path / "a.csv"
    _write(
        f, [["SAMM long videos v3"], [], ["Subject", "Onset Frame", "Type"], ["6", "10", "Micro"]]
    )
    assert read_rows(f) == [{"subject": "6", "onsetframe": "10", "type": "Micro"}]


def test_casme2_and_mmme_layouts(tmp_path):
    cas = tmp_path / "CASME_sq"
    (cas / "rawvideo/s15").mkdir(parents=True)
    (cas / "rawvideo/s15/15_0101disgustingteeth.avi").write_bytes(b"")
    _write(
        cas / "annotations.csv",
        [
            ["subject", "video", "onset", "apex", "offset", "aus", "emotion", "type"],
            ["15", "0101", "100", "105", "0", "4", "disgust", "micro-expression"],
            ["15", "0101", "10", "20", "40", "12", "happiness", "macro-expression"],
            ["15", "0999", "1", "2", "3", "", "x", "micro-expression"],  # no such video: skipped
        ],
    )
    (v,) = list(casme2_videos(cas))
    assert v.id == "s15_0101" and v.subject == "s15" and v.meta["fps"] == 30.0
    assert gold_spans(v) == [(99.0, 104.0, "disgust")]  # 1-based → 0-based; offset 0 = apex
    assert gold_spans(v, None, labels="casme2_4") == [
        (9.0, 39.0, "positive"),
        (99.0, 104.0, "negative"),
    ]
    mm = tmp_path / "MMME"
    (mm / "video/S01").mkdir(parents=True)
    (mm / "video/S01/T3.mp4").write_bytes(b"")
    (mm / "physio/S01").mkdir(parents=True)
    (mm / "physio/S01/T3.csv").write_text("time,PPG\n0,1\n0.01,2\n")
    _write(
        mm / "annotations.csv",
        [
            ["subject", "trial", "onset", "apex", "offset", "type", "emotion", "fps"],
            ["S01", "T3", "50", "55", "61", "micro", "fear", "90"],
        ],
    )
    (m,) = list(mmme(mm))
    assert m.id == "S01_T3" and m.meta["fps"] == 90.0 and m.meta["physio"].endswith("T3.csv")
    assert gold_spans(m) == [(49.0, 60.0, "fear")]


# ------------------------------------------------------------------------------ end to end


def test_end_to_end_on_a_samm_layout(tmp_path, face_detector):
    """A miniature SAMM-LV tree (frame folders named as SAMM names them, the spreadsheet with
    its title rows) → adapter → MediaPipe on 8 sampled frames → flow spotter over every frame
    → interval F1; and a hand-written LLM "when" answer → STRS."""
    from sovtp.annotate.pipeline import annotate
    from sovtp.scoring.registry import IntervalData

    root = tmp_path / "SAMM_longvideos"
    for vid, warp in (("006_1", True), ("006_2", False)):
        d = root / "rawvideo" / vid
        d.mkdir(parents=True)
        for i, im in enumerate(me_clip(warp=warp)[: 60 if warp else 36]):
            Image.fromarray(im).save(d / f"{vid}_{i + 1:04d}.jpg", quality=95)
    _write(
        root / "annotations.csv",
        [
            ["SAMM Long Videos - release 3"],
            [],
            [
                "Subject",
                "Filename",
                "Inducement Code",
                "Onset",
                "Apex",
                "Offset",
                "Duration",
                "Type",
                "Action Units",
                "Notes",
                "Estimated Emotion",
            ],
            [
                "006",
                "006_1_1",
                "1",
                str(ON + 1),
                "24",
                str(OFF + 1),
                "7",
                "Micro - 1/2",
                "R12+L12",
                "",
                "Happiness",
            ],
            ["006", "006_2_1", "2", "5", "20", "50", "46", "Macro", "R12", "", "Happiness"],
        ],
    )
    samples = list(samm(root, fps=FPS))
    assert [s.id for s in samples] == ["006_1", "006_2"]
    videos = []
    for s in samples:
        clip, _ = annotate(s.media, "uniform:8", detector=face_detector, cache=False)
        res = spot_media(s.media, clip, s.meta["fps"], FlowConfig(min_height=0.4))
        videos.append((res.intervals, gold_spans(s)))
    assert videos[0][1] == [(float(ON), float(OFF), "happiness")]
    assert videos[1][1] == []  # a macro-expression is not a micro one
    flow = IntervalData(videos)
    assert R.evaluate("intervals", ["spot_f1", "spot_precision", "spot_recall"], flow) == {
        "spot_f1": 1.0,
        "spot_precision": 1.0,
        "spot_recall": 1.0,
    }
    # the LLM path: 20 images, every 3rd frame; it answers images 8-9 (frames 21..26)
    fi = list(range(0, 60, 3))
    ans = '{"intervals": [{"start": 8, "end": 9, "label": "happy"}]}'
    llm = [
        when_prediction(s.id, ans if s.id == "006_1" else '{"intervals": []}', fi, "casme2_4")
        for s in samples
    ]
    data = IntervalData(
        [
            (p.intervals, gold_spans(s, labels="casme2_4"))
            for p, s in zip(llm, samples, strict=True)
        ],
        labels=["positive", "negative", "surprise", "others"],
    )
    assert data.scores()["spot_f1"] == 1.0 and data.scores()["strs"] == 1.0


# ------------------------------------------------------------------- `sovtp spot`, the driver


def _spot_app():
    """The command as the integrator registers it (``app.command("spot")(spot_cmd)``)."""
    import typer

    from sovtp.cli.spot import spot_cmd

    app = typer.Typer()
    app.command("spot")(spot_cmd)
    app.command("noop", hidden=True)(lambda: None)  # two commands: "spot" stays a subcommand
    return app


@pytest.fixture(scope="module")
def casme2_root(tmp_path_factory):
    """A miniature CAS(ME)² tree: s15's video holds the micro-expression (frames ON..OFF, the
    annotation numbering frames from 1); s16's video only drifts and has a macro-expression
    row, so its micro ground truth is empty."""
    from sovtp.media.sample import write_video

    root = tmp_path_factory.mktemp("spot") / "CASME_sq"
    for subj, code, warp in (("15", "0101happy", True), ("16", "0102calm", False)):
        d = root / "rawvideo" / f"s{subj}"
        d.mkdir(parents=True)
        frames = list(me_clip(warp=warp))[: 60 if warp else 24]
        write_video(
            d / f"{subj}_{code}.avi", frames, fps=int(FPS), codec="mjpeg", pix_fmt="yuvj420p"
        )
    _write(
        root / "annotations.csv",
        [
            ["subject", "video", "onset", "apex", "offset", "aus", "emotion", "type"],
            ["15", "0101", str(ON + 1), "24", str(OFF + 1), "12", "happiness", "micro-expression"],
            ["16", "0102", "5", "12", "20", "12", "happiness", "macro-expression"],  # within its 24
        ],
    )
    return root


def _hand_scores(rows):
    """MEGC spotting counts recomputed here, independently of sovtp.scoring: inclusive frame
    IoU >= 0.5, each ground truth matched once (greedy by IoU), counts summed over videos."""
    tp = fp = fn = 0
    for r in rows:
        pred, gold = r["intervals"], r["gold_intervals"]
        pairs = []
        for i, (a, b, *_) in enumerate(pred):
            for j, (c, d, *_) in enumerate(gold):
                inter = min(b, d) - max(a, c) + 1
                union = (b - a + 1) + (d - c + 1) - max(inter, 0)
                if inter > 0 and inter / union >= 0.5:
                    pairs.append((inter / union, i, j))
        used_i, used_j = set(), set()
        for _, i, j in sorted(pairs, reverse=True):
            if i not in used_i and j not in used_j:
                used_i.add(i)
                used_j.add(j)
        tp += len(used_i)
        fp += len(pred) - len(used_i)
        fn += len(gold) - len(used_j)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "spot_precision": p,
        "spot_recall": r,
        "spot_f1": 2 * p * r / (p + r) if p + r else 0.0,
    }


def _rows(run):
    import json

    return [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]


def test_spot_cli_flow_on_a_casme2_layout(casme2_root, tmp_path):
    """`sovtp spot casme2_spot:ROOT --system flow`: the adapter opens through open_dataset, the
    flow spotter finds the known interval (F1 = 1), the report's metrics equal a hand
    recomputation from predictions.jsonl, and --resume skips what is done."""
    import json

    from typer.testing import CliRunner

    run = tmp_path / "run"
    args = [
        "spot",
        f"casme2_spot:{casme2_root}",
        "-o",
        str(run),
        "--system",
        "flow",
        "--sampling",
        "uniform:8",
        "--min-height",
        "0.4",
        "--n-boot",
        "50",
    ]
    res = CliRunner().invoke(_spot_app(), args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    rows = _rows(run)
    assert sorted(r["sample_id"] for r in rows) == ["s15_0101", "s16_0102"]
    by = {r["sample_id"]: r for r in rows}
    assert by["s15_0101"]["gold_intervals"] == [[ON, OFF, "positive"]]  # 1-based → 0-based
    assert by["s16_0102"]["gold_intervals"] == []  # macro only: not scored as micro
    assert by["s15_0101"]["fps"] == 30.0  # the dataset's rate (CAS(ME)² is 30 fps)
    hand = _hand_scores(rows)
    assert hand["spot_f1"] == 1.0 and hand["tp"] == 1
    rep = json.loads((run / "report.json").read_text())
    assert rep["evaluator"] == "casme2_spot" and rep["scoring"]["task"] == "intervals"
    (e,) = rep["scoring"]["systems"]
    assert (e["system"], e["variant"], e["n"]) == ("flow", "dis", 2)
    for k, v in hand.items():
        assert e["metrics"][k] == pytest.approx(v), k
    assert e["metrics"]["strs"] == 0.0  # the flow baseline names no emotion
    assert "render_error" not in rep  # report.md and report.html are drawn for intervals too
    assert "spot_f1" in (run / "report.md").read_text()
    assert "<svg" in (run / "report.html").read_text()  # the headline metric's bars
    gold = [json.loads(x) for x in (run / "gold.jsonl").read_text().splitlines()]
    assert {g["video"]: g["intervals"] for g in gold}["s15_0101"] == [[ON, OFF, "positive"]]
    # the files `sovtp score --task intervals RUN/predictions.jsonl --gold RUN/gold.jsonl` reads
    from sovtp.scoring.external_tasks import interval_rows

    ext, _ = interval_rows(run / "predictions.jsonl", run / "gold.jsonl")
    assert _hand_scores(ext) == hand
    man = json.loads((run / "manifest.json").read_text())
    assert man["flow"]["min_height"] == 0.4 and man["labels"]["name"] == "casme2_4"
    again = CliRunner().invoke(_spot_app(), [*args, "--resume"])
    assert again.exit_code == 0, again.output
    assert "0 new, 2 resumed" in again.output
    assert len(_rows(run)) == 2
    # a resume with a setting that changes the answers is refused, naming it
    changed = CliRunner().invoke(_spot_app(), [*args, "--resume", "--p", "0.9"])
    assert changed.exit_code != 0 and "flow.p: 0.5 → 0.9" in str(changed.exception)
    assert len(_rows(run)) == 2


def _when_options(root, out, url: str, **kw):
    """The "when" system asked of a loopback server over a CAS(ME)² tree, one window a video."""
    from sovtp.recipes.spot import SpotOptions

    base = dict(system="spotting/when", backend="openai", fps=FPS, window_s=0)
    return SpotOptions(f"casme2_spot:{root}", out, backend_options={"base_url": url}, **(base | kw))


def test_spot_llm_when_answer_from_a_loopback_server(casme2_root, tmp_path, face_detector):
    """An LLM system: 16 frames of the whole video sent to an OpenAI-compatible server with
    the "when" schema as the constraint; its answer (images 6-7, "happy") parsed, mapped to
    frames 20..27 and scored: spot F1 = STRS = 1."""
    import json

    from sovtp.recipes.spot import run_spot
    from sovtp.testing import Behaviour, FakeOpenAIServer

    answer = '{"intervals": [{"start": 6, "end": 7, "label": "happy"}]}'
    # a served model with a path: named by its last part, as query and bench name it
    with FakeOpenAIServer(Behaviour(content=answer, model="org/fake-vlm")) as srv:
        opts = _when_options(casme2_root, tmp_path / "llm", srv.base_url, split="s15", n_boot=50)
        out = run_spot(opts, detector=face_detector)
        bodies = list(srv.state.requests)
    run = out.out
    assert (out.written, out.errors) == (1, 0)
    (body,) = [b for b in bodies if "messages" in b]
    sent = [
        p
        for m in body["messages"]
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == "image_url"
    ]
    assert len(sent) == 16
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["intervals"]["items"]["properties"]["label"]["enum"] == [
        "positive",
        "negative",
        "surprise",
        "others",
    ]
    # 16 images spread over frames 0..59: image k shows frame round((k-1)·59/15)
    (row,) = _rows(run)
    resp = json.loads((run / "responses.jsonl").read_text().splitlines()[0])
    assert resp["windows"][0]["frames"][5:8] == [20, 24, 28]
    # image 6 starts at frame 20; the interval ends just before image 8's frame (28)
    assert row["intervals"] == [[20, 27, "positive"]] and row["parse_status"] == "ok"
    assert row["system"] == "openai:fake-vlm" and row["variant"] == "spotting/when"
    rep = json.loads((run / "report.json").read_text())
    (e,) = rep["scoring"]["systems"]
    assert e["metrics"]["spot_f1"] == 1.0 and e["metrics"]["strs"] == 1.0
    assert _hand_scores([row])["spot_f1"] == 1.0


def test_spot_with_no_parseable_answer_exits_4_with_the_likely_cause(casme2_root, tmp_path):
    """A server that answers prose to the "when" schema: the row is an answer that cannot be
    read, not a success — spot printed "errors 0" and exited 0 before."""
    from typer.testing import CliRunner

    from sovtp.testing import Behaviour, FakeOpenAIServer

    prose = "I think there might be an expression somewhere in the middle of the video."
    with FakeOpenAIServer(Behaviour(content=prose)) as srv:
        args = [
            "spot",
            f"casme2_spot:{casme2_root}",
            "-o",
            str(tmp_path / "r"),
            "--system",
            "spotting/when",
            "--base-url",
            srv.base_url,
            "--split",
            "s15",
            "--fps",
            str(FPS),
            "--window",
            "0",
            "--n-boot",
            "20",
        ]
        res = CliRunner().invoke(_spot_app(), args)
    assert res.exit_code == 4, res.output + repr(res.exception)
    assert "0 valid answers, 1 invalid answers" in res.output
    assert "no valid answer" in res.output and "--no-structured" in res.output


def test_an_error_row_before_any_answer_names_the_system_as_the_answers_do(casme2_root, tmp_path):
    """s15's video unreadable, s16's answered: the error row, written before any answer, was
    `openai` and the answered one `openai:x` — one system, two names, and the report build
    failed on the mixture. The served model names it before any row."""
    import shutil

    from sovtp.recipes.spot import run_spot
    from sovtp.testing import Behaviour, FakeOpenAIServer

    root = tmp_path / "CASME_sq"
    shutil.copytree(casme2_root, root)
    (root / "rawvideo" / "s15" / "15_0101happy.avi").write_bytes(b"")
    answer = '{"intervals": []}'
    with FakeOpenAIServer(Behaviour(content=answer, model="org/x")) as srv:
        opts = _when_options(root, tmp_path / "r", srv.base_url, n_boot=20)
        out = run_spot(opts)
    rows = _rows(out.out)
    assert sorted(bool(r.get("error")) for r in rows) == [False, True], rows
    assert {r["system"] for r in rows} == {"openai:x"}
    assert (out.out / "report.md").exists()


def test_spot_refuses_the_offline_reasoner_and_a_label_task(casme2_root, tmp_path):
    from sovtp.errors import SovtpError
    from sovtp.recipes.spot import SpotOptions, run_spot

    with pytest.raises(SovtpError, match="cannot answer 'when'"):
        run_spot(SpotOptions(f"casme2_spot:{casme2_root}", tmp_path / "a", system="spotting/when"))
    with pytest.raises(SovtpError, match="not intervals"):
        run_spot(SpotOptions(f"casme2_spot:{casme2_root}", tmp_path / "b", evaluator="dfew"))


@pytest.mark.slow
def test_spot_refuses_a_text_only_model(casme2_root, tmp_path):
    """The real SmolLM2 (a text-only LM, in-process) would be told "you are shown 16 numbered
    frames" and sent none: spot refuses it before any video, naming why."""
    from sovtp.errors import SovtpError
    from sovtp.recipes.spot import SpotOptions, run_spot
    from tests.smollm import NAME, smollm_folder

    smollm_folder()
    opts = SpotOptions(
        f"casme2_spot:{casme2_root}",
        tmp_path / "t",
        system="spotting/when",
        backend="transformers",
        backend_options={"model": NAME, "device_map": None, "dtype": "float32"},
    )
    with pytest.raises(SovtpError, match="reads text only"):
        run_spot(opts)


def test_manifest_rows_become_videos_and_windows_join(tmp_path):
    """Manifest rows with onset/apex/offset (one per interval) are grouped into one video per
    media; LLM windows cover the video and an interval cut by a window border is one."""
    from sovtp.data.me_adapters import video_samples
    from sovtp.data.sources import open_dataset
    from sovtp.spotting.windows import join_windows, windows

    (tmp_path / "v1.mp4").write_bytes(b"")
    (tmp_path / "v2.mp4").write_bytes(b"")
    _write(
        tmp_path / "m.csv",
        [
            ["id", "media", "onset", "apex", "offset", "type", "emotion"],
            ["a", "v1.mp4", "40", "44", "49", "micro", "happiness"],
            ["b", "v1.mp4", "10", "12", "0", "micro", "fear"],
            ["c", "v2.mp4", "", "", "", "", ""],
        ],
    )
    vids = list(video_samples(open_dataset(str(tmp_path / "m.csv"))))
    assert [v.id for v in vids] == ["v1", "v2"]
    assert gold_spans(vids[0], labels="casme2_4") == [
        (10.0, 12.0, "negative"),
        (40.0, 49.0, "positive"),
    ]
    assert gold_spans(vids[1]) == []
    w = windows(100, 20.0, 2.0, 5)
    assert w == [[0, 10, 20, 29, 39], [40, 50, 60, 69, 79], [80, 85, 90, 94, 99]]
    assert windows(10, 20.0, 0, 16) == [list(range(10))]
    bounds = [(0, 39), (40, 79), (80, 99)]
    got = join_windows([[(30, 39, "x")], [(40, 45, "x"), (60, 62, None)], [(80, 81, "y")]], bounds)
    assert got == [(30, 45, "x"), (60, 62, None), (80, 81, "y")]
    # different labels across the border stay apart
    assert join_windows([[(30, 39, "x")], [(40, 45, "y")]], bounds[:2]) == [
        (30, 39, "x"),
        (40, 45, "y"),
    ]
