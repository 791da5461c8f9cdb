"""Adapters for the official layouts of the benchmarks sovtp evaluates on.

Each adapter is a generator ``(root, split=..., fold=...) -> Iterator[Sample]`` that reads the
benchmark's own label files, streams one sample at a time and resolves every media path under
``root`` (:func:`~sovtp.data.sample.safe_path`).  A name in a label file that would lead out of
the root (``../``, a symlink pointing out) is refused for that sample alone: it is yielded with
``Sample.error`` set and a media path that names nothing, so its rows carry the error and the rest
of the benchmark runs.  The tree each expects is in its docstring; the tests build a miniature of
each tree.  A layout not covered here is one ``sovtp`` manifest
away (see :mod:`sovtp.data.manifest`).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from sovtp.data.sample import ManifestError, Sample, refused_path, safe_path

log = logging.getLogger(__name__)
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv")


def _find_media(root: Path, candidates: list[str]) -> Path | ManifestError | None:
    """The first candidate (relative to root) that exists: a video file or a frame folder; the
    refusal itself when a candidate leaves the root (see :func:`_sample`)."""
    for c in candidates:
        try:
            p = safe_path(root, c)
        except ManifestError as e:
            return e
        if p.exists():
            return p
    return None


def _inside(root: Path, path: Path) -> Path | ManifestError:
    """A path found by globbing under root, checked (a symlink may point out)."""
    try:
        return safe_path(root, path)
    except ManifestError as e:
        return e


def _sample(root: Path, sid: str, media: Path | ManifestError, label: str | None, **kw) -> Sample:
    """A Sample — or, for a refused path, one that carries the refusal as its error."""
    if isinstance(media, ManifestError):
        return Sample(sid, refused_path(root, sid), label, error=str(media), **kw)
    return Sample(sid, media, label, **kw)


def _need(root: Path, rel: str) -> Path:
    p = root / rel
    if not p.exists():
        raise ManifestError(f"{root}: expected {rel} (see the adapter's documented layout)")
    return p


# --- DFEW ------------------------------------------------------------------------------------
DFEW_LABELS = {
    1: "happy",
    2: "sad",
    3: "neutral",
    4: "angry",
    5: "surprise",
    6: "disgust",
    7: "fear",
}


def dfew(root: Path, split: str = "test", fold: int = 1) -> Iterator[Sample]:
    """DFEW (5-fold, 7 classes; labels 1..7 = happy sad neutral angry surprise disgust fear)::

    DFEW/
      Clip/original/00001.mp4 ...           (videos; or frame folders below)
      Clip/clip_224x224/00001/00001.jpg ... (one folder of frames per clip)
      EmoLabel_DataSplit/
        test(single-labeled)/set_1.csv ... set_5.csv    header: video_name,label
        train(single-labeled)/set_1.csv ... set_5.csv
    """
    f = _need(root, f"EmoLabel_DataSplit/{split}(single-labeled)/set_{fold}.csv")
    with f.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            name = str(row["video_name"]).strip()
            lab = int(row["label"])
            if lab not in DFEW_LABELS:  # 0 = not single-labelled
                continue
            pad = name.zfill(5) if name.isdigit() else name
            media = _find_media(
                root,
                [f"Clip/original/{pad}.mp4", f"Clip/original/{name}.mp4",
                 f"Clip/original/{pad}.avi", f"Clip/clip_224x224/{pad}", f"Clip/clip_224x224/{name}"],
            )  # fmt: skip
            if media is None:
                log.warning("DFEW clip %s not found under %s/Clip", name, root)
                continue
            yield _sample(root, pad, media, DFEW_LABELS[lab], split=split, fold=fold)


# --- MAFW ------------------------------------------------------------------------------------
def mafw(root: Path, split: str = "test", fold: int = 1) -> Iterator[Sample]:
    """MAFW single-expression set (5 folds, 11 classes)::

    MAFW/
      data/clips/00001.mp4 ...
      Train & Test Set/single/no_caption/set_1/train.txt, test.txt ... set_5/
          one clip per line: "00019.mp4 anger" (space, tab or comma separated)
    """
    f = _need(root, f"Train & Test Set/single/no_caption/set_{fold}/{split}.txt")
    for line in f.read_text(encoding="utf-8-sig").splitlines():
        parts = [p for p in re.split(r"[\s,]+", line.strip()) if p]
        if len(parts) < 2:
            continue
        clip, label = parts[0], parts[-1].lower()
        stem = Path(clip).stem
        media = _find_media(root, [f"data/clips/{clip}", f"data/clips/{stem}.mp4"])
        if media is None:
            log.warning("MAFW clip %s not found under %s/data/clips", clip, root)
            continue
        yield _sample(root, stem, media, label, split=split, fold=fold)


# --- FERV39k ---------------------------------------------------------------------------------
FERV_LABELS = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


def ferv39k(root: Path, split: str = "test", fold: int | None = None) -> Iterator[Sample]:
    """FERV39k, all scenes (7 classes; indices 0..6 = happy sad neutral angry surprise disgust
    fear)::

        FERV39k/
          2_ClipsforFaceCrop/<scene>/<...>/<clip>/0001.jpg ...   (frame folders)
          4_setups/All_scenes/train_All.csv, test_All.csv
              no header, space separated: "<clip folder relative to 2_ClipsforFaceCrop> <index>"
    """
    f = _need(root, f"4_setups/All_scenes/{split}_All.csv")
    for line in f.read_text(encoding="utf-8-sig").splitlines():
        parts = line.strip().split()
        if len(parts) < 2 or not parts[-1].lstrip("-").isdigit():
            continue
        rel, idx = " ".join(parts[:-1]), int(parts[-1])
        if not 0 <= idx < len(FERV_LABELS):
            continue
        media = _find_media(root, [f"2_ClipsforFaceCrop/{rel}", f"0_7_LabelClips/{rel}", rel])
        if media is None:
            log.warning("FERV39k clip %s not found", rel)
            continue
        yield _sample(root, rel.replace("/", "_"), media, FERV_LABELS[idx], split=split)


# --- Aff-Wild2 expression track --------------------------------------------------------------
ABAW_EXPR = ["neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise", "other"]


def affwild2(
    root: Path, split: str = "validation", fold: int | None = None, window: int = 30
) -> Iterator[Sample]:
    """Aff-Wild2, ABAW expression track (8 classes, one label per frame, −1 = not annotated)::

        AffWild2/
          videos/<batch>/<video>.mp4|.avi   (or videos/<video>.mp4)
          annotations/EXPR_Classification_Challenge/Train_Set/<video>[_left|_right].txt
                                                   /Validation_Set/...
              first line "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other",
              then one integer per frame

    Frame labels become samples of ``window`` consecutive frames (an interval of the video):
    frames labelled −1 are dropped, the sample's label is the majority of the rest, and windows
    with no labelled frame are skipped.  ``_left``/``_right`` (two annotated people) is kept
    in ``meta['side']``.
    """
    sets = {"train": "Train_Set", "validation": "Validation_Set", "val": "Validation_Set"}
    d = _need(root, f"annotations/EXPR_Classification_Challenge/{sets.get(split, split)}")
    videos = {p.stem: p for p in (root / "videos").rglob("*") if p.suffix.lower() in VIDEO_EXTS}
    for ann in sorted(d.glob("*.txt")):
        lines = ann.read_text(encoding="utf-8-sig").split()
        labs = [int(x) for x in lines[1:] if x.lstrip("-").isdigit()]
        name, side = ann.stem, None
        for suf in ("_left", "_right"):
            if name.endswith(suf):
                name, side = name[: -len(suf)], suf[1:]
        media = videos.get(name)
        if media is None:
            log.warning("Aff-Wild2 video %s not found under %s/videos", name, root)
            continue
        found = _inside(root, media)
        for start in range(0, len(labs), window):
            chunk = [x for x in labs[start : start + window] if 0 <= x < len(ABAW_EXPR)]
            if not chunk:
                continue
            lab = Counter(chunk).most_common(1)[0][0]
            meta = {"labelled_frames": len(chunk)}
            if side:
                meta["side"] = side
            yield _sample(
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


# --- DEEMO -----------------------------------------------------------------------------------
def deemo(root: Path, split: str = "test", fold: int | None = None) -> Iterator[Sample]:
    """DEEMO-MER (de-identified video, audio and transcript; emotion + reasoning)::

    DEEMO/
      videos/<id>.mp4            (faces already de-identified)
      audio/<id>.wav             (optional; McAdams-anonymised voice)
      annotations/<split>.jsonl  (or <split>.json, a list) with, per clip:
          {"id": ..., "emotion": ..., "description": ..., "transcript": ...}
    """
    ann = root / "annotations"
    f = ann / f"{split}.jsonl"
    if f.exists():
        items = (json.loads(x) for x in f.read_text(encoding="utf-8-sig").splitlines() if x.strip())
    else:
        items = iter(
            json.loads(_need(root, f"annotations/{split}.json").read_text(encoding="utf-8-sig"))
        )
    for it in items:
        sid = str(it.get("id") or it.get("video_id") or it.get("name"))
        media = _find_media(root, [f"videos/{sid}.mp4", f"videos/{sid}", f"videos/{sid}.avi"])
        if media is None:
            log.warning("DEEMO clip %s not found", sid)
            continue
        audio = _find_media(root, [f"audio/{sid}.wav", f"audio/{sid}.mp3"])
        if isinstance(audio, ManifestError):
            media, audio = audio, None
        yield _sample(
            root,
            sid,
            media,
            str(it.get("emotion") or it.get("label") or "").strip().lower() or None,
            split=split,
            transcript=it.get("transcript") or it.get("text"),
            audio=audio,
            description=it.get("description") or it.get("reasoning"),
        )


# --- BAH -------------------------------------------------------------------------------------
BAH_LABELS = {"1": "ambivalence", "0": "none"}


def bah(root: Path, split: str = "test", fold: int | None = None) -> Iterator[Sample]:
    """BAH (ambivalence / hesitancy, one label per video)::

    BAH/
      videos/<participant>/<video>.mp4
      splits/train.csv, val.csv, test.csv   header: video,label[,participant][,transcript]
          video relative to videos/; label 1 = A/H present, 0 = absent
      transcripts/<participant>/<video>.txt   (optional) what the participant says

    The transcript (the split's ``transcript`` column, else the text file) is what the BAH
    zero-shot prompts read beside the definitions; without one a prompt says so (``--asr``
    transcribes the audio instead).
    """
    f = _need(root, f"splits/{split}.csv")
    with f.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            rel = row["video"].strip()
            media = _find_media(root, [f"videos/{rel}", rel])
            if media is None:
                log.warning("BAH video %s not found", rel)
                continue
            raw = str(row["label"]).strip()
            yield _sample(
                root,
                Path(rel).with_suffix("").as_posix().replace("/", "_"),
                media,
                BAH_LABELS.get(raw, raw.lower()),
                split=split,
                subject=row.get("participant") or Path(rel).parts[0],
                transcript=_bah_transcript(root, rel, row),
            )


def _bah_transcript(root: Path, rel: str, row: dict[str, str]) -> str | None:
    """A BAH video's words: its split row's ``transcript``, else ``transcripts/<video>.txt``
    (a path inside the root only)."""
    if (row.get("transcript") or "").strip():
        return row["transcript"].strip()
    f = _find_media(root, [f"transcripts/{Path(rel).with_suffix('.txt').as_posix()}"])
    if isinstance(f, Path) and f.is_file():
        return f.read_text(encoding="utf-8", errors="replace").strip() or None
    return None


# --- CAS(ME)² --------------------------------------------------------------------------------
def casme2(root: Path, split: str | None = None, fold: int | None = None) -> Iterator[Sample]:
    """CAS(ME)² macro- and micro-expression intervals in long videos::

        CASME_sq/
          rawvideo/s15/15_0101disgustingteeth.avi ...
          annotations.csv   (the release's CAS(ME)^2code_final.xlsx saved as CSV) with header
              subject,video,onset,apex,offset,aus,emotion,type
              video is the clip code (e.g. 0101) or the file stem; offset 0 means "= apex"

    Each interval is a sample (frames onset..offset); ``split`` filters on ``type``
    (``macro`` / ``micro``); the leave-one-subject-out protocol groups by ``subject``.
    """
    f = _need(root, "annotations.csv")
    with f.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            kind = "micro" if "micro" in str(row.get("type", "")).lower() else "macro"
            if split and split != kind:
                continue
            subj = str(row["subject"]).strip().lstrip("s").zfill(2)
            code = str(row["video"]).strip()
            folder = root / "rawvideo" / f"s{subj}"
            hits = sorted(folder.glob(f"{subj}_{code}*")) or sorted(folder.glob(f"{code}*"))
            if not hits:
                log.warning("CAS(ME)² video %s of subject %s not found", code, subj)
                continue
            onset, apex, offset = (int(float(row[k] or 0)) for k in ("onset", "apex", "offset"))
            yield _sample(
                root,
                f"s{subj}_{code}_{onset}",
                _inside(root, hits[0]),
                str(row["emotion"]).strip().lower(),
                split=kind,
                subject=f"s{subj}",
                start_frame=onset,
                end_frame=offset if offset > 0 else apex,
                meta={"apex": apex, "aus": row.get("aus", "")},
            )


ADAPTERS: dict[str, Callable[..., Iterator[Sample]]] = {
    "dfew": dfew,
    "mafw": mafw,
    "ferv39k": ferv39k,
    "affwild2": affwild2,
    "deemo": deemo,
    "bah": bah,
    "casme2": casme2,
}
