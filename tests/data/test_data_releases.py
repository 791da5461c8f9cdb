"""The official releases read as they ship (issue 20): a miniature of each tree is built here in
the release's own format (positional .xlsx sheets, title rows, GBK text, unquoted commas), and a
broken copy of each (a wrong folder name, a header added, a label word changed) is refused with
one line that says what and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovtp.data.sample import ManifestError
from sovtp.data.sources import open_dataset
from sovtp.media.files import frame_files


def touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def frames(folder: Path, first: int, last: int, pattern: str = "img{}.jpg") -> Path:
    for i in range(first, last + 1):
        touch(folder / pattern.format(i))
    return folder


def xlsx(path: Path, sheets: list[tuple[str, list[list[object]]]]) -> Path:
    """A workbook written with openpyxl, cells typed as a spreadsheet types them (numbers as
    numbers)."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets:
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def ids_labels(source: str, **kw) -> list[tuple[str, str | None]]:
    return [(s.id, s.label) for s in open_dataset(source, **kw)]


# --- FERV39k ---------------------------------------------------------------------------------
def _ferv(root: Path, lines: list[str], clips: str = "2_ClipsforFaceCrop") -> Path:
    frames(root / clips / "Action/Sad/0010", 1, 2, "{:04d}.jpg")
    frames(root / clips / "Daily/Happy/0003", 1, 2, "{:04d}.jpg")
    touch(root / "4_setups/All_scenes/test_All.csv", "\n".join(lines).encode() + b"\n")
    return root


FERV_LINES = ["Action/Sad/0010 Sad", "Daily/Happy/0003 Happy"]


def test_ferv39k_reads_label_words_and_clip_folders(tmp_path):
    """The split file as released: no header, 'Scene/Emotion/clipid LabelName'."""
    root = _ferv(tmp_path / "FERV39k", FERV_LINES)
    got = list(open_dataset(f"ferv39k:{root}"))
    assert [(s.id, s.label, s.subject) for s in got] == [
        ("Action_Sad_0010", "sad", "Action"),
        ("Daily_Happy_0003", "happy", "Daily"),
    ]
    assert got[0].media == (root / "2_ClipsforFaceCrop/Action/Sad/0010").resolve()


@pytest.mark.parametrize(
    "lines, clips, match",
    [
        (FERV_LINES, "2_ClipsForFaceCrop", "none of the 2 clip"),  # wrong folder name
        (["path label", *FERV_LINES], "2_ClipsforFaceCrop", r"not 'Scene/Emotion.*line 1"),
        (["Action/Sad/0010 Sadness?", FERV_LINES[1]], "2_ClipsforFaceCrop", "'Sadness\\?' x1"),
        (["Action/Sad/0010 1", "Daily/Happy/0003 0"], "2_ClipsforFaceCrop", "'1' x1.*'0' x1"),
        ([], "2_ClipsforFaceCrop", "no samples found in 0 row"),
    ],
)
def test_ferv39k_broken_copies_are_refused(tmp_path, lines, clips, match):
    root = _ferv(tmp_path / "FERV39k", lines, clips)
    with pytest.raises(ManifestError, match=match):
        list(open_dataset(f"ferv39k:{root}"))


def test_a_missing_clip_is_an_error_row_not_a_silent_gap(tmp_path):
    root = _ferv(tmp_path / "FERV39k", [*FERV_LINES, "Action/Sad/0099 Sad"])
    got = {s.id: s for s in open_dataset(f"ferv39k:{root}")}
    assert len(got) == 3 and got["Action_Sad_0010"].error is None
    assert "not found" in got["Action_Sad_0099"].error and not got["Action_Sad_0099"].media.exists()


# --- DFEW ------------------------------------------------------------------------------------
def _dfew(root: Path, folder: str = "test(single-labeled)", body: str = "1,1\n2,7\n") -> Path:
    touch(root / "Clip/original/00001.mp4")
    frames(root / "Clip/clip_224x224/00002", 1, 2, "{:05d}.jpg")
    touch(root / f"EmoLabel_DataSplit/{folder}/set_2.csv", ("video_name,label\n" + body).encode())
    return root


@pytest.mark.parametrize("folder", ["test(single-labeled)", "test(single_labeled)"])
def test_dfew_reads_both_folder_spellings(tmp_path, folder):
    root = _dfew(tmp_path / "DFEW", folder)
    got = list(open_dataset(f"dfew:{root}", split="test", fold=2))
    assert [(s.id, s.label, s.fold) for s in got] == [("00001", "happy", 2), ("00002", "fear", 2)]
    assert got[1].media.is_dir()


def test_dfew_keeps_each_clips_votes(tmp_path):
    """annotation.xlsx: a clip column and seven vote counts, kept per sample as soft labels."""
    root = _dfew(tmp_path / "DFEW")
    head = ["order", "1happy", "2sad", "3neutral", "4angry", "5surprise", "6disgust", "7fear"]
    xlsx(
        root / "Annotation/annotation.xlsx",
        [("Sheet1", [head, [1, 9, 0, 1, 0, 0, 0, 0], [2, 0, 1, 0, 0, 2, 0, 7]])],
    )
    a, b = open_dataset(f"dfew:{root}", fold=2)
    assert a.meta["votes"] == {
        "happy": 9,
        "sad": 0,
        "neutral": 1,
        "angry": 0,
        "surprise": 0,
        "disgust": 0,
        "fear": 0,
    }
    assert b.meta["votes"]["fear"] == 7 and b.row()["meta"]["votes"]["surprise"] == 2


@pytest.mark.parametrize(
    "folder, body, match",
    [
        ("test(single labeled)", "1,1\n", "expected EmoLabel_DataSplit/test"),
        ("test(single-labeled)", "1,1\n2,9\n", "'9' x1"),
        ("test(single-labeled)", "1,happy\n", "'happy' x1"),
    ],
)
def test_dfew_broken_copies_are_refused(tmp_path, folder, body, match):
    root = _dfew(tmp_path / "DFEW", folder, body)
    with pytest.raises(ManifestError, match=match):
        list(open_dataset(f"dfew:{root}", fold=2))


def test_dfew_without_its_header_is_refused(tmp_path):
    root = _dfew(tmp_path / "DFEW")
    (root / "EmoLabel_DataSplit/test(single-labeled)/set_2.csv").write_text("1,1\n2,7\n")
    with pytest.raises(ManifestError, match="header 'video_name,label'"):
        list(open_dataset(f"dfew:{root}", fold=2))


# --- MAFW ------------------------------------------------------------------------------------
def test_mafw_caption_files_are_gbk_and_tab_separated(tmp_path):
    root = tmp_path / "MAFW"
    touch(root / "data/clips/00025.mp4")
    touch(root / "data/clips/00026.mp4")
    lines = [
        "00025.mp4\tanger\t他皱着眉头\tHe frowns and shouts at the door",
        "00026.mp4\thelplessness\t她叹气\tShe sighs, looks down and shakes her head",
    ]
    touch(
        root / "Train & Test Set/single/with_caption/set_1/test.txt", "\n".join(lines).encode("gbk")
    )
    a, b = open_dataset(f"mafw:{root}", split="test", fold=1)
    assert (a.id, a.label, b.label) == ("00025", "anger", "helplessness")
    assert a.meta["captions"] == ["他皱着眉头", "He frowns and shouts at the door"]
    # the last token of a caption line is a caption word, never the label
    (root / "Train & Test Set/single/with_caption/set_1/test.txt").write_bytes(
        "00025.mp4\t他皱着眉头\tanger\n".encode("gbk")
    )
    with pytest.raises(ManifestError, match="'他皱着眉头' x1"):
        list(open_dataset(f"mafw:{root}"))


def test_mafw_no_caption_label_word_changed_is_refused(tmp_path):
    root = tmp_path / "MAFW"
    touch(root / "data/clips/00019.mp4")
    f = touch(root / "Train & Test Set/single/no_caption/set_1/test.txt", b"00019.mp4 angry\n")
    with pytest.raises(ManifestError, match="known: anger, .*: 'angry' x1"):
        list(open_dataset(f"mafw:{root}"))
    f.write_text("00019.mp4 anger\n")
    assert ids_labels(f"mafw:{root}") == [("00019", "anger")]


# --- Aff-Wild2 -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "folder", ["EXPR_Classification_Challenge", "EXPR_Recognition_Challenge"]
)  # ABAW3/5 and ABAW6
def test_affwild2_reads_both_folder_names(tmp_path, folder):
    root = tmp_path / "AffWild2"
    touch(root / "videos/batch1/10-60-1280x720.mp4")
    f = touch(root / f"annotations/{folder}/Validation_Set/10-60-1280x720.txt")
    head = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
    f.write_text(head + "\n" + "\n".join(["4"] * 20 + ["-1"] * 10))
    assert ids_labels(f"affwild2:{root}") == [("10-60-1280x720@0", "happiness")]
    f.write_text("\n".join(["4"] * 20))  # the header line dropped
    with pytest.raises(ManifestError, match="class header"):
        list(open_dataset(f"affwild2:{root}"))


# --- BAH -------------------------------------------------------------------------------------
def test_bah_official_split_lines_split_on_the_first_two_commas(tmp_path):
    root = tmp_path / "BAH"
    touch(root / "Videos/P12/Visite_1/q 3 answer.mp4")
    touch(root / "Videos/P40/Visite_1/q1.mp4")
    d = root / "dataset-splits/video-level/BAH_DB"
    touch(d / "class_id.yaml", b"With A-H: 1\nNo A-H: 0\n")
    touch(
        d / "split-0/test.txt",
        (
            b"Videos/P12/Visite_1/q 3 answer.mp4,1,Yes, I want to, but, well, maybe not\n"
            b"Videos/P40/Visite_1/q1.mp4,0,I will do it.\n"
        ),
    )
    a, b = open_dataset(f"bah:{root}")
    assert (a.id, a.label, a.subject) == ("P12_Visite_1_q 3 answer", "ambivalence", "P12")
    assert a.transcript == "Yes, I want to, but, well, maybe not" and a.media.exists()
    assert (b.label, b.transcript) == ("none", "I will do it.")
    (d / "split-0/test.txt").write_text("Videos/P40/Visite_1/q1.mp4,2,I will.\n")
    with pytest.raises(ManifestError, match="'2' x1"):
        list(open_dataset(f"bah:{root}"))


# --- CAS(ME)² --------------------------------------------------------------------------------
def _casme_sq(root: Path, codes: list[list[object]]) -> Path:
    frames(root / "rawpic/s15/15_0101disgustingteeth", 1, 40)
    xlsx(
        root / "CAS(ME)^2code_final.xlsx",
        [
            ("CASFEcode_final", codes),
            ("naming rule1", [["s15", 15, 1], ["s16", 16, 2]]),
            ("naming rule2", [[101, "disgust1"], [102, "disgust2"]]),
        ],
    )
    return root


CODES = [
    [1, "disgust1_1", 5, 9, 14, "4+7", "negative", "macro-expression", "disgust"],
    [1, "disgust1_2", 20, 24, 0, "12", "positive", "micro-expression", "happy"],
]


def test_casme_sq_reads_the_three_sheets(tmp_path):
    """Subject 1 → s15 (sheet 1), disgust1 → 0101 (sheet 2), frames img<N>.jpg from 1; an
    offset of 0 ends the interval at the apex."""
    root = _casme_sq(tmp_path / "CAS(ME)^2", CODES)
    a, b = open_dataset(f"casme_sq:{root}")
    assert (a.id, a.label, a.split, a.subject) == ("s15_0101_5", "negative", "macro", "s15")
    files = frame_files(a.media)
    assert files[a.start_frame].name == "img5.jpg" and files[a.end_frame].name == "img14.jpg"
    assert (b.split, files[b.end_frame].name) == ("micro", "img24.jpg")  # offset 0: the apex
    assert [s.id for s in open_dataset(f"casme_sq:{root}", split="micro")] == ["s15_0101_20"]


@pytest.mark.parametrize(
    "codes, match",
    [
        (
            [
                ["subject", "video", "onset", "apex", "offset", "au", "emotion", "type", "self"],
                *CODES,
            ],
            "1 of 3 row.*line 1",
        ),  # a header added
        ([[1, "disgust1_1", 5, 9, 14, "4", "negatve", "macro-expression", ""]], "'negatve'"),
        ([[7, "disgust1_1", 5, 9, 14, "4", "negative", "macro-expression", ""]], "subject"),
    ],
)
def test_casme_sq_broken_copies_are_refused(tmp_path, codes, match):
    root = _casme_sq(tmp_path / "CAS(ME)^2", codes)
    with pytest.raises(ManifestError, match=match):
        list(open_dataset(f"casme_sq:{root}"))


def test_casme2_is_an_ambiguous_name(tmp_path):
    with pytest.raises(ManifestError, match="casme_sq.*casme_ii"):
        open_dataset(f"casme2:{tmp_path}")


# --- CASME II --------------------------------------------------------------------------------
CASME_II_HEAD = [
    "Subject",
    "Filename",
    "Unnamed: 2",
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    "Unnamed: 6",
    "Action Units",
    "Estimated Emotion",
]


def test_casme_ii_reads_the_coding_sheet_and_raw_frames(tmp_path):
    root = tmp_path / "CASME2"
    frames(root / "CASME2-RAW/sub01/EP02_01f", 46, 90)
    rows = [CASME_II_HEAD, ["01", "EP02_01f", "", 46, 59, 86, "", "12", "happiness"]]
    xlsx(root / "CASME2-coding-20140508.xlsx", [("Sheet1", rows)])
    (s,) = open_dataset(f"casme_ii:{root}")
    files = frame_files(s.media)
    assert (s.id, s.label, s.subject) == ("sub01_EP02_01f", "happiness", "sub01")
    assert [files[i].name for i in (s.start_frame, s.meta["apex"], s.end_frame)] == [
        "img46.jpg",
        "img59.jpg",
        "img86.jpg",
    ]
    xlsx(root / "CASME2-coding-20140508.xlsx", [("Sheet1", rows[1:])])  # the header dropped
    with pytest.raises(ManifestError, match="header"):
        list(open_dataset(f"casme_ii:{root}"))


# --- MER -------------------------------------------------------------------------------------
def test_mer_labels_valence_and_subtitles(tmp_path):
    root = tmp_path / "MER2023"
    touch(root / "video/sample_00000007.mp4")
    touch(root / "video/sample_00000020.avi")
    touch(
        root / "train-label.csv",
        b"name,discrete,valence\nsample_00000007,happy,1.2\nsample_00000020,worry,-0.8\n",
    )
    touch(
        root / "subtitle_chieng.csv",
        "name,chinese,english\nsample_00000007,我很高兴,I am so glad\n".encode(),
    )
    a, b = open_dataset(f"mer2023:{root}", split="train")
    assert (a.id, a.label, a.transcript, a.meta) == (
        "sample_00000007",
        "happy",
        "I am so glad",
        {"valence": 1.2, "transcript_zh": "我很高兴"},
    )
    assert (b.label, b.media.suffix) == ("worried", ".avi")  # MER2026's spelling
    (root / "train-label.csv").write_text("name,discrete\nsample_00000007,joyful\n")
    with pytest.raises(ManifestError, match="'joyful' x1"):
        list(open_dataset(f"mer:{root}", split="train"))


# --- SAMM long videos and CAS(ME)² spotting -------------------------------------------------
SAMM_HEAD = [
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset",
    "Apex",
    "Offset",
    "Duration",
    "Type",
    "Action Units",
    "Notes",
]


def _samm(root: Path, facs_rows: list[list[object]]) -> Path:
    frames(root / "SAMM_longvideos/006_1", 1, 60, "006_1_{:04d}.jpg")
    title = [[f"SAMM Long Videos release, line {i}"] for i in range(10)]  # ten title rows
    xlsx(
        root / "SAMM_LongVideos_V3_Release.xlsx",
        [
            (
                "Sheet1",
                [
                    *title,
                    SAMM_HEAD,
                    ["006", "006_1_2", 1, 10, 14, 20, 11, "Micro - 1/2", "R12", ""],
                    ["006", "006_1_5", 1, 30, 40, 55, 26, "Macro", "R12+25", ""],
                ],
            )
        ],
    )
    facs_head = [
        "Subject",
        "Filename",
        "Inducement Code",
        "Onset Frame",
        "Apex Frame",
        "Offset Frame",
        "Duration",
        "Type",
        "Action Units",
        "Estimated Emotion",
    ]
    xlsx(
        root / "SAMM_Micro_FACS_Codes_v2.xlsx",
        [("Sheet1", [["SAMM micro-expressions"], facs_head, *facs_rows])],
    )
    return root


def test_samm_long_videos_join_the_facs_codes_for_micro_emotions(tmp_path):
    from sovtp.data.me_adapters import gold_spans

    facs = [["006", "006_1_2", 1, 10, 14, 20, 11, "Micro - 1/2", "R12", "Happiness"]]
    root = _samm(tmp_path / "SAMM_MEGC", facs)
    (v,) = open_dataset(f"samm:{root}")
    assert (v.id, v.meta["fps"]) == ("006_1", 200.0)
    # frame 10 is 006_1_0010.jpg, index 9; the macro movement has no emotion in the release
    assert gold_spans(v, None) == [(9.0, 19.0, "happiness"), (29.0, 54.0, None)]
    root = _samm(tmp_path / "broken", [[*facs[0][:-1], "Joy?"]])  # a label word changed
    with pytest.raises(ManifestError, match="'Joy\\?' x1"):
        list(open_dataset(f"samm:{root}"))


def test_casme_sq_spotting_reads_the_workbook(tmp_path):
    from sovtp.data.me_adapters import gold_spans

    root = _casme_sq(tmp_path / "CAS(ME)^2", CODES)
    (v,) = open_dataset(f"casme2_spot:{root}")
    assert (v.id, v.subject) == ("s15_0101", "s15")
    assert gold_spans(v, None) == [(4.0, 13.0, "negative"), (19.0, 23.0, "positive")]


def test_dfew_votes_sheet_without_the_seven_emotions_is_refused(tmp_path):
    root = _dfew(tmp_path / "DFEW")
    head = ["order", "1happy", "2sad", "3neutral", "4angry", "5surprise", "6disgust", "7afraid"]
    xlsx(root / "Annotation/annotation.xlsx", [("Sheet1", [head, [1, 9, 0, 1, 0, 0, 0, 0]])])
    with pytest.raises(ManifestError, match="seven emotions"):
        list(open_dataset(f"dfew:{root}", fold=2))


@pytest.mark.parametrize(
    "adapter, build, wrong",
    [
        ("dfew", lambda r: _dfew(r), ("Clip", "Clips")),
        ("casme_sq", lambda r: _casme_sq(r, CODES), ("rawpic", "raw_pic")),
    ],
)
def test_a_wrong_media_folder_name_is_refused(tmp_path, adapter, build, wrong):
    root = build(tmp_path / "root")
    (root / wrong[0]).rename(root / wrong[1])
    with pytest.raises(ManifestError, match="none of the .* clip"):
        list(open_dataset(f"{adapter}:{root}", fold=2))


# --- a root relative to the working folder ---------------------------------------------------
def _affwild2(root: Path) -> Path:
    touch(root / "videos/batch1/v1.mp4")
    head = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
    touch(
        root / "annotations/EXPR_Classification_Challenge/Validation_Set/v1.txt",
        (head + "\n" + "4\n" * 20).encode(),
    )
    return root


def _casme2_csv(root: Path) -> Path:
    touch(root / "rawvideo/s15/15_0101disgustingteeth.avi")
    head = "subject,video,onset,apex,offset,aus,emotion,type\n"
    touch(root / "annotations.csv", (head + "15,0101,10,20,40,12,happiness,micro\n").encode())
    return root


def _mmme(root: Path) -> Path:
    touch(root / "video/S01/T3.mp4")
    touch(root / "physio/S01/T3.csv", b"time,PPG\n0,1\n")
    head = "subject,trial,onset,apex,offset,type,emotion,fps\n"
    touch(root / "annotations.csv", (head + "S01,T3,50,55,61,micro,fear,90\n").encode())
    return root


SAMM_FACS = [["006", "006_1_2", 1, 10, 14, 20, 11, "Micro - 1/2", "R12", "Happiness"]]


@pytest.mark.parametrize(
    "adapter, build",
    [
        ("casme2_spot", lambda r: _casme_sq(r, CODES)),  # the CAS(ME)² workbook
        ("casme2_spot", _casme2_csv),  # the annotations.csv layout
        ("samm", lambda r: _samm(r, SAMM_FACS)),
        ("mmme", _mmme),
        ("affwild2", _affwild2),
    ],
)
def test_a_relative_root_finds_the_media_under_it(tmp_path, monkeypatch, adapter, build):
    """`casme2_spot:CASME_sq` (a root relative to the working folder) joined the root twice,
    `CASME_sq/CASME_sq/rawvideo/...`, so every video failed; an absolute root worked."""
    build(tmp_path / "DATA")
    monkeypatch.chdir(tmp_path)
    got = list(open_dataset(f"{adapter}:DATA"))
    assert got
    root = (tmp_path / "DATA").resolve()
    for s in got:
        assert s.error is None and Path(s.media).exists(), (s.media, s.error)
        assert Path(s.media).resolve().is_relative_to(root), s.media
        if s.meta.get("physio"):
            assert Path(s.meta["physio"]).exists(), s.meta["physio"]
