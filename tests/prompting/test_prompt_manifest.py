"""``sovtp prompt MANIFEST --id ID``: the prompt of a manifest row is the one ``sovtp bench``
sends for that row — same frames of its interval, transcript, voice cues, and one prompt per
labelled face — checked against the requests a loopback server received from a real run."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from sovtp.testing import FakeOpenAIServer

SOVTP = [sys.executable, "-m", "sovtp.cli"]


def _run(*args, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([*SOVTP, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(p.stderr[-2000:])
    return p


def _text(messages: list[dict]) -> str:
    """The user turn's text parts (the system message is a plain string)."""
    return "\n".join(
        part["text"]
        for m in messages
        if isinstance(m["content"], list)
        for part in m["content"]
        if part.get("type") == "text"
    )


@pytest.mark.slow
def test_prompt_of_a_row_is_what_bench_sends(tmp_path, two_faces_png, talking_clip):
    m = tmp_path / "m.csv"
    with m.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "media", "label", "transcript", "face_labels", "start_s", "end_s"])
        w.writerow(
            [
                "pair",
                two_faces_png,
                "happy",
                "Well, that went fine.",
                json.dumps({"1": "happy", "2": "sad"}),
                "",
                "",
            ]
        )
        w.writerow(["talk", talking_clip, "sad", "", "", "0.5", "1.5"])
    common = ["-p", "sovtp/full", "-s", "uniform:2"]
    with FakeOpenAIServer() as srv:
        _run(
            "bench",
            m,
            "--base-url",
            srv.base_url,
            "--model",
            "fake-vlm",
            *common,
            "--no-check",
            "--workers",
            "0",
            "-o",
            tmp_path / "run",
        )
        sent = [r["messages"] for r in srv.state.requests]
    assert len(sent) == 3  # two labelled faces of "pair", one subject of "talk"

    pair = _run("prompt", m, "--id", "pair", "--json", *common, "-o", tmp_path / "p")
    faces = json.loads(pair.stdout)
    assert len(faces) == 2  # one prompt per labelled face, as the run asks
    for msgs in faces:
        assert msgs in sent  # the exact messages, images (as data URLs) included
    assert "Well, that went fine." in _text(faces[0])
    assert "person 1" in _text(faces[0]) and "person 2" in _text(faces[1])
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"face_1", "face_2"}

    talk = _run("prompt", m, "--id", "talk", "--json", *common, "-o", tmp_path / "t")
    msgs = json.loads(talk.stdout)
    assert msgs in sent  # the interval's two frames and the voice cues, as bench sent them
    text = _run("prompt", m, "--id", "talk", *common, "-o", tmp_path / "t2")
    assert "start_s" in text.stderr and "0.5" in text.stderr  # the row's columns are listed
    assert _text(msgs) in text.stdout


def test_an_unknown_id_is_one_line_naming_the_closest(tmp_path, astronaut_png):
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"id": "clip_001", "media": str(astronaut_png), "label": "happy"}))
    p = _run("prompt", m, "--id", "clip_01", check=False)
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "no row with id 'clip_01'" in err[0] and "clip_001" in err[0]
    p = _run("prompt", astronaut_png, "--id", "x", check=False)
    assert p.returncode == 2 and "manifest" in p.stderr and "Traceback" not in p.stderr
