"""Adapters for the official releases of the benchmarks sovtp evaluates on, read as they ship.

Each adapter is a generator ``(root, split=..., fold=...) -> Iterator[Sample]`` that reads the
benchmark's own label files and resolves every media path under ``root``
(:func:`~sovtp.data.sample.safe_path`).  The tree and the exact lines each one parses are in its
docstring, checked against the release descriptions and the public loaders cited there; the
tests build a miniature of each tree, and broken copies of it, at test time.

Rules every adapter keeps (:mod:`sovtp.data.ledger`):

- a label is mapped from the dataset's own *word* (or, where the release codes labels as numbers,
  the release's own code table) — never from another repository's index order;
- a row it cannot parse, or a label word outside the dataset's vocabulary, stops the adapter
  with one line that counts them and quotes the first (the CLI exits 2); so does finding no
  sample at all, or none of the listed clips under the root (a wrong folder name);
- a clip that is missing, or a name that would lead out of the root (``../``, a symlink
  pointing out), is refused for that sample alone: it is yielded with ``Sample.error`` set, so its
  rows carry the error and the rest of the benchmark runs.

CAS(ME)² and CASME II live in :mod:`sovtp.data.casme`, MER2023/2024/2025 in
:mod:`sovtp.data.mer`, the spotting layouts in :mod:`sovtp.data.me_adapters`; all are named in
:data:`sovtp.data.sources.ADAPTERS`.  A layout not covered here is one ``sovtp`` manifest away
(see :mod:`sovtp.data.manifest`).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sovtp.data.bah_release import bah
from sovtp.data.casme import casme_ii, casme_sq
from sovtp.data.common import (  # noqa: F401  (re-exported: the helpers' old home)
    VIDEO_EXTS,
    Pending,
    _find_media,
    _first,
    _inside,
    _need,
    _sample,
    emit,
    norm_word,
    vocabulary,
)
from sovtp.data.ledger import Ledger, check_media
from sovtp.data.mer import mer
from sovtp.data.sample import ManifestError, Sample

log = logging.getLogger(__name__)


# --- DFEW ------------------------------------------------------------------------------------
# DFEW's own code table (its paper and README: 1 Happy ... 7 Fear; 0 = not single-labelled)
DFEW_LABELS = {
    1: "happy",
    2: "sad",
    3: "neutral",
    4: "angry",
    5: "surprise",
    6: "disgust",
    7: "fear",
}
DFEW_WORDS = vocabulary(
    {
        "happy": ["happiness"],
        "sad": ["sadness"],
        "neutral": [],
        "angry": ["anger"],
        "surprise": ["surprised"],
        "disgust": ["disgusted"],
        "fear": ["fearful"],
    }
)


def dfew(root: Path, split: str = "test", fold: int = 1) -> Iterator[Sample]:
    """DFEW (5-fold, 7 classes; the release codes labels 1..7 = happy sad neutral angry surprise
    disgust fear, and 0 for clips without a single label)::

        DFEW/
          Clip/original/00001.mp4 ...           (videos; or frame folders below)
          Clip/clip_224x224/00001/00001.jpg ... (one folder of frames per clip)
          EmoLabel_DataSplit/
            test(single-labeled)/set_1.csv ... set_5.csv    header: video_name,label
            train(single-labeled)/set_1.csv ... set_5.csv       e.g. "1,1" (clip 00001, happy)
          Annotation/annotation.xlsx   (optional) the seven vote counts of every clip

    The split folders are ``train(single_labeled)`` in the zip's name and
    ``train(single-labeled)`` once extracted (the spelling public loaders read, e.g.
    ``EmoLabel_DataSplit/train(single-labeled)/set_1.csv`` read by pandas with ``video_name`` and
    ``label`` columns); both are accepted.  Published fold sizes (train/test): 9356/2341,
    9356/2341, 9357/2340, 9358/2339, 9361/2336.  Rows labelled 0 are left out (logged).

    With ``Annotation/annotation.xlsx`` each sample keeps its annotators' votes as soft labels,
    ``meta["votes"] = {"happy": 8, "sad": 0, ...}`` (:func:`dfew_votes`); the summary reports
    calibration and agreement with them (:mod:`sovtp.scoring.summary`).
    """
    f = _first(
        root,
        [
            f"EmoLabel_DataSplit/{split}(single-labeled)/set_{fold}.csv",
            f"EmoLabel_DataSplit/{split}(single_labeled)/set_{fold}.csv",
        ],
    )
    led = Ledger(f, [f"{k} {v}" for k, v in DFEW_LABELS.items()])
    votes = dfew_votes(root)
    pending: list[Pending] = []
    with f.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows or [c.strip().lower() for c in rows[0]] != ["video_name", "label"]:
        raise ManifestError(
            f"{f}: the first line must be the header 'video_name,label', found "
            f"{','.join(rows[0]) if rows else 'an empty file'!r}"
        )
    for n, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        led.rows += 1
        text = ",".join(row)
        if len(row) != 2 or not row[0].strip().isdigit():
            led.bad_row("not 'video_name,label' with a clip number", n, text)
            continue
        code = row[1].strip()
        if not code.lstrip("-").isdigit():
            led.unknown_label(code, n, text)
            continue
        if int(code) == 0:
            led.exclude("label 0 (no single label; not in the single-labelled protocol)", n, text)
            continue
        if int(code) not in DFEW_LABELS:
            led.unknown_label(code, n, text)
            continue
        pad = row[0].strip().zfill(5)
        kw: dict[str, Any] = {"split": split, "fold": fold}
        if votes and pad in votes:
            kw["meta"] = {"votes": votes[pad]}
        pending.append(
            (
                pad,
                [
                    f"Clip/original/{pad}.mp4",
                    f"Clip/original/{pad}.avi",
                    f"Clip/clip_224x224/{pad}",
                ],
                DFEW_LABELS[int(code)],
                kw,
            )
        )
    led.close(len(pending))
    if votes is not None and (no := [p[0] for p in pending if "meta" not in p[3]]):
        log.warning(
            "%s: %d clip(s) have no votes in Annotation/annotation.xlsx (first: %s)",
            f,
            len(no),
            no[0],
        )
    yield from emit(root, str(f), pending)


def dfew_votes(root: Path) -> dict[str, dict[str, int]] | None:
    """The seven vote counts of each DFEW clip from ``Annotation/annotation.xlsx``: ``{"00001":
    {"happy": 9, "sad": 0, ...}}``, or None without the file.  Columns are found by their header
    (the emotion words in any case, with or without DFEW's number: ``1happy``, ``Happy``); the
    clip column is the one headed ``order``, ``video_name``, ``clip`` or ``name`` (else the
    first).  A header without all seven emotions is refused, naming what it found."""
    p = root / "Annotation" / "annotation.xlsx"
    if not p.exists():
        return None
    from sovtp.data.xlsx import read_workbook

    (_, rows), *_ = read_workbook(p)
    for h, head in enumerate(rows[:10]):  # noqa: B007  (h: the header row, used below)
        cols = {i: DFEW_WORDS.get(norm_word(re.sub(r"\d", "", c))) for i, c in enumerate(head)}
        emo = {i: lab for i, lab in cols.items() if lab}
        if len(set(emo.values())) == 7:
            break
    else:
        raise ManifestError(
            f"{p}: no header row naming the seven emotions (found {rows[0] if rows else []})"
        )
    idc = next(
        (
            i
            for i, c in enumerate(head)
            if norm_word(c) in ("order", "videoname", "video", "clip", "name", "id")
        ),
        0,
    )
    led = Ledger(p)
    out: dict[str, dict[str, int]] = {}
    for n, row in enumerate(rows[h + 1 :], h + 2):
        led.rows += 1
        try:
            out[row[idc].strip().zfill(5)] = {
                lab: int(float(row[i] or 0)) for i, lab in emo.items()
            }
        except (ValueError, IndexError):
            led.bad_row("without a clip and seven vote counts", n, ",".join(row))
    led.close(len(out), "vote rows")
    return out


# --- MAFW ------------------------------------------------------------------------------------
MAFW_CLASSES = [
    "anger",
    "disgust",
    "fear",
    "happiness",
    "neutral",
    "sadness",
    "surprise",
    "contempt",
    "anxiety",
    "helplessness",
    "disappointment",
]
MAFW_WORDS = vocabulary({c: [] for c in MAFW_CLASSES})


def _mafw_text(f: Path) -> str:
    """A with_caption file's text: GBK as released (Chinese captions), UTF-8 when re-saved."""
    raw = f.read_bytes()
    for enc in ("gbk", "utf-8-sig"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ManifestError(f"{f}: neither GBK (as released) nor UTF-8 text")


def mafw(
    root: Path, split: str = "test", fold: int = 1, captions: bool | None = None
) -> Iterator[Sample]:
    """MAFW single-expression set (5 folds, 11 classes, labelled by name)::

        MAFW/
          data/clips/00001.mp4 ...
          Train & Test Set/single/no_caption/set_1/train.txt, test.txt ... set_5/
              "00025.mp4 anger"                 (clip, whitespace, class name)
          Train & Test Set/single/with_caption/set_1/train.txt, test.txt ...
              "00025.mp4<TAB>anger<TAB>caption ..."   tab-separated, GBK-encoded

    ``captions``: read the ``with_caption`` files (their captions become the sample's
    ``description`` and ``meta["captions"]``); by default ``no_caption``, else ``with_caption``
    when only that is there.  In a caption file the label is the second tab field, never the
    last token (a caption word); a second field that is not one of the 11 class names is refused.
    Classes are matched by name: public loaders disagree on index order (index 0 is ``anger`` in
    one, ``happiness`` in another).
    """
    base = f"Train & Test Set/single/%s/set_{fold}/{split}.txt"
    if captions is None:
        captions = (
            not (root / (base % "no_caption")).exists()
            and (root / (base % "with_caption")).exists()
        )
    f = _need(root, base % ("with_caption" if captions else "no_caption"))
    led = Ledger(f, MAFW_CLASSES)
    pending: list[Pending] = []
    text = _mafw_text(f) if captions else f.read_text(encoding="utf-8-sig")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        led.rows += 1
        parts = [p.strip() for p in line.split("\t")] if captions else line.split()
        if len(parts) < 2 or (not captions and len(parts) != 2):
            led.bad_row("not '<clip> <label>'" if not captions else "without a tab", n, line)
            continue
        clip, word = parts[0], parts[1]
        label = MAFW_WORDS.get(norm_word(word))
        if label is None:
            led.unknown_label(word, n, line)
            continue
        stem = Path(clip).stem
        kw: dict[str, Any] = {"split": split, "fold": fold}
        if captions:
            caps = [c for c in parts[2:] if c]
            kw["meta"] = {"captions": caps}
            kw["description"] = " / ".join(caps) or None
        pending.append((stem, [f"data/clips/{clip}", f"data/clips/{stem}.mp4"], label, kw))
    led.close(len(pending))
    yield from emit(root, str(f), pending)


# --- FERV39k ---------------------------------------------------------------------------------
FERV_WORDS = vocabulary(
    {"happy": [], "sad": [], "neutral": [], "angry": [], "surprise": [], "disgust": [], "fear": []}
)


def ferv39k(root: Path, split: str = "test", fold: int | None = None) -> Iterator[Sample]:
    """FERV39k, all scenes (7 classes, labelled by word)::

        FERV39k/
          2_ClipsforFaceCrop/Action/Sad/0010/0001.jpg ...   (one frame folder per clip)
          4_setups/All_scenes/train_All.csv, test_All.csv
              no header; two space-separated fields, "Scene/Emotion/clipid LabelName":
              "Action/Sad/0010 Sad"

    The clip is ``2_ClipsforFaceCrop/<first field>``; the label is the word (Happy, Sad,
    Neutral, Angry, Surprise, Disgust, Fear).  The published test split has 7,847 clips (Happy
    1,473, Sad 1,393, Neutral 1,958, Angry 1,487, Surprise 638, Disgust 467, Fear 431).
    """
    f = _need(root, f"4_setups/All_scenes/{split}_All.csv")
    led = Ledger(f, ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"])
    pending: list[Pending] = []
    for n, line in enumerate(f.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        led.rows += 1
        parts = line.split()
        if len(parts) != 2 or parts[0].count("/") != 2:
            led.bad_row("not 'Scene/Emotion/clipid LabelName'", n, line)
            continue
        rel, word = parts
        label = FERV_WORDS.get(norm_word(word))
        if label is None:
            led.unknown_label(word, n, line)
            continue
        pending.append(
            (
                rel.replace("/", "_"),
                [f"2_ClipsforFaceCrop/{rel}"],
                label,
                {"split": split, "subject": rel.split("/")[0]},
            )
        )
    led.close(len(pending))
    yield from emit(root, str(f), pending)


# --- Aff-Wild2 expression track --------------------------------------------------------------
ABAW_EXPR = ["neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise", "other"]
# the expression folder's name: ABAW3/ABAW5 ... ABAW6
ABAW_FOLDERS = ("EXPR_Classification_Challenge", "EXPR_Recognition_Challenge")


def affwild2(
    root: Path, split: str = "validation", fold: int | None = None, window: int = 30
) -> Iterator[Sample]:
    """Aff-Wild2, ABAW expression track (8 classes, one label per frame, −1 = not annotated)::

        AffWild2/
          videos/<batch>/<video>.mp4|.avi   (or videos/<video>.mp4)
          annotations/EXPR_Classification_Challenge/Train_Set/<video>[_left|_right].txt
                                                   /Validation_Set/...
              (ABAW3/5; ABAW6 names the folder EXPR_Recognition_Challenge; both are read)
              first line "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other",
              then one integer per frame (−1 .. 7, indices into that first line)

    The first line is the file's own class table and is checked word by word.  Frame labels
    become samples of ``window`` consecutive frames (an interval of the video): frames labelled
    −1 are dropped, the sample's label is the majority of the rest, and windows with no
    labelled frame are skipped.  ``_left``/``_right`` (two annotated people) is kept in
    ``meta['side']``.
    """
    sets = {"train": "Train_Set", "validation": "Validation_Set", "val": "Validation_Set"}
    sub = sets.get(split, split)
    d = _first(
        root, [f"{a}/{b}/{sub}" for a in ("annotations", "Annotations") for b in ABAW_FOLDERS]
    )
    videos = {p.stem: p for p in (root / "videos").rglob("*") if p.suffix.lower() in VIDEO_EXTS}
    anns = sorted(d.glob("*.txt"))
    if not anns:
        raise ManifestError(f"{d}: no annotation files (<video>.txt)")
    led = Ledger(d, ABAW_EXPR)
    out: list[Sample] = []
    missing: list[str] = []
    for ann in anns:
        lines = ann.read_text(encoding="utf-8-sig").split()
        led.rows += 1
        head = [norm_word(w) for w in (lines[0].split(",") if lines else [])]
        if head != ABAW_EXPR:
            led.bad_row(
                "without the class header 'Neutral,Anger,...,Other'",
                ann.name,
                lines[0] if lines else "(empty)",
            )
            continue
        bad = [x for x in lines[1:] if not (x.lstrip("-").isdigit() and -1 <= int(x) < 8)]
        if bad:
            led.bad_row("with frame labels outside -1..7", ann.name, bad[0])
            continue
        labs = [int(x) for x in lines[1:]]
        name, side = ann.stem, None
        for suf in ("_left", "_right"):
            if name.endswith(suf):
                name, side = name[: -len(suf)], suf[1:]
        media = videos.get(name)
        if media is None:
            missing.append(f"videos/{name}.mp4")
            out.append(
                Sample(
                    ann.stem,
                    root.resolve() / "videos" / f"{name}.mp4",
                    None,
                    split=split,
                    subject=name,
                    error=f"media not found: videos/{name}.*",
                )
            )
            continue
        found = _inside(root, media)
        for start in range(0, len(labs), window):
            chunk = [x for x in labs[start : start + window] if x >= 0]
            if not chunk:
                continue
            lab = Counter(chunk).most_common(1)[0][0]
            meta = {"labelled_frames": len(chunk)}
            if side:
                meta["side"] = side
            out.append(
                _sample(
                    root,
                    f"{ann.stem}@{start}",
                    found,
                    ABAW_EXPR[lab],
                    split=split,
                    subject=name,
                    start_frame=start,
                    end_frame=min(start + window, len(labs)) - 1,
                    meta=meta,
                )
            )
    led.close(len(out))
    check_media(str(d), len(anns), missing, root)
    yield from out


# --- DEEMO -----------------------------------------------------------------------------------
def deemo(root: Path, split: str = "test", fold: int | None = None) -> Iterator[Sample]:
    """DEEMO-MER (de-identified video, audio and transcript; emotion + reasoning)::

    DEEMO/
      videos/<id>.mp4            (faces already de-identified)
      audio/<id>.wav             (optional; McAdams-anonymised voice)
      annotations/<split>.jsonl  (or <split>.json, a list) with, per clip:
          {"id": ..., "emotion": ..., "description": ..., "transcript": ...}
    """
    f = root / "annotations" / f"{split}.jsonl"
    led = Ledger(f)
    if f.exists():
        items = []
        for n, x in enumerate(f.read_text(encoding="utf-8-sig").splitlines(), 1):
            if x.strip():
                led.rows += 1
                try:
                    items.append(json.loads(x))
                except json.JSONDecodeError:
                    led.bad_row("not JSON", n, x)
    else:
        f = _need(root, f"annotations/{split}.json")
        led = Ledger(f)
        items = json.loads(f.read_text(encoding="utf-8-sig"))
        led.rows = len(items)
    pending: list[Pending] = []
    for it in items:
        sid = str(it.get("id") or it.get("video_id") or it.get("name"))
        audio = _find_media(root, [f"audio/{sid}.wav", f"audio/{sid}.mp3"])
        kw = {
            "split": split,
            "transcript": it.get("transcript") or it.get("text"),
            "description": it.get("description") or it.get("reasoning"),
            "audio": audio if isinstance(audio, Path) else None,
        }
        cands = [f"videos/{sid}.mp4", f"videos/{sid}", f"videos/{sid}.avi"]
        if isinstance(audio, ManifestError):
            cands = [f"audio/{sid}.wav"]  # refused with the audio's reason below
        label = str(it.get("emotion") or it.get("label") or "").strip().lower() or None
        pending.append((sid, cands, label, kw))
    led.close(len(pending))
    yield from emit(root, str(f), pending)


ADAPTERS: dict[str, Callable[..., Iterator[Sample]]] = {
    "dfew": dfew,
    "mafw": mafw,
    "ferv39k": ferv39k,
    "affwild2": affwild2,
    "deemo": deemo,
    "bah": bah,
    "casme_sq": casme_sq,  # CAS(ME)², long videos (was "casme2", which reads as CASME II)
    "casme_ii": casme_ii,  # CASME II
    "mer": mer,
    "mer2023": mer,
    "mer2024": mer,
    "mer2025": mer,
}
# names that no longer mean one dataset: ADAPTER:ROOT with one of these is refused with the hint
RENAMED = {"casme2": "casme_sq (CAS(ME)^2, long videos) or casme_ii (CASME II)"}
