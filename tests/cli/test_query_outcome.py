"""`sovtp query` ends by the rule of every command that asks a model (sovtp/engine/outcome.py):
0 every answer valid, 3 some answers errors or invalid, 4 none valid with the likely cause on
stderr — a script can tell a broken set-up from an answer."""

from __future__ import annotations

import json

from sovtp.cli.app import main
from sovtp.testing import Behaviour, FakeOpenAIServer


def _query(media, srv, out, *args) -> int:
    return main(["query", str(media), "--base-url", srv.base_url, "-o", str(out), *args])


def test_prose_answers_exit_4_with_the_likely_cause(astronaut_png, tmp_path, capfd):
    with FakeOpenAIServer(Behaviour(content="I cannot tell, sorry ###")) as srv:
        rc = _query(astronaut_png, srv, tmp_path / "q")
    out = capfd.readouterr()
    assert rc == 4, out.err
    assert "prose" in out.err and "--no-structured" in out.err, out.err
    assert "0 valid answers" in out.err
    assert json.loads((tmp_path / "q" / "prediction.json").read_text())["parse_status"] == "invalid"


def test_a_label_outside_the_set_exits_4_and_a_good_answer_0(astronaut_png, tmp_path, capfd):
    with FakeOpenAIServer(Behaviour(mode="outside")) as srv:
        rc = _query(astronaut_png, srv, tmp_path / "q")
    out = capfd.readouterr()
    assert rc == 4 and "no answer" in out.out and "label set" in out.err, out.err
    body = json.loads((tmp_path / "q" / "request.json").read_text())["body"]
    assert body["model"] == "fake-vlm"  # the model discovered from /v1/models is recorded
    with FakeOpenAIServer(Behaviour(label="sad")) as srv:
        rc = _query(astronaut_png, srv, tmp_path / "ok")
    out = capfd.readouterr()
    assert rc == 0 and "sad" in out.out and "no valid answer" not in out.err, out.err


def test_one_face_of_two_answered_exits_3_with_the_counts(two_faces_png, tmp_path, capfd):
    with FakeOpenAIServer(Behaviour(script=["good", "outside"])) as srv:
        rc = _query(two_faces_png, srv, tmp_path / "q", "--subject", "all")
    err = capfd.readouterr().err
    assert rc == 3, err
    assert "2 rows: 1 valid answers, 1 invalid answers, 0 errors" in err, err
    assert "no valid answer" not in err
