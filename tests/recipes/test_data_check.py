"""``sovtp data check``: counts, missing and unreadable media, duplicates, leaks and the published
counts, on miniature trees and manifests built here from skimage's astronaut."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from sovtp.cli.app import main
from sovtp.recipes.data_check import check_dataset


def _jpg(path: Path, size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = np.asarray(Image.fromarray(skdata.astronaut()).resize((size, size)))
    Image.fromarray(im).save(path)
    return path


def _dfew(root: Path, train: dict[str, int], test: dict[str, int]) -> Path:
    """DFEW as released: EmoLabel_DataSplit/{train,test}(single-labeled)/set_1.csv
    (``video_name,label``, labels 1..7) and one frame folder per clip under
    Clip/clip_224x224/."""
    for split, rows in (("train", train), ("test", test)):
        d = root / "EmoLabel_DataSplit" / f"{split}(single-labeled)"
        d.mkdir(parents=True, exist_ok=True)
        with (d / "set_1.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["video_name", "label"])
            for name, lab in rows.items():
                w.writerow([name, lab])
                _jpg(root / "Clip" / "clip_224x224" / name.zfill(5) / "00001.jpg")
    return root


def test_a_clean_tree_is_counted_per_split_fold_and_class_and_exits_0(tmp_path, capsys):
    root = _dfew(tmp_path / "DFEW", {"1": 1, "2": 2, "3": 3}, {"4": 1, "5": 5})
    rep = check_dataset(f"dfew:{root}", fold=1, decode=-1)
    assert rep.counts == {
        ("train", 1): {"happy": 1, "sad": 1, "neutral": 1},
        ("test", 1): {"happy": 1, "surprise": 1},
    }
    assert rep.decoded == 5 and not rep.unreadable and not rep.missing
    # the tiny copy is not the published DFEW: each fold-1 cell is named with both numbers
    assert [m.text() for m in rep.mismatches] == [
        "train fold 1: 3 samples, published 9356",
        "test fold 1: 2 samples, published 2341",
    ]
    # comparing with nothing published leaves only real findings: none
    clean = check_dataset(f"dfew:{root}", fold=1, decode=-1, published="none")
    assert clean.problems() == []
    assert main(["data", "check", f"dfew:{root}", "--fold", "1", "--published", "none"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "happy 1, neutral 1, sad 1" in out


def test_a_corrupt_frame_a_leak_and_an_unreadable_fold_are_each_reported(tmp_path, capsys):
    root = _dfew(tmp_path / "DFEW", {"1": 1, "2": 2, "9": 3}, {"2": 2, "3": 5})
    (root / "Clip" / "clip_224x224" / "00003" / "00001.jpg").write_bytes(b"\xff\xd8\xff garbage")
    shutil.rmtree(root / "Clip" / "clip_224x224" / "00009")  # listed, not there
    rep = check_dataset(f"dfew:{root}", fold=1, decode=-1, published="none")
    assert len(rep.unreadable) == 1 and "00003" in rep.unreadable[0]
    assert len(rep.missing) == 1 and rep.missing[0].startswith("00009:")
    assert rep.counts[("train", 1)] == {"happy": 1, "sad": 1, "neutral": 1}  # still counted
    assert rep.leaks == {1: [str((root / "Clip/clip_224x224/00002").resolve())]}
    # folds 2..5 have no split files: the evaluator's folds are each read and refused, one line
    every = check_dataset(f"dfew:{root}", decode=0, published="none")
    assert len(every.unreadable_splits) == 8
    assert all("set_" in u for u in every.unreadable_splits)
    rc = main(["data", "check", f"dfew:{root}", "--fold", "1", "--json", "--published", "none"])
    assert rc == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert any("unreadable media" in p for p in doc["problems"])
    assert any("both train and test of fold 1" in p for p in doc["problems"])


def _bah(root: Path, rows: dict[str, int]) -> Path:
    """BAH as released: dataset-splits/video-level/BAH_DB/class_id.yaml and split-0/<split>.txt,
    no header, ``Videos/<pid>/Visite_1/<file>.mp4,<0|1>,<transcript with commas>``; one real
    video per split (the rest of the listed videos are absent)."""
    from sovtp.media.sample import write_video

    d = root / "dataset-splits" / "video-level" / "BAH_DB"
    (d / "split-0").mkdir(parents=True)
    (d / "class_id.yaml").write_text("With A-H: 1\nNo A-H: 0\n")
    frame = np.asarray(Image.fromarray(skdata.astronaut()).resize((64, 64)))
    for split, n in rows.items():
        lines = [
            f"Videos/p{k:03d}/Visite_1/{split} clip {k}.mp4,{k % 2},well, I think so, maybe"
            for k in range(n)
        ]
        (d / "split-0" / f"{split}.txt").write_text("\n".join(lines) + "\n")
        first = root / lines[0].split(",")[0]
        first.parent.mkdir(parents=True, exist_ok=True)
        write_video(first, [frame, frame])
    return root


def test_bah_split_files_are_compared_with_the_published_616_110_392(tmp_path):
    """BAH's official split-0 files read by the adapter: the sizes match what is published;
    the listed videos that are absent are each missing; a test file one row short is named."""
    root = _bah(tmp_path / "BAH", {"train": 616, "val": 110, "test": 392})
    rep = check_dataset(f"bah:{root}", decode=-1)
    assert {c["split"]: (c["found"], c["published"]) for c in rep.compared} == {
        "train": (616, 616),
        "val": (110, 110),
        "test": (392, 392),
    }
    assert rep.mismatches == [] and rep.unreadable == [] and rep.decoded == 3
    assert len(rep.missing) == 616 + 110 + 392 - 3
    assert rep.counts[("val", None)] == {"none": 55, "ambivalence": 55}
    f = root / "dataset-splits/video-level/BAH_DB/split-0/test.txt"
    f.write_text("\n".join(f.read_text().splitlines()[:-1]) + "\n")
    rep = check_dataset(f"bah:{root}", split="test", decode=0)
    assert [m.text() for m in rep.mismatches] == ["test: 391 samples, published 392"]


FERV_TEST = {
    "Happy": 1473,
    "Sad": 1393,
    "Neutral": 1958,
    "Angry": 1487,
    "Surprise": 638,
    "Disgust": 467,
    "Fear": 431,
}


def _ferv_lines(counts: dict[str, int]) -> list[str]:
    """test_All.csv as released: no header, ``Scene/Emotion/clipid LabelName``."""
    return [f"Action/{w}/{k:04d} {w}" for w, n in counts.items() for k in range(n)]


def test_published_ferv39k_test_counts_are_compared_class_by_class(tmp_path):
    """FERV39k's test split file with the published 7,847 rows, read by the adapter (one clip
    folder present, the rest listed only): the counts match class by class; one label word
    changed shows as two classes off by one.  The same counts in a manifest compare with
    ``--published ferv39k``."""
    root = tmp_path / "FERV39k"
    f = root / "4_setups" / "All_scenes" / "test_All.csv"
    f.parent.mkdir(parents=True)
    f.write_text("\n".join(_ferv_lines(FERV_TEST)) + "\n")
    _jpg(root / "2_ClipsforFaceCrop" / "Action" / "Happy" / "0000" / "0001.jpg")
    rep = check_dataset(f"ferv39k:{root}", split="test", decode=0)
    assert rep.compared == [
        {
            "split": "test",
            "fold": None,
            "published": 7847,
            "found": 7847,
            "source": "FERV39k 4_setups/All_scenes/test_All.csv",
        }
    ]
    assert rep.mismatches == [] and len(rep.missing) == 7846
    lines = _ferv_lines(FERV_TEST)
    lines[1] = lines[1].replace(" Happy", " Sad")  # Action/Happy/0001 labelled Sad
    f.write_text("\n".join(lines) + "\n")
    rep = check_dataset(f"ferv39k:{root}", split="test", decode=0)
    assert sorted(m.text() for m in rep.mismatches) == [
        "test: 1394 'Sad' samples, published 1393",
        "test: 1472 'Happy' samples, published 1473",
    ]
    m = tmp_path / "ferv.csv"
    m.write_text(
        "id,media,label,split\n"
        + "".join(
            f"c{k},x/{k}.jpg,{ln.split()[1]},test\n" for k, ln in enumerate(_ferv_lines(FERV_TEST))
        )
    )
    assert check_dataset(str(m), decode=0, published="ferv39k").compared[0]["found"] == 7847


def test_manifest_duplicates_missing_media_and_a_refused_path_are_listed(tmp_path, capsys):
    _jpg(tmp_path / "a.jpg")
    (tmp_path / "m.jsonl").write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "1", "media": "a.jpg", "label": "happy", "split": "test"},
                {"id": "1", "media": "a.jpg", "label": "happy", "split": "test"},
                {"id": "2", "media": "a.jpg", "label": "sad", "split": "test"},
                {"id": "3", "media": "gone.jpg", "label": "sad", "split": "test"},
                {"id": "4", "media": "../outside.jpg", "label": "sad", "split": "test"},
            ]
        )
    )
    rep = check_dataset(str(tmp_path / "m.jsonl"), decode=-1)
    assert rep.duplicate_ids == {"1": 2}
    assert rep.duplicate_media == {str((tmp_path / "a.jpg").resolve()): ["1", "1", "2"]}
    assert rep.missing == [f"3: {(tmp_path / 'gone.jpg').resolve()}"]
    assert len(rep.refused) == 1 and "escapes the dataset root" in rep.refused[0]
    assert rep.decoded == 1 and rep.unreadable == []
    assert main(["data", "check", str(tmp_path / "m.jsonl")]) == 1
    out = capsys.readouterr().out
    assert "1 sample ID(s) listed more than once" in out
    assert "1 missing media" in out


def test_root_resolves_a_manifests_relative_media_elsewhere(tmp_path, capsys):
    """``--root``, the option bench takes: the manifest's relative paths resolve under it."""
    _jpg(tmp_path / "media" / "a.jpg")
    (tmp_path / "m.csv").write_text("id,media,label,split\n1,a.jpg,happy,test\n")
    assert main(["data", "check", str(tmp_path / "m.csv"), "--published", "none"]) == 1
    assert "1 missing media" in capsys.readouterr().out
    argv = ["data", "check", str(tmp_path / "m.csv"), "--root", str(tmp_path / "media")]
    assert main([*argv, "--published", "none"]) == 0


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sovtp.cli", "data", "check", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("dfew:{tmp}/nowhere", "no such folder"),
        ("nosuch:/x", "unknown dataset"),
        ("{tmp}/data.txt", "unknown dataset"),
    ],
)
def test_a_source_that_cannot_be_read_is_one_line_and_exit_2(tmp_path, source, why):
    p = _cli(source.format(tmp=tmp_path))
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and why in err[0] and err[0].startswith("sovtp: error:")
