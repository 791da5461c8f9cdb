"""The DEEMO task end to end, through the real command line.

A tiny DEEMO-layout dataset is built at test time (``videos/<id>.mp4`` + ``annotations/test.jsonl``
with emotion, reference description and a transcript that carries PII): three talking clips —
the astronaut panning across a 640×360 frame, speech (espeak-ng when installed, else a voiced
pulse train) muxed on.  ``sovtp bench deemo:ROOT --evaluator deemo --deid`` then runs two systems:
the offline FACS reasoner and a loopback OpenAI-compatible server that records every request.

What must hold: a row for every sample × system; no request carries an image in which either
detector still finds a face (the ``--deid`` guard); the transcript reaches the prompt scrubbed;
the reasoning scores (EMER-style clue and label overlap, offline word overlap) are in
``report.json``; and the labels offered to the model are the evaluator's declared label set.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sovtp.testing import speech

SR = 16000
CLIPS = {  # id → (gold, reference description, transcript with PII)
    "d1": (
        "happy",
        "He smiles broadly (AU12 lip corner puller, AU6 cheek raiser) and sounds pleased.",
        "My name is Alice Brown, write to alice.brown@example.com, we won today.",
    ),
    "d2": (
        "sad",
        "His lip corners drop (AU15) and his voice is low and slow; he is disappointed.",
        "Call me on 555-123-4567, I am sad about the result.",
    ),
    "d3": (
        "worried",
        "Brows raised and drawn together (AU1, AU4), a tense voice: he is worried.",
        "I live at 42 Elm Street and I am worried about the next match.",
    ),
}
PII = ("alice.brown@example.com", "555-123-4567", "42 Elm Street")


def _speech(text: str, seconds: float) -> np.ndarray:
    return speech(text, seconds, SR, wpm=170, pitch_hz=130.0)


@pytest.fixture(scope="module")
def deemo_root(tmp_path_factory) -> Path:
    from sovtp.deid.media_writer import encode_media
    from sovtp.media.sample import panning_clip

    root = tmp_path_factory.mktemp("data") / "DEEMO"
    (root / "videos").mkdir(parents=True)
    (root / "annotations").mkdir()
    frames = panning_clip(seconds=2.0, fps=8)
    rows = []
    for k, (sid, (gold, desc, said)) in enumerate(CLIPS.items()):
        clip = frames[k:] + frames[:k]  # three clips, three different frame orders
        encode_media(
            root / "videos" / f"{sid}.mp4", frames=clip, fps=8, samples=_speech(said, 2.0), rate=SR
        )
        rows.append({"id": sid, "emotion": gold, "description": desc, "transcript": said})
    (root / "annotations" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _decode(url: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.slow  # ~3 clips × 2 systems through annotate → de-identify → prompt → score (> 10 s)
def test_deemo_bench_deid_end_to_end(deemo_root, tmp_path):
    from sovtp.testing import FakeOpenAIServer

    out = tmp_path / "run"
    with FakeOpenAIServer() as srv:
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "sovtp",
                "bench",
                f"deemo:{deemo_root}",
                "--evaluator",
                "deemo",
                "--deid",
                "--system",
                "facs",
                "--system",
                f"openai@{srv.base_url}",
                "-s",
                "uniform:2",
                "--no-pose",
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=600,
        )
        requests = list(srv.state.requests)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]

    # a row for every sample × system, none of them an error
    preds = _rows(out / "predictions.jsonl")
    got = {(r["sample_id"], r["system"]) for r in preds}
    systems = {r["system"] for r in preds}
    assert len(systems) == 2 and got == {(s, y) for s in CLIPS for y in systems}, got
    assert not [r for r in preds if r.get("error")], [r.get("error") for r in preds]
    # gold categories read through the evaluator's label set (deemo2: happy → positive, ...)
    from sovtp.evaluator import load_evaluator

    ls = load_evaluator("deemo").labels()
    assert {r["gold"] for r in preds} == {ls.normalize(g) for g, _, _ in CLIPS.values()}
    assert {r["gold"] for r in preds} <= set(ls.labels)

    # what reached the server: images with no detectable face, words with no PII
    def images(body: dict) -> list[str]:
        parts = body["messages"][-1]["content"]
        parts = [parts] if isinstance(parts, str) else parts
        return [q["image_url"]["url"] for q in parts if q.get("type") == "image_url"]

    # every image that left, the pre-run check's small synthetic probes included, is searched;
    # the run's own requests are those that offer the emotion labels (the probes ask of the sky)
    sent_all = [r for r in requests if "messages" in r and images(r)]
    offered = f"[{', '.join(ls.labels)}]"  # "one of [positive, negative]" in the answer format
    chats = [r for r in sent_all if offered in json.dumps(r["messages"])]
    assert len(chats) == len(CLIPS)
    from sovtp.deid.faces import FaceFinder

    finder = FaceFinder()  # MediaPipe's face detector (tiled) ∪ CenterFace
    n_images = 0
    try:
        for body in sent_all:
            urls = images(body)
            n_images += len(urls)
            faces = [d for u in urls for d in finder.find(_decode(u))]
            assert faces == [], "a face is detectable in an image sent under --deid"
    finally:
        finder.close()
    assert n_images >= 2 * len(CLIPS) and all(len(images(b)) == 2 for b in chats)
    sent = json.dumps([b["messages"] for b in chats])
    for pii in (*PII, "Alice"):
        assert pii not in sent, f"{pii!r} reached the model"
    assert "[EMAIL]" in sent and "[PHONE]" in sent  # the words came, scrubbed
    assert "we won today" in sent  # and the rest of the transcript with them

    # the label set offered is the one the evaluator declares
    root = Path(__file__).resolve().parents[2]
    ev = yaml.safe_load((root / "evaluators" / "deemo.yaml").read_text())
    labels = yaml.safe_load((root / "prompts" / "labels" / f"{ev['label_set']}.yaml").read_text())
    offered = set(labels["labels"])
    for body in chats:
        fmt = json.dumps(body.get("response_format") or body.get("structured_outputs") or {})
        text = json.dumps(body["messages"])
        assert all(lab in fmt or lab in text for lab in offered), offered

    # reasoning scored (offline word overlap, EMER's two 0-10 scales) and in the report
    rep = json.loads((out / "report.json").read_text())
    assert rep["reasoning"]["method"] == "offline"
    scores = rep["reasoning"]["scores"]
    assert len(scores) == 2
    for per_system in scores.values():
        keys = " ".join(per_system)
        assert "clue_overlap" in keys and "label_overlap" in keys
        assert all(0.0 <= v <= 10.0 for v in per_system.values())
