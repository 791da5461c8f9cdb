"""Inputs that used to change a score without a word: byte-order marks, duplicate IDs, gold labels
outside the label set, filters that keep nothing, paths out of a dataset root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from sovtp.data.manifest import check_gold, manifest_columns, read_manifest, unknown_gold
from sovtp.data.sample import ManifestError
from sovtp.data.sources import open_dataset
from sovtp.labels import load_label_set
from sovtp.scoring.external import ScoringInputError, external_rows
from sovtp.scoring.summary import summarise

BOM = "\ufeff"


def touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


# --- byte-order marks ------------------------------------------------------------------------


def test_a_manifest_with_a_byte_order_mark_keeps_its_id_column(tmp_path):
    """Spreadsheet exports start with a BOM; read as text it became part of the 'id' header, the
    IDs fell back to the media path and two clips of one file collided."""
    touch(tmp_path / "a.mp4")
    (tmp_path / "m.csv").write_text(
        BOM + "id,media,label,start_frame\nx1,a.mp4,happy,0\nx2,a.mp4,sad,50\nx3,a.mp4,sad,99\n",
        encoding="utf-8",
    )
    assert [s.id for s in read_manifest(tmp_path / "m.csv")] == ["x1", "x2", "x3"]
    (tmp_path / "m.jsonl").write_text(BOM + json.dumps({"id": "j", "media": "a.mp4"}) + "\n")
    assert [s.id for s in read_manifest(tmp_path / "m.jsonl")] == ["j"]


def test_score_inputs_with_a_byte_order_mark(tmp_path):
    (tmp_path / "gold.csv").write_text(BOM + "name,gt\na,happy\nb,sad\nc,sad\n", encoding="utf-8")
    (tmp_path / "p.csv").write_text(BOM + "name,pred\na,happy\nb,sad\nc,happy\n", encoding="utf-8")
    rows, ls = external_rows(tmp_path / "p.csv", gold_file=tmp_path / "gold.csv")
    s = summarise(rows, ls.labels, n_boot=20, tier_by=None)["systems"][0]
    assert s["n"] == 3 and s["metrics"]["war"] == pytest.approx(2 / 3)
    trios = [("a", "happy", "happy"), ("b", "sad", "sad"), ("c", "sad", "happy")]
    lines = [json.dumps({"id": k, "gold": g, "pred": p}) for k, g, p in trios]
    (tmp_path / "p.jsonl").write_text(BOM + "\n".join(lines) + "\n")
    rows, _ = external_rows(tmp_path / "p.jsonl")
    assert [r["sample_id"] for r in rows] == ["a", "b", "c"]  # the first line is not lost


# --- duplicate IDs ---------------------------------------------------------------------------


def test_duplicate_ids_in_a_manifest_are_refused_with_their_lines(tmp_path):
    touch(tmp_path / "a.mp4")
    (tmp_path / "m.csv").write_text(
        "id,media,label\na,a.mp4,happy\nb,a.mp4,sad\na,a.mp4,sad\nc,a.mp4,sad\nb,a.mp4,happy\n"
    )
    with pytest.raises(ManifestError) as e:
        list(read_manifest(tmp_path / "m.csv"))
    assert "'a' on lines 2, 4" in str(e.value) and "'b' on lines 3, 6" in str(e.value)
    # intervals of one file without IDs get distinct default IDs (media@start)
    (tmp_path / "i.csv").write_text("media,start_frame,end_frame\na.mp4,0,9\na.mp4,10,19\n")
    assert [s.id for s in read_manifest(tmp_path / "i.csv")] == ["a.mp4@0", "a.mp4@10"]


def test_an_adapter_listing_a_clip_twice_is_refused(tmp_path):
    root = tmp_path / "DFEW"
    touch(root / "Clip/original/00001.mp4")
    d = root / "EmoLabel_DataSplit/test(single-labeled)"
    d.mkdir(parents=True)
    (d / "set_1.csv").write_text("video_name,label\n1,1\n1,2\n")
    with pytest.raises(ManifestError, match="'00001' is listed twice"):
        list(open_dataset(f"dfew:{root}", split="test", fold=1))


def test_duplicate_ids_in_score_inputs_are_refused_with_their_lines(tmp_path):
    (tmp_path / "p.csv").write_text("name,gt,pred\na,happy,happy\nb,sad,sad\na,happy,sad\n")
    with pytest.raises(ScoringInputError, match=r"'a' \(lines 2, 4\)"):
        external_rows(tmp_path / "p.csv")
    (tmp_path / "q.csv").write_text("name,pred\na,happy\nb,sad\n")
    (tmp_path / "g.csv").write_text("name,gt\na,happy\nb,sad\nb,happy\n")
    with pytest.raises(ScoringInputError, match=r"g.csv.*'b' \(lines 3, 4\)"):
        external_rows(tmp_path / "q.csv", gold_file=tmp_path / "g.csv")
    # two IDs that only share a file stem: each is still found by its exact ID
    (tmp_path / "r.csv").write_text("name,pred\n1/x.jpg,happy\n2/x.jpg,sad\n")
    (tmp_path / "h.csv").write_text("name,gt\n1/x.jpg,happy\n2/x.jpg,sad\nx,sad\n")
    rows, _ = external_rows(tmp_path / "r.csv", gold_file=tmp_path / "h.csv")
    assert [r["label"] for r in rows] == ["happy", "sad", None]  # 'x' is ambiguous: unanswered


# --- gold labels outside the label set -------------------------------------------------------


def test_gold_labels_outside_the_label_set_are_listed(tmp_path):
    (tmp_path / "p.csv").write_text(
        "name,gt,pred\na,happy,happy\nb,contempt,sad\nc,sad,sad\nd,contempt,sad\ne,bored,sad\n"
    )
    with pytest.raises(ScoringInputError) as e:
        external_rows(tmp_path / "p.csv", labels=load_label_set("happy,sad"))
    msg = str(e.value)
    assert "3 gold label(s)" in msg and "'contempt' (lines 3, 5)" in msg and "'bored'" in msg
    # the same check over a dataset, before a run
    touch(tmp_path / "a.mp4")
    (tmp_path / "m.jsonl").write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"id": "s1", "media": "a.mp4", "label": "Happiness"},  # a synonym: fine
                {"id": "s2", "media": "a.mp4", "label": "contempt"},
                {"id": "s3", "media": "a.mp4", "label": "sad", "face_labels": {"2": "bored"}},
            ]
        )
    )
    labels = load_label_set("happy,sad")
    assert unknown_gold(read_manifest(tmp_path / "m.jsonl"), labels) == {
        "contempt": ["s2"],
        "bored": ["s3"],
    }
    with pytest.raises(ManifestError, match=r"'contempt' ×1 \(s2\)"):
        check_gold(read_manifest(tmp_path / "m.jsonl"), labels)


# --- filters ---------------------------------------------------------------------------------


def test_a_filter_that_keeps_nothing_names_itself_and_the_columns(tmp_path):
    touch(tmp_path / "a.mp4")
    (tmp_path / "m.csv").write_text("id,media,label\na,a.mp4,happy\nb,a.mp4,sad\n")
    with pytest.raises(ManifestError) as e:
        list(open_dataset(str(tmp_path / "m.csv"), split="test", fold=1))
    msg = str(e.value)
    assert "split='test' and fold=1" in msg and "no 'split' or 'fold' column" in msg
    assert "columns are id, media, label" in msg
    assert manifest_columns(tmp_path / "m.csv") == ["id", "media", "label"]
    assert len(list(open_dataset(str(tmp_path / "m.csv"), split="all"))) == 2
    (tmp_path / "s.csv").write_text(
        "id,media,split,fold\na,a.mp4,train,1\nb,a.mp4,Test,2\nc,a.mp4,val,1\n"
    )
    with pytest.raises(ManifestError, match="split: Test, train, val"):
        list(read_manifest(tmp_path / "s.csv", split="dev"))
    got = open_dataset(str(tmp_path / "s.csv"), split="test", fold=2)
    assert [s.id for s in got] == ["b"]  # split case-insensitive; fold filters manifests too
    assert [s.id for s in read_manifest(tmp_path / "s.csv", fold=1)] == ["a", "c"]
    (tmp_path / "empty.csv").write_text("id,media\n")
    with pytest.raises(ManifestError, match="no rows"):
        list(read_manifest(tmp_path / "empty.csv"))


# --- paths out of a dataset root: one sample's error -----------------------------------------


def test_an_adapter_path_out_of_its_root_fails_that_sample_only(tmp_path):
    root = tmp_path / "BAH"
    touch(tmp_path / "secret.mp4")
    touch(root / "videos/p1/v1.mp4")
    touch(root / "splits/test.csv", b"video,label\np1/v1.mp4,1\n../../secret.mp4,0\n")
    ok, bad = open_dataset(f"bah:{root}", split="test")
    assert ok.error is None and ok.media.exists()
    assert "escapes the dataset root" in bad.error and bad.label == "none"
    assert not bad.media.exists() and bad.media.is_relative_to(root.resolve())


@pytest.mark.slow
def test_a_refused_sample_gets_error_rows_and_the_rest_runs(tmp_path, astronaut_png):
    from sovtp.engine.config import BenchConfig
    from sovtp.jsonl import iter_jsonl
    from sovtp.recipes.bench import run_bench

    root = tmp_path / "root"
    root.mkdir()
    Image.open(astronaut_png).save(tmp_path / "outside.png")  # a real face, never to be read
    Image.open(astronaut_png).save(root / "in.png")
    rows = [{"id": "out", "media": "../outside.png", "label": "happy"}]
    rows.append({"id": "in", "media": "in.png", "label": "happy"})
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = BenchConfig(
        data=str(root / "m.jsonl"),
        variants=["ladder/plain"],
        sampling="uniform:1",
        out=str(tmp_path / "run"),
        n_boot=20,
        gallery=0,
        annotation_cache=False,
    )
    run, _ = run_bench(cfg, report=False)
    by = {r["sample_id"]: r for r in iter_jsonl(run / "predictions.jsonl")}
    assert by["out"]["error"] and by["out"]["label"] is None and not by["out"].get("n_faces")
    assert by["in"]["error"] is None and by["in"]["n_faces"] == 1
