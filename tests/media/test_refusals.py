"""Inputs that were taken as they came and gave a wrong result without a word (issue 24, item 8):
an output that is its input through a hard link, impossible ground-truth intervals, CSVs in
UTF-16 or with ragged lines, and user strings that report.md rendered as markup."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from sovtp.cli.app import main
from sovtp.errors import MediaError, SovtpError
from sovtp.media.sample import astronaut, panning_clip, write_video


def _one_line_error(capfd, *argv) -> str:
    """Run the CLI; it must exit 2 with one ``sovtp: error:`` line on stderr."""
    import sys

    assert main([str(a) for a in argv]) == 2
    sys.stderr.flush()
    err = capfd.readouterr().err.strip()
    assert err.startswith("sovtp: error:") and "\n" not in err and "Traceback" not in err, err
    return err


# --- deid: an output that is the input under another name ------------------------------------


def test_deid_refuses_an_output_hard_linked_to_its_source(tmp_path, capfd):
    """``deid raw.png -o link.png`` where link.png is a hard link of raw.png wrote the blurred
    picture into the raw file itself (one inode): the raw was lost.  Refused, the raw kept; a
    symlink is the same file too."""
    from sovtp.deid.media import deid_media

    src = tmp_path / "raw.png"
    Image.fromarray(astronaut()[::4, ::4]).save(src)
    before = src.read_bytes()
    os.link(src, tmp_path / "link.png")
    os.symlink(src, tmp_path / "sym.png")
    for dst in (tmp_path / "link.png", tmp_path / "sym.png"):
        with pytest.raises(MediaError, match="is the source file"):
            deid_media(src, dst)
    err = _one_line_error(capfd, "deid", src, "-o", tmp_path / "link.png")
    assert "is the source file" in err and "link.png" in err
    assert src.read_bytes() == before
    other = tmp_path / "copy.png"  # a distinct file is written as before
    deid_media(src, other)
    assert other.read_bytes() != before and src.read_bytes() == before


# --- spot: ground truth no frame can match ---------------------------------------------------


@pytest.fixture(scope="module")
def ten_frames(tmp_path_factory) -> Path:
    """A 10-frame video (frames 0..9)."""
    return write_video(tmp_path_factory.mktemp("spot") / "v1.mp4", panning_clip(1.0, 10)[:10])


@pytest.mark.parametrize(
    ("onset", "offset", "why"),
    [
        ("6", "3", "onset after its offset"),
        ("-2", "3", "a negative frame"),
        ("4", "10", "past the video's end (it has 10 frames, 0..9)"),
    ],
)
def test_spot_refuses_an_impossible_ground_truth_interval_by_name(
    tmp_path, ten_frames, capfd, onset, offset, why
):
    """An onset after its offset, a negative frame or a frame past the video's end was scored
    as it was (it moves recall and F1 silently); the run is refused, one line naming the video
    and the interval, before any spotting."""
    (tmp_path / "v1.mp4").write_bytes(ten_frames.read_bytes())
    with (tmp_path / "m.csv").open("w", newline="") as f:
        csv.writer(f).writerows(
            [
                ["id", "media", "onset", "apex", "offset", "type", "emotion"],
                ["a", "v1.mp4", "1", "2", "3", "micro", "happiness"],
                ["b", "v1.mp4", onset, "", offset, "micro", "fear"],
            ]
        )
    err = _one_line_error(capfd, "spot", tmp_path / "m.csv", "-o", tmp_path / "run")
    assert "'v1'" in err and f"onset {int(onset)}, offset {int(offset)}" in err and why in err
    assert not (tmp_path / "run" / "predictions.jsonl").exists()  # refused before any work


def test_spot_ground_truth_check_passes_good_intervals(ten_frames):
    """The check refuses only what no frame can match: the last frame is a valid offset."""
    from types import SimpleNamespace

    from sovtp.spotting.gold import check_gold

    iv = [{"onset": 0, "offset": 9, "type": "micro"}, {"onset": 5, "offset": 5}]
    check_gold([SimpleNamespace(id="v1", media=ten_frames, meta={"intervals": iv}, error=None)])
    iv.append({"onset": 5, "offset": 10})
    with pytest.raises(SovtpError, match="interval 3"):
        check_gold([SimpleNamespace(id="v1", media=ten_frames, meta={"intervals": iv}, error=None)])


# --- sampling: a count or a rate that means nothing -----------------------------------------

NONSENSE_SAMPLINGS = [
    "fps:nan",
    "fps:+nan",
    "fps:inf",
    "fps:infinity",
    "fps:1e400",
    "fps:0",
    "fps:-2",
    "uniform:0",
    "uniform:-1",
    "apex:0",
    "indices:",
    "indices:-1",
]


@pytest.mark.parametrize("spec", NONSENSE_SAMPLINGS)
def test_sampling_refuses_non_finite_and_non_positive_values(spec):
    """``fps:nan`` passed the up-front check and then every sample failed ("cannot convert float
    NaN to integer"); ``fps:inf`` silently meant every frame.  Both are refused by the parse."""
    from sovtp.media.sampling import Sampling

    with pytest.raises(ValueError, match=re.escape(f"bad sampling '{spec}'")):
        Sampling.parse(spec)


def test_bench_refuses_a_nan_frame_rate_in_one_line(tmp_path, capfd, monkeypatch):
    """The CLI reports it before any work: one line, exit 2, no run folder written."""
    monkeypatch.chdir(tmp_path)
    Image.fromarray(astronaut()).save("a.png")
    Path("m.csv").write_text("id,media,label\nx,a.png,happy\n")
    err = _one_line_error(capfd, "bench", "m.csv", "-s", "fps:nan")
    assert "bad sampling 'fps:nan'" in err
    assert not Path("runs").exists()


# --- score: what a spreadsheet writes --------------------------------------------------------


def test_score_reads_a_utf16_csv_with_its_byte_order_mark(tmp_path, capfd):
    """Excel's "Unicode text" and some exporters write UTF-16 with a BOM: `score` stopped at
    "'utf-8' codec can't decode byte 0xff"."""
    text = "id,gold,pred\r\na,happy,happy\r\nb,sad,sad\r\nc,sad,happy\r\n"
    (tmp_path / "p.csv").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    assert main(["score", str(tmp_path / "p.csv"), "--json", "--n-boot", "100"]) == 0
    s = json.loads(capfd.readouterr().out)["systems"][0]
    assert s["n"] == 3 and s["metrics"]["war"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("line", "words"), [("b,sad,sad,extra", "4 fields"), ("b,sad", "2 fields")]
)
def test_score_refuses_a_ragged_csv_line_by_number(tmp_path, capfd, line, words):
    """A line with more fields than the header had them filed under no column, one with fewer
    had None filled in: both were scored silently.  Refused, naming the line."""
    (tmp_path / "p.csv").write_text(f"id,gold,pred\na,happy,happy\n{line}\nc,sad,sad\n")
    err = _one_line_error(capfd, "score", tmp_path / "p.csv")
    assert f"p.csv:3: {words}, the header has 3" in err


# --- report.md escapes what report.html escapes ----------------------------------------------

EVIL = {
    "html": "<img src=x onerror=alert(1)>",
    "link": "[click](javascript:alert(1))",
    "image": "![t](http://tracker.example/p.png)",
    "undo": "\\[x\\](javascript:alert(2))",
}


def test_report_md_shows_user_strings_literally(tmp_path):
    """System, variant and label names are user strings: report.html escaped them, report.md
    passed raw HTML and live links/images through (a tracker image fetched on viewing)."""
    import markdown_it

    from sovtp.report.build import write_report

    labels = ["happy", EVIL["image"]]
    rows = []
    for v in (EVIL["html"], EVIL["undo"]):
        for i in range(6):
            gold = labels[i % 2]
            rows.append(
                {
                    "key": f"{i}|{v}",
                    "sample_id": f"s{i}",
                    "system": EVIL["link"],
                    "variant": v,
                    "gold": gold,
                    "label": gold,
                    "parse_status": "ok",
                }
            )
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    system = {"name": EVIL["link"], "backend": "openai", "options": {}}
    man = {
        "variants": [EVIL["html"], EVIL["undo"]],
        "systems": [system],
        "labels": {"name": "x", "labels": labels},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    write_report(tmp_path, n_boot=20)
    html = (
        markdown_it.MarkdownIt("commonmark")
        .enable("table")
        .render((tmp_path / "report.md").read_text())
    )
    assert "<img" not in html and "<a " not in html, html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown, as text
    assert "javascript:alert(1)" in html and "tracker.example" in html
