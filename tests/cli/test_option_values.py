"""Option values are checked at the edge (issue 24 item 6): a value out of range, not finite or
not one of the known names is one line and exit 2 before anything runs — never a traceback from a
worker, never accepted silently (``--limit 0`` once ran every sample)."""

from __future__ import annotations

import pytest

from sovtp.cli.app import main

BAD = [
    (["--max-faces", "0"], "max_faces"),
    (["--temperature", "nan"], "temperature: Input should be a finite number"),
    (["--temperature", "-1"], "temperature"),
    (["--label-order", "foo"], "label order must be one of"),
    (["--deid", "--blur", "foo"], "--blur must be one of all, others"),
    (["--max-tokens", "0"], "max_tokens"),
    (["--workers", "-2"], "workers"),
    (["--limit", "0"], "limit"),
    (["--concurrency", "0"], "concurrency"),
    (["--timeout", "-1"], "timeout"),
    (["--max-retries", "-1"], "max_retries"),
    (["--jpeg-quality", "0"], "jpeg_quality"),
]


@pytest.mark.parametrize(("args", "said"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_value_is_one_line_and_exit_2(args, said, tmp_path, capfd, astronaut_png):
    man = tmp_path / "m.csv"
    man.write_text(f"id,media,label\na,{astronaut_png},happy\n")
    rc = main(["bench", str(man), "-o", str(tmp_path / "run"), "--no-check", *args])
    err = capfd.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and said in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "run" / "predictions.jsonl").exists()


# a refused --sampling or --subject once ran: bench and export failed every sample (bench exit
# 4 or 3, export a task folder of failures), spot and train claimed their run folder first
COMMANDS = {
    "bench": ["bench", "{m}", "--no-check"],
    "export": ["export", "lmms-eval", "dfew", "--data", "{m}"],
    "query": ["query", "{img}"],
    "prompt": ["prompt", "{img}"],
    "spot": ["spot", "{m}"],
    "train": ["train", "{m}", "--split", "all", "--epochs", "1"],
}
REFUSED = [
    (cmd, bad, said)
    for cmd in COMMANDS
    for bad, said in (
        (["--sampling", "bogus:3"], "bad sampling 'bogus:3': use uniform:N, fps:F"),
        (["--subject", "nobody"], "subject must be largest, center, all or a face ID"),
    )
    if not (bad[0] == "--subject" and cmd in ("spot", "train"))  # no --subject there
]


@pytest.mark.parametrize(
    ("cmd", "bad", "said"), REFUSED, ids=[f"{c} {' '.join(b)}" for c, b, _ in REFUSED]
)
def test_a_bad_sampling_or_subject_is_refused_before_any_work(
    cmd, bad, said, tmp_path, capfd, astronaut_png, monkeypatch
):
    from sovtp.prepare import Preparer

    def annotate(*a, **k):  # the work a bad option must never reach (in this process)
        raise AssertionError("media annotated before the option was checked")

    monkeypatch.setattr(Preparer, "annotate", annotate)
    man = tmp_path / "m.csv"
    man.write_text(f"id,media,label\na,{astronaut_png},happy\n")
    argv = [a.format(m=man, img=astronaut_png) for a in COMMANDS[cmd]]
    rc = main([*argv, "-o", str(tmp_path / "out"), *bad])
    err = capfd.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and said in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()  # no run folder, no task folder, no query folder
