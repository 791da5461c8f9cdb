"""The privacy audit of what actually left: the prepare pipeline records every payload it lets
through (``outgoing/``), ``sovtp audit RUN`` searches exactly those bytes, and the report reads
the verdict.  Real media: the astronaut panning across a frame, with a voice muxed on."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sovtp.deid.audit_run import audit_sent
from sovtp.deid.media_writer import encode_media
from sovtp.deid.outgoing import OutgoingRecorder, read_index
from sovtp.errors import DeidError
from sovtp.media.sample import astronaut, panning_clip
from sovtp.prepare import PrepareOptions, Preparer
from sovtp.prompting.spec import load_spec
from sovtp.report.privacy import privacy_section

SR = 16000
TRANSCRIPT = "My name is Alice Brown, call me on 555-123-4567."


def _voice(seconds: float) -> np.ndarray:
    """A vowel-like pulse train through formant resonators: a pitch and a spectral envelope."""
    from scipy.signal import lfilter

    n = int(seconds * SR)
    ex = np.zeros(n)
    ex[np.arange(0, n, SR / 140).astype(int)] = 1.0
    x = lfilter([1.0], [1.0, -1.6, 0.8], ex)
    return np.asarray(0.5 * x / np.abs(x).max(), np.float32)


@pytest.fixture(scope="module")
def sent(tmp_path_factory):
    """A --deid query with ``outgoing`` set: (run folder, query, raw clip)."""
    root = tmp_path_factory.mktemp("privacy")
    clip_path = root / "talk.mp4"
    encode_media(
        clip_path, frames=panning_clip(seconds=1.0, fps=6), fps=6, samples=_voice(1.0), rate=SR
    )
    run = root / "run"
    opts = PrepareOptions(
        sampling="uniform:2",
        deid=True,
        annotation_cache=False,
        pose=False,
        outgoing=run / "outgoing",
    )
    spec = replace(load_spec("sovtp/full"), audio=True)
    with Preparer(opts) as prep:
        clip, frames = prep.annotate(clip_path)
        q, images = prep.query(
            clip,
            frames,
            spec,
            transcript=TRANSCRIPT,
            names=("Alice Brown",),
            sample_key="talk",
            query_id="talk:1",
        )
    assert images, "the query carries images"
    return run, q, clip_path


def test_outgoing_holds_exactly_the_bytes_sent(sent):
    run, q, clip_path = sent
    parts = q.messages[-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    sent_images = [base64.b64decode(u.split(",", 1)[1]) for u in urls]
    sent_audio = [
        base64.b64decode(p["input_audio"]["data"]) for p in parts if p["type"] == "input_audio"
    ]
    assert len(sent_images) >= 2 and len(sent_audio) == 1
    (entry,) = list(read_index(run / "outgoing"))
    assert entry["query_id"] == "talk:1" and entry["sample_id"] == "talk"
    assert entry["guard"] == "passed" and entry["source"] == str(clip_path)
    for data, im in zip(sent_images, entry["images"], strict=True):
        assert im["sha256"] == hashlib.sha256(data).hexdigest()
        assert (run / "outgoing" / im["file"]).read_bytes() == data
    (au,) = entry["audio"]
    assert (run / "outgoing" / au["file"]).read_bytes() == sent_audio[0]
    assert "Alice" not in entry["transcript"] and "[NAME]" in entry["transcript"]
    written = sorted(p.name for p in (run / "outgoing" / "images").iterdir())
    assert written == sorted(i["file"].split("/")[1] for i in entry["images"])  # no temp files


def _audit_app():
    import typer

    from sovtp.cli.deid import audit_cmd

    app = typer.Typer()
    app.command("audit")(audit_cmd)
    app.command("other")(lambda: None)
    return app


def test_audit_passes_then_fails_on_a_planted_face(sent, tmp_path):
    app = _audit_app()
    run = tmp_path / "run"
    shutil.copytree(sent[0], run)
    res = CliRunner().invoke(app, ["audit", str(run), "--no-speaker"])
    assert res.exit_code == 0, res.output
    p = json.loads((run / "privacy.json").read_text())
    assert p["verdict"] == "pass" and p["images"]["with_faces"] == 0
    assert p["images"]["n"] == len(sent[1].images) and p["requests"] == 1
    assert p["audio"]["n"] == 1 and p["audio"]["compared_with_raw"] == 1
    assert p["audio"]["raw_copies"] == 0  # the McAdams voice is not the raw waveform
    assert p["transcripts"] == {"n": 1, "with_pii": 0, "kinds": [], "names_checked": 0}
    # a raw face among the payloads: the audit fails and names the file
    Image.fromarray(astronaut()).save(run / "outgoing" / "images" / "planted.jpg")
    res = CliRunner().invoke(app, ["audit", str(run), "--no-speaker"])
    assert res.exit_code == 1 and "planted.jpg" in res.output
    p = json.loads((run / "privacy.json").read_text())
    assert p["verdict"] == "fail" and p["images"]["files_with_faces"] == [
        "outgoing/images/planted.jpg"
    ]
    sec = privacy_section(run)
    assert sec is not None and "FAIL" in sec["notes"][0]
    assert any("planted.jpg" in n for n in sec["notes"])


def test_audit_finds_the_raw_voice_and_pii_in_what_was_sent(sent, tmp_path):
    """A request that sent the raw waveform and an unscrubbed transcript fails the audit."""
    from sovtp.media.audio import load_audio, wav_bytes
    from sovtp.records import Query

    raw, _ = load_audio(sent[2], SR)
    part = {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(wav_bytes(raw, SR)).decode(), "format": "wav"},
    }
    q = Query(id="leak", messages=[{"role": "user", "content": [part]}])
    rec = OutgoingRecorder(tmp_path / "outgoing")
    rec.record(
        q, sample_id="talk", source=str(sent[2]), raw_audio=str(sent[2]), transcript=TRANSCRIPT
    )
    p = audit_sent(tmp_path, speaker=False)
    assert p["verdict"] == "fail"
    assert p["audio"]["raw_copies"] == 1 and p["audio"]["files"][0]["correlation"] > 0.99
    assert p["transcripts"]["with_pii"] == 1 and "PHONE" in p["transcripts"]["kinds"]
    # the report's table and the audit's own table say it in prose, not as a Python list
    from sovtp.deid.audit_run import table
    from sovtp.report.tables import html_table, md_table

    (tmp_path / "privacy.json").write_text(json.dumps(p))
    sec = privacy_section(tmp_path)
    md, html = "\n".join(md_table(sec["table"])), html_table(sec["table"])
    kinds = ", ".join(p["transcripts"]["kinds"])
    for text in (md, html, table(p)):
        assert f"with PII left: 1 ({kinds})" in text and "['" not in text and "[&#x27;" not in text


def test_guard_refusal_is_indexed_and_nothing_is_written(sent, tmp_path, monkeypatch):
    import sovtp.deid.stage as stage

    monkeypatch.setattr(stage, "deidentify_frames", lambda frames, *a, **k: frames)
    out = tmp_path / "outgoing"
    opts = PrepareOptions(sampling="uniform:2", deid=True, outgoing=out)
    with Preparer(opts) as prep:
        clip, frames = prep.annotate(sent[2])
        with pytest.raises(DeidError):
            prep.query(clip, frames, load_spec("sovtp/full"), query_id="raw:1")
    (entry,) = list(read_index(out))
    assert entry["query_id"] == "raw:1" and entry["guard"] == "refused"
    assert "request not sent" in entry["reason"] and entry["images"] == []
    assert not (out / "images").exists() or not any((out / "images").iterdir())
    sec = privacy_section(tmp_path)  # not audited: the index's counts and a note
    assert sec["table"][1][0] == ["requests", 1, "refused by the guard: 1"]
    assert "sovtp audit" in sec["notes"][0]
    assert audit_sent(tmp_path, speaker=False)["refused"] == 1


def test_audit_searches_saved_request_bodies(tmp_path):
    """A query folder's request.json with an image inlined (not by hash): it is audited."""
    import io

    buf = io.BytesIO()
    Image.fromarray(astronaut()).save(buf, format="JPEG")
    url = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    body = {
        "query": {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
            ]
        },
        "images": [],
    }
    (tmp_path / "face_1").mkdir()
    (tmp_path / "face_1" / "request.json").write_text(json.dumps(body))
    p = audit_sent(tmp_path, speaker=False)
    assert p["images"]["files_with_faces"] == ["face_1/request.json#0"]
    assert p["verdict"] == "fail"


def test_index_lines_from_several_processes_never_mix(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as ex:
        list(ex.map(_write_lines, [str(tmp_path)] * 4, range(4)))
    lines = (tmp_path / "index.jsonl").read_text().splitlines()
    assert len(lines) == 4 * 50 and all(json.loads(s)["transcript"] for s in lines)


def _write_lines(root: str, k: int) -> None:
    from sovtp.records import Query

    rec = OutgoingRecorder(root)
    for i in range(50):
        rec.record(Query(id=f"{k}:{i}", messages=[]), transcript="x" * 5000, refused=None)


def test_bench_deid_scrubs_the_manifest_speakers_from_what_leaves(tmp_path, astronaut_png):
    """A manifest's `speaker` column (extra columns live in Sample.meta) names people the
    scrubber removes from the transcript before a --deid request leaves; the record of what
    left shows the placeholder, never the name."""
    from sovtp.deid.outgoing import read_index
    from sovtp.engine.config import BenchConfig
    from sovtp.recipes.bench import run_bench

    shutil.copy(astronaut_png, tmp_path / "a.png")  # inside the manifest's root
    (tmp_path / "m.csv").write_text(
        "id,media,label,speaker,transcript\n"
        "t1,a.png,happy,Bob Marsh; Ann,Bob here and Ann too. Marsh speaking.\n"
    )
    cfg = BenchConfig(
        data=str(tmp_path / "m.csv"),
        labels="basic7",
        variants=["sovtp/full"],
        deid=True,
        out=str(tmp_path / "run"),
        n_boot=20,
    )
    run, _ = run_bench(cfg, report=False)
    (line,) = [x for x in read_index(run / "outgoing") if x.get("guard") == "passed"]
    sent = line["transcript"]
    assert "Bob" not in sent and "Ann" not in sent and "Marsh" not in sent, sent
    assert "[NAME]" in sent
    # auditing the run folder writes privacy.json and redraws the run's report with it
    res = CliRunner().invoke(_audit_app(), ["audit", str(run), "--no-speaker"])
    assert res.exit_code == 0, res.output
    html = (run / "report.html").read_text()
    assert "PASS" in html and "Not audited" not in html


def test_what_the_audit_cannot_read_fails_it_by_name(sent, tmp_path):
    """A payload no detector can decode, or a request body that is not JSON, was sent yet
    cannot be checked: the audit says so and does not pass; a damaged privacy.json falls back
    to the index with a note, never to silence."""
    app = _audit_app()
    run = tmp_path / "run"
    shutil.copytree(sent[0], run)
    (run / "outgoing" / "images" / "torn.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (run / "q1").mkdir()
    (run / "q1" / "request.json").write_text('{"messages": [')
    res = CliRunner().invoke(app, ["audit", str(run), "--no-speaker"])
    assert res.exit_code == 1, res.output
    p = json.loads((run / "privacy.json").read_text())
    assert p["verdict"] == "fail"
    assert sorted(p["unchecked"]) == ["outgoing/images/torn.jpg", "q1/request.json"]
    assert any("torn.jpg" in n for n in privacy_section(run)["notes"])
    (run / "privacy.json").write_text("{not json")
    sec = privacy_section(run)
    assert sec is not None and "privacy.json could not be read" in sec["notes"][0]


# --- an audit that can fail ------------------------------------------------------------------


def test_an_empty_folder_fails_the_audit_for_want_of_anything_to_check(tmp_path):
    """It passed ("images checked: 0"): a verdict over nothing is no verdict."""
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(_audit_app(), ["audit", str(tmp_path / "empty")])
    assert res.exit_code == 1, res.output
    assert "nothing to check" in res.output and "images checked: 0" in res.output
    assert "verdict: **FAIL**" in res.output and "pass" not in res.output.lower()


def test_payloads_the_index_lists_but_that_are_gone_fail_the_audit(sent, tmp_path):
    """A --deid run whose payload files were deleted passed with "images sent 0"."""
    run = tmp_path / "run"
    shutil.copytree(sent[0], run)
    for sub in ("images", "audio"):
        shutil.rmtree(run / "outgoing" / sub)
    res = CliRunner().invoke(_audit_app(), ["audit", str(run), "--no-speaker"])
    assert res.exit_code == 1, res.output
    p = json.loads((run / "privacy.json").read_text())
    (entry,) = list(read_index(run / "outgoing"))
    listed = sorted(x["file"] for x in entry["images"] + entry["audio"])
    assert p["verdict"] == "fail" and p["missing"] == listed and p["images"]["n"] == 0
    assert (
        "payload(s) the index lists are missing" in res.output and "made with --deid" in res.output
    )


def _faceless(k: int) -> np.ndarray:
    """A 96×96 picture with no face: colour ramps, different for each k."""
    y, x = np.mgrid[0:96, 0:96]
    return np.stack([(x * 2 + 10 * k) % 256, (y * 2) % 256, np.full_like(x, 20 * k % 256)], -1)


@pytest.mark.slow
def test_a_run_made_without_deid_is_audited_as_such_and_fails_on_its_faces(tmp_path):
    """The reviewer's case: a run made without --deid whose first 12 samples have no face and
    whose last 3 do passed (the audit read the gallery, which holds the first 12).  The run now
    records every request it sends, the audit names the run raw, checks all 15 images, and
    fails on the 3 that hold a face.  A run folder that recorded nothing (made before) fails
    too, saying so, instead of passing on its gallery."""
    from sovtp.engine.config import BenchConfig, SystemSpec
    from sovtp.recipes.bench import run_bench
    from sovtp.testing import Behaviour, FakeOpenAIServer

    face = np.asarray(Image.fromarray(astronaut()).resize((192, 192)))
    faces = [face, face[:, ::-1], np.roll(face, 8, axis=1)]  # three distinct images, one face
    rows = []
    for k in range(15):
        img = _faceless(k) if k < 12 else faces[k - 12]
        Image.fromarray(np.asarray(img, np.uint8)).save(tmp_path / f"s{k:02d}.png")
        rows.append(json.dumps({"id": f"s{k:02d}", "media": f"s{k:02d}.png", "label": "happy"}))
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    with FakeOpenAIServer(Behaviour()) as srv:  # a model that receives the images
        cfg = BenchConfig(
            data=str(tmp_path / "m.jsonl"),
            variants=["ladder/plain"],
            sampling="uniform:1",
            systems=[SystemSpec.parse(f"openai:fake-vlm@{srv.base_url}")],
            out=str(tmp_path / "run"),
            n_boot=20,
            gallery=12,
            annotation_cache=False,
        )
        run, _ = run_bench(cfg, report=False)
    res = CliRunner().invoke(_audit_app(), ["audit", str(run), "--no-speaker"])
    assert res.exit_code == 1, res.output
    p = json.loads((run / "privacy.json").read_text())
    assert p["mode"] == "raw" and "WITHOUT --deid" in res.output
    assert p["images"]["n"] == 15 and p["images"]["with_faces"] == 3, p["images"]
    assert p["verdict"] == "fail" and any("3 sent image(s)" in r for r in p["reasons"])
    notes = privacy_section(run)["notes"]  # the report says it too
    assert "WITHOUT --deid" in notes[0] and any("It fails: 3 sent image(s)" in n for n in notes)
    shutil.rmtree(run / "outgoing")  # a run that recorded nothing cannot be audited
    res = CliRunner().invoke(_audit_app(), ["audit", str(run), "--no-speaker"])
    assert res.exit_code == 1 and "recorded nothing of what it sent" in res.output, res.output


def test_reid_counts_only_faces_two_detectors_agree_on():
    """A false face one detector sees was "re-identified" because nothing obscured it and it
    matched itself (36 of 80 frames of a clip with a painted face in the background).  MediaPipe
    alone sees two faces on skimage's cat (chelsea, set inside a grey frame: a box at the edge
    counts on one detector's word, as a cut face would), CenterFace and dlib's HOG none: sent as
    it is, the cat re-identifies no one, and the boxes are reported unconfirmed.  The astronaut
    sent as she is — two detectors on her face — is still re-identified."""
    from skimage.data import chelsea

    from sovtp.deid.audit import reidentification

    cat = np.full((380, 531, 3), 90, np.uint8)
    cat[40:340, 40:491] = chelsea()
    s = reidentification([cat], [cat])
    assert s["available"] and s["faces"] == 0 and s["reidentified"] == 0, s
    assert s["unconfirmed"] >= 1
    face = astronaut()
    s = reidentification([face], [face])
    assert s["faces"] == 1 and s["reidentified"] == 1, s


@pytest.mark.slow
def test_the_lazy_informed_attacker_links_sent_utterances_of_one_speaker(sent, tmp_path):
    """Two anonymised utterances a run sent, of one raw voice: the audit scores them against each
    other (VoicePrivacy's lazy-informed attacker) and fails when a verifier at the threshold would
    link them; the similarity it reports is the pair's own."""
    from sovtp.deid.voice import anonymise_audio
    from sovtp.media.audio import load_audio, wav_bytes
    from sovtp.records import Query

    raw, _ = load_audio(sent[2], SR)
    rec = OutgoingRecorder(tmp_path / "outgoing")
    half = len(raw) // 2
    for i, piece in enumerate((raw[:half], raw[half:])):
        anon = anonymise_audio(piece, SR, 0.75)
        part = {
            "type": "input_audio",
            "input_audio": {
                "data": base64.b64encode(wav_bytes(anon, SR)).decode(),
                "format": "wav",
            },
        }
        q = Query(id=f"u{i}", messages=[{"role": "user", "content": [part]}])
        rec.record(q, sample_id=f"talk{i}", source=str(sent[2]), raw_audio=str(sent[2]))
    strict = audit_sent(tmp_path, speaker=True, speaker_threshold=-1.0)  # every pair links
    link = strict["audio"]["lazy_informed"]
    assert link["n_utterances"] == 2 and len(link["same"]) == 1 and link["linked"] == 1
    assert strict["verdict"] == "fail"
    assert any("lazy-informed" in r for r in strict["reasons"]), strict["reasons"]
    lax = audit_sent(tmp_path, speaker=True, speaker_threshold=1.01)  # no pair can link
    assert lax["audio"]["lazy_informed"]["linked"] == 0
    assert not any("lazy-informed" in r for r in lax["reasons"])
    assert lax["audio"]["lazy_informed"]["same"] == link["same"]  # the same pair, measured once
