"""De-identified mode end to end, through the one prepare pipeline and a real loopback server:
what leaves the machine is searched for faces and for the raw voice."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from sovtp.backends import GenerationConfig, get_backend
from sovtp.deid.media_writer import encode_media
from sovtp.errors import DeidError
from sovtp.media.sample import panning_clip
from sovtp.prepare import PrepareOptions, Preparer
from sovtp.prompting.spec import load_spec
from sovtp.testing import FakeOpenAIServer

SR = 16000


def _decode(url: str):
    from PIL import Image

    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_deid_request_carries_no_face_and_no_raw_voice(talking_clip, tmp_path):
    from sovtp.deid.faces import FaceFinder
    from sovtp.deid.outgoing import read_index
    from sovtp.media.audio import load_audio, read_wav_bytes

    spec = replace(load_spec("sovtp/full"), audio=True)  # an omni-model prompt
    opts = PrepareOptions(
        sampling="uniform:4", deid=True, annotation_cache=False, outgoing=tmp_path / "outgoing"
    )
    with Preparer(opts) as prep:
        clip, frames = prep.annotate(talking_clip)
        assert clip.track_ids, "the raw frames are measured: a face was found"
        q, images = prep.query(
            clip,
            frames,
            spec,
            transcript="My name is Alice Brown, call me on 555-123-4567.",
            names=("Alice Brown",),
            sample_key="talk",
        )
    text = q.text()
    # measured on the raw media, worded as text: AUs and the voice's prosody
    assert "AU12" in text and "Voice (measured on the audio)" in text
    # the model is told its images show no faces and where the AUs came from (issue 19, item 6)
    assert "Every face in the images is hidden" in text
    assert "measured on the original frames before the faces were hidden" in text
    assert "Alice" not in text and "555" not in text and "[NAME]" in text
    # a scrubbed transcript is not called verbatim: the model is told what the brackets are
    assert "verbatim" not in text and "replaced by placeholders such as [NAME]" in text
    with FakeOpenAIServer() as srv:
        be = get_backend("openai", base_url=srv.base_url, model="m")
        (r,) = be.generate([q], GenerationConfig(max_tokens=16))
        body = srv.state.requests[0]
    assert r.error is None
    parts = body["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    audio = [p["input_audio"] for p in parts if p["type"] == "input_audio"]
    assert len(urls) == len(images) >= 2 and len(audio) == 1
    # the outgoing record holds exactly what the server received (the audit reads these)
    (entry,) = list(read_index(tmp_path / "outgoing"))
    assert entry["raw_audio"] == str(talking_clip)  # where the audit finds the voice to compare
    wire = [base64.b64decode(u.split(",", 1)[1]) for u in urls]
    assert [(tmp_path / "outgoing" / i["file"]).read_bytes() for i in entry["images"]] == wire
    on_disk = (tmp_path / "outgoing" / entry["audio"][0]["file"]).read_bytes()
    assert on_disk == base64.b64decode(audio[0]["data"])
    finder = FaceFinder()  # MediaPipe's face detector (tiled) ∪ CenterFace
    try:
        found = [d for u in urls for d in finder.find(_decode(u))]
    finally:
        finder.close()
    assert found == [], "a face is detectable in an outgoing image"
    # the voice that leaves is the anonymised one: same length, not the raw samples
    sent, rate = read_wav_bytes(base64.b64decode(audio[0]["data"]))
    raw, _ = load_audio(talking_clip, rate)
    n = min(len(sent), len(raw))
    assert n > rate  # a second or more of audio was sent
    corr = float(np.corrcoef(sent[:n], raw[:n])[0, 1])
    assert abs(corr) < 0.9, f"the sent audio is too close to the raw voice (r={corr:.2f})"
    assert q.meta["audio"]["anonymised"] and q.meta["deid"]["checked"] == len(images)
    assert "sha256:" in json.dumps(q.redacted())  # run folders keep no audio or pixels


def test_guard_refuses_a_request_whose_image_shows_a_face(talking_clip, monkeypatch):
    """If de-identification ever failed, the request would not leave (an error, not a send)."""
    import sovtp.deid.stage as stage

    monkeypatch.setattr(stage, "deidentify_frames", lambda frames, *a, **k: frames)
    with Preparer(PrepareOptions(sampling="uniform:2", deid=True)) as prep:
        clip, frames = prep.annotate(talking_clip)
        with pytest.raises(DeidError, match="request not sent"):
            prep.query(clip, frames, load_spec("sovtp/full"))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt)")
def test_audit_reaches_the_voice(tmp_path):
    """`sovtp audit FILE --raw RAW` on audio: speaker re-identification raw vs target — the raw
    voice itself fails (exit 1), its McAdams-anonymised copy moves away from it."""
    import sys

    pytest.importorskip("resemblyzer")
    raw = tmp_path / "raw.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(raw), "I am quite upset about how this went today."], check=True
    )
    cli = [sys.executable, "-m", "sovtp.cli"]
    subprocess.run(
        [*cli, "deid", raw, "-o", tmp_path / "anon.wav"], check=True, capture_output=True
    )
    same = subprocess.run(
        [*cli, "audit", raw, "--raw", raw, "-o", tmp_path / "a1"], capture_output=True, text=True
    )
    assert same.returncode == 1 and "FAIL" in same.stdout
    anon = subprocess.run(
        [*cli, "audit", tmp_path / "anon.wav", "--raw", raw, "-o", tmp_path / "a2"],
        capture_output=True,
        text=True,
    )
    assert "Privacy audit — voice" in anon.stdout
    sims = [
        json.loads((tmp_path / d / "audit_voice.json").read_text())["similarity"]
        for d in ("a1", "a2")
    ]
    assert sims[0] > 0.99 and sims[1] < 0.9, sims


@pytest.mark.slow  # faster-whisper tiny.en through the model resolver (a PyPI wheel, ~75 MB)
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt)")
def test_asr_fills_a_missing_transcript_and_deid_scrubs_it(tmp_path):
    pytest.importorskip("faster_whisper")
    path = tmp_path / "talk.mp4"
    frames = panning_clip(seconds=3.0, fps=10)
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-s", "140", "My name is Alice and I am upset."],
        capture_output=True,
        check=True,
    ).stdout
    from sovtp.media.audio import read_wav_bytes, resample

    x, rate = read_wav_bytes(wav)
    x = resample(x, rate, SR)[: 3 * SR]
    encode_media(path, frames=frames, fps=10, samples=np.pad(x, (0, 3 * SR - len(x))), rate=SR)
    opts = PrepareOptions(sampling="uniform:2", asr=True, deid=True, annotation_cache=False)
    with Preparer(opts) as prep:
        clip, frames_ = prep.annotate(path)
        q, _ = prep.query(clip, frames_, load_spec("sovtp/full"), names=("Alice",))
    text = q.text().lower()
    assert "upset" in text and "alice" not in text and "[name]" in text
