"""Datasets: manifests, safe paths, the official layouts (miniature trees built here), HF."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sovtp.data.adapters import ADAPTERS
from sovtp.data.manifest import read_manifest, write_manifest
from sovtp.data.sample import ManifestError, safe_path
from sovtp.data.sources import open_dataset, select


def touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_manifest_csv_and_jsonl_columns(tmp_path):
    touch(tmp_path / "clips" / "a.mp4")
    touch(tmp_path / "clips" / "b.mp4")
    touch(tmp_path / "audio" / "a.wav")
    (tmp_path / "m.csv").write_text(
        "id,media,label,split,fold,subject,transcript,audio,face_labels,start_frame,end_frame,scene\n"
        'a,clips/a.mp4,happy,test,1,p01,"hi there",audio/a.wav,"{""1"": ""sad""}",10,40,indoor\n'
        "b,clips/b.mp4,sad,train,2,p02,,,,,,\n"
    )
    a, b = read_manifest(tmp_path / "m.csv")
    assert a.id == "a" and a.media == (tmp_path / "clips/a.mp4").resolve() and a.fold == 1
    assert a.transcript == "hi there" and a.audio.name == "a.wav" and a.face_labels == {1: "sad"}
    assert (a.start_frame, a.end_frame, a.meta) == (10, 40, {"scene": "indoor"})
    assert b.audio is None and b.face_labels == {} and not b.has_interval
    assert [s.id for s in read_manifest(tmp_path / "m.csv", split="train")] == ["b"]
    # round trip through JSONL
    n = write_manifest([a, b], tmp_path / "m.jsonl", tmp_path)
    a2, b2 = read_manifest(tmp_path / "m.jsonl")
    assert n == 2 and a2 == a and b2 == b


@pytest.mark.parametrize("bad", ["../outside.mp4", "clips/../../outside.mp4"])
def test_manifest_relative_paths_cannot_escape_their_root(tmp_path, bad):
    """A relative path out of the root is refused for its sample alone: the rows after it run."""
    root = tmp_path / "root"
    touch(tmp_path / "outside.mp4")
    touch(root / "ok.mp4")
    rows = [{"id": "bad", "media": bad, "label": "happy"}, {"id": "ok", "media": "ok.mp4"}]
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    bad_s, ok = read_manifest(root / "m.jsonl")
    assert "escapes" in bad_s.error and ":1" in bad_s.error
    assert not bad_s.media.exists() and bad_s.media.is_relative_to(root.resolve())
    assert ok.error is None and ok.media == (root / "ok.mp4").resolve()


def test_manifest_absolute_paths_outside_the_root_are_refused(tmp_path):
    """Issue 24: ``{"media": "/any/where/secret.jpg"}`` was annotated and sent to the server.
    Outside the root it is now an error for that sample alone (nothing read); absolute paths
    inside the root are fine."""
    clip = touch(tmp_path / "elsewhere" / "a.mp4")
    root = tmp_path / "root"
    inside = touch(root / "clips" / "b.mp4")
    (root / "m.csv").write_text(f"id,media,audio\na,{clip},\nb,{inside},\nc,clips/b.mp4,{clip}\n")
    a, b, c = read_manifest(root / "m.csv")
    assert "escapes the dataset root" in a.error and "--allow-outside-root" in a.error
    assert ":2" in a.error and not a.media.exists() and a.media.is_relative_to(root.resolve())
    assert b.error is None and b.media == inside.resolve()
    assert "escapes" in c.error  # the audio path counts as much as the media


def test_manifest_outside_root_allowed_explicitly_and_marked(tmp_path):
    """--allow-outside-root takes such paths as given, and every such sample says so in its
    rows (``meta.outside_root``); paths inside the root are not marked."""
    clip = touch(tmp_path / "elsewhere" / "a.mp4")
    root = tmp_path / "root"
    touch(root / "b.mp4")
    (root / "m.jsonl").write_text(
        json.dumps({"id": "a", "media": str(clip)})
        + "\n"
        + json.dumps({"id": "up", "media": "../elsewhere/a.mp4"})
        + "\n"
        + json.dumps({"id": "b", "media": "b.mp4"})
        + "\n"
    )
    a, up, b = open_dataset(str(root / "m.jsonl"), allow_outside_root=True)
    assert a.error is None and a.media == clip.resolve() and up.media == clip.resolve()
    assert a.row()["meta"] == {"outside_root": True} and up.meta == {"outside_root": True}
    assert b.meta == {} and b.error is None
    # written back: absolute where it does not lie under the root
    write_manifest([a], root / "back.jsonl", root)
    assert json.loads((root / "back.jsonl").read_text())["media"] == str(clip.resolve())


def test_symlink_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    touch(tmp_path / "secret.mp4")
    (root / "link.mp4").symlink_to(tmp_path / "secret.mp4")
    with pytest.raises(ManifestError):
        safe_path(root, "link.mp4")


def test_manifest_streams(tmp_path):
    """The first rows are usable before a broken row further down is ever read."""
    lines = [json.dumps({"id": f"s{i}", "media": f"c{i}.mp4", "label": "happy"}) for i in range(3)]
    (tmp_path / "m.jsonl").write_text("\n".join([*lines, "{not json"]) + "\n")
    it = open_dataset(str(tmp_path / "m.jsonl"))
    assert [s.id for s in islice(it, 3)] == ["s0", "s1", "s2"]
    with pytest.raises(ManifestError, match=":4"):
        next(it)


def test_select_limit_and_seeded_shuffle(tmp_path):
    (tmp_path / "m.jsonl").write_text(
        "".join(json.dumps({"id": f"s{i}", "media": f"c{i}.mp4"}) + "\n" for i in range(50))
    )

    def ids(**kw):
        return [s.id for s in select(read_manifest(tmp_path / "m.jsonl"), **kw)]

    assert ids(limit=3) == ["s0", "s1", "s2"]
    a, b = ids(limit=5, shuffle=True, seed=7), ids(limit=5, shuffle=True, seed=7)
    assert a == b and len(set(a)) == 5 and a != ids(limit=5)
    assert ids(limit=5, shuffle=True, seed=8) != a
    assert sorted(ids(shuffle=True, seed=1)) == sorted(ids())


# --- official layouts ------------------------------------------------------------------------


def test_dfew_layout(tmp_path):
    root = tmp_path / "DFEW"
    touch(root / "Clip/original/00001.mp4")
    touch(root / "Clip/clip_224x224/00002/00001.jpg")
    touch(root / "Clip/original/00004.mp4")
    d = root / "EmoLabel_DataSplit/test(single-labeled)"
    d.mkdir(parents=True)
    (d / "set_2.csv").write_text("video_name,label\n1,1\n2,7\n3,4\n4,0\n")
    got = list(open_dataset(f"dfew:{root}", split="test", fold=2))
    # clip 4 (label 0) is not single-labelled: left out, and logged; clip 3 is missing: its
    # sample carries the error, so its rows say so instead of the benchmark shrinking unseen
    assert [(s.id, s.label, s.fold) for s in got] == [
        ("00001", "happy", 2),
        ("00002", "fear", 2),
        ("00003", "angry", 2),
    ]
    assert got[1].media.is_dir() and got[0].error is None
    assert "not found" in got[2].error
    with pytest.raises(ManifestError, match="set_5.csv"):
        list(open_dataset(f"dfew:{root}", fold=5))


def test_mafw_layout(tmp_path):
    root = tmp_path / "MAFW"
    touch(root / "data/clips/00019.mp4")
    touch(root / "data/clips/00020.mp4")
    f = touch(root / "Train & Test Set/single/no_caption/set_3/test.txt")
    f.write_text("00019.mp4 anger\n00020.mp4\thelplessness\n\n")
    got = list(open_dataset(f"mafw:{root}", split="test", fold=3))
    assert [(s.id, s.label) for s in got] == [("00019", "anger"), ("00020", "helplessness")]


def test_ferv39k_layout(tmp_path):
    root = tmp_path / "FERV39k"
    touch(root / "2_ClipsforFaceCrop/Action/Fight/0001/0001.jpg")
    touch(root / "2_ClipsforFaceCrop/Daily/Talk/0007/0001.jpg")
    f = touch(root / "4_setups/All_scenes/test_All.csv")
    f.write_text("Action/Fight/0001 Angry\nDaily/Talk/0007 Happy\n")
    got = list(open_dataset(f"ferv39k:{root}"))
    assert [(s.id, s.label) for s in got] == [
        ("Action_Fight_0001", "angry"),
        ("Daily_Talk_0007", "happy"),
    ]


def test_affwild2_frame_labels_become_windows(tmp_path):
    root = tmp_path / "AffWild2"
    touch(root / "videos/batch1/10-60-1280x720.mp4")
    ann = root / "annotations/EXPR_Classification_Challenge/Validation_Set"
    labels = [-1] * 5 + [4] * 20 + [0] * 5 + [-1] * 30 + [2] * 10
    touch(ann / "10-60-1280x720_left.txt").write_text(
        "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n"
        + "\n".join(map(str, labels))
    )
    got = list(open_dataset(f"affwild2:{root}", split="validation"))
    # windows of 30: [happiness×20, neutral×5] → happiness; [-1×30] dropped; [disgust×10]
    assert [(s.label, s.start_frame, s.end_frame) for s in got] == [
        ("happiness", 0, 29),
        ("disgust", 60, 69),
    ]
    assert (
        got[0].meta == {"labelled_frames": 25, "side": "left"}
        and got[0].subject == "10-60-1280x720"
    )


def test_deemo_layout(tmp_path):
    root = tmp_path / "DEEMO"
    touch(root / "videos/d001.mp4")
    touch(root / "audio/d001.wav")
    touch(root / "annotations/test.jsonl").write_text(
        json.dumps(
            {
                "id": "d001",
                "emotion": "Worried",
                "description": "She frowns (AU4).",
                "transcript": "I don't know.",
            }
        )
        + "\n"
    )
    (s,) = open_dataset(f"deemo:{root}")
    assert (s.label, s.description, s.transcript, s.audio.name) == (
        "worried",
        "She frowns (AU4).",
        "I don't know.",
        "d001.wav",
    )


def test_bah_layout(tmp_path):
    root = tmp_path / "BAH"
    touch(root / "videos/p07/q3.mp4")
    touch(root / "splits/test.csv").write_text("video,label\np07/q3.mp4,1\n")
    (s,) = open_dataset(f"bah:{root}")
    assert (s.id, s.label, s.subject) == ("p07_q3", "ambivalence", "p07")
    assert s.transcript is None
    touch(root / "transcripts/p07/q3.txt").write_text("Yes, I want to... but maybe not.\n")
    (s,) = open_dataset(f"bah:{root}")
    assert s.transcript == "Yes, I want to... but maybe not."  # the prompts read it
    (root / "splits/test.csv").write_text("video,label,transcript\np07/q3.mp4,0,I will.\n")
    (s,) = open_dataset(f"bah:{root}")
    assert (s.label, s.transcript) == ("none", "I will.")


def test_every_adapter_has_a_documented_tree():
    for name, fn in ADAPTERS.items():
        assert fn.__doc__ and "/" in fn.__doc__, name


def test_unknown_source_explains_the_forms():
    with pytest.raises(ManifestError, match="dfew:ROOT"):
        open_dataset("nope")


# --- media of the official layouts -----------------------------------------------------------


def test_frame_folder_decodes_only_the_sampled_frames(tmp_path, astronaut_png):
    from sovtp.annotate.cache import file_sha256
    from sovtp.media.video import DecodeStats, iter_frames, probe

    img = np.asarray(Image.open(astronaut_png).resize((128, 128)))
    for i in range(20):
        Image.fromarray(np.roll(img, i, axis=1)).save(tmp_path / f"{i + 1:05d}.jpg")
    info = probe(tmp_path)
    assert (info.kind, info.n_frames, info.width) == ("frames", 20, 128)
    stats = DecodeStats()
    frames = list(iter_frames(tmp_path, "uniform:4", stats))
    assert len(frames) == 4 and stats.decoded == 4
    assert frames[0].image.shape == (128, 128, 3)
    assert file_sha256(tmp_path) != file_sha256(tmp_path / "00001.jpg")


# --- HF datasets -----------------------------------------------------------------------------


def test_hf_parquet_with_image_and_classlabel(tmp_path, astronaut_png):
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=["happy", "sad"]),
            "uid": datasets.Value("string"),
        }
    )
    cell = {"bytes": astronaut_png.read_bytes(), "path": "astronaut.png"}  # encoded in the parquet
    ds = datasets.Dataset.from_dict(
        {"image": [cell] * 3, "label": [0, 1, 0], "uid": ["a", "b", "c"]}, features=feats
    )
    ds.to_parquet(str(tmp_path / "test.parquet"))
    got = list(open_dataset(f"hf:{tmp_path / 'test.parquet'}", split="test", id_column="uid"))
    assert [(s.id, s.label) for s in got] == [("a", "happy"), ("b", "sad"), ("c", "happy")]
    assert got[0].media.exists() and got[0].media == got[1].media  # stored once, by content
    assert got[0].media.read_bytes() == astronaut_png.read_bytes()


def test_hf_cell_naming_a_file_outside_its_folder_is_refused(tmp_path, astronaut_png):
    datasets = pytest.importorskip("datasets")
    d = tmp_path / "ds"
    d.mkdir()
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": None, "path": str(astronaut_png)}], "label": ["happy"]}, features=feats
    )
    ds.to_parquet(str(d / "test.parquet"))
    (s,) = open_dataset(f"hf:{d}", split="test")
    assert "escapes" in s.error and not s.media.exists() and s.label == "happy"


def test_hf_video_column(tmp_path, pan_mp4):
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"video": datasets.Video(), "label": datasets.Value("string")})
    cell = {"bytes": pan_mp4.read_bytes(), "path": "pan.mp4"}
    datasets.Dataset.from_dict({"video": [cell], "label": ["happy"]}, features=feats).to_parquet(
        str(tmp_path / "t.parquet")
    )
    (s,) = open_dataset(f"hf:{tmp_path / 't.parquet'}", split="test")
    from sovtp.media.video import probe

    assert s.label == "happy" and s.media.suffix == ".mp4" and probe(s.media).n_frames == 30


def test_a_segment_sampling_past_its_end_names_the_clip(pan_mp4):
    """`indices:` beyond a manifest segment's frames names the video, not `<clip>`."""
    from sovtp.data.sample import Sample, sampling_for
    from sovtp.errors import MediaError

    s = Sample(id="a", media=pan_mp4, label="happy", start_frame=2, end_frame=5)
    assert sampling_for(s, "indices:0,3") == "indices:2,5"
    with pytest.raises(MediaError, match=pan_mp4.name):
        sampling_for(s, "indices:1000")
