"""MER2023 / MER2024 / MER2025 (the MER challenge's multimodal emotion recognition sets).

The challenge ships label CSV files beside one folder of videos, and the subtitles of every clip
in Chinese and English.  The labels are six words (``neutral, angry, happy, sad, worried,
surprise``); later releases (MER2026) write ``worry`` and ``happiness``, read as synonyms.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from sovtp.data.common import VIDEO_EXTS, Pending, emit, norm_word, vocabulary
from sovtp.data.ledger import Ledger
from sovtp.data.sample import ManifestError, Sample

MER_CLASSES = ["neutral", "angry", "happy", "sad", "worried", "surprise"]
MER_WORDS = vocabulary(
    {
        "neutral": [],
        "angry": ["anger"],
        "happy": ["happiness"],
        "sad": ["sadness"],
        "worried": ["worry"],
        "surprise": ["surprised"],
    }
)
# split name -> the label files that hold it, in the order releases used them
MER_FILES = {
    "train": ["train-label.csv", "track1_train_disdim.csv"],
    "test1": ["test1-label.csv"],
    "test2": ["test2-label.csv"],
    "test3": ["test3-label.csv"],
    "semi": ["reference-semi.csv"],
    "noise": ["reference-noise.csv"],
}


def _read_csv(f: Path) -> list[list[str]]:
    raw = f.read_bytes()
    for enc in ("utf-8-sig", "gbk"):
        try:
            return list(csv.reader(raw.decode(enc).splitlines()))
        except UnicodeDecodeError:
            continue
    raise ManifestError(f"{f}: neither UTF-8 nor GBK text")


def subtitles(root: Path) -> dict[str, tuple[str, str]]:
    """``name → (chinese, english)`` from ``subtitle_chieng.csv`` (header ``name,chinese,
    english``), or nothing without the file."""
    f = root / "subtitle_chieng.csv"
    if not f.exists():
        return {}
    rows = _read_csv(f)
    head = [norm_word(c) for c in rows[0]] if rows else []
    if not {"name", "chinese", "english"} <= set(head):
        raise ManifestError(f"{f}: the header must be name,chinese,english (found {rows[:1]})")
    i, zh, en = head.index("name"), head.index("chinese"), head.index("english")
    return {
        r[i].strip(): (r[zh].strip(), r[en].strip()) for r in rows[1:] if len(r) > max(i, zh, en)
    }


def mer(root: Path, split: str = "test1", fold: int | None = None) -> Iterator[Sample]:
    """MER2023 / MER2024 / MER2025, as the challenge ships them::

        MER2023/
          train-label.csv       header name,discrete,valence    "sample_00000007,happy,1.2"
          test1-label.csv, test2-label.csv, test3-label.csv   (MER2023; test3: 834 clips)
          reference-semi.csv    header name,discrete            (MER2024 SEMI track)
          reference-noise.csv   (MER2024 NOISE track)
          track1_train_disdim.csv   header name,discrete,valence (MER2025 track 1 training set)
          subtitle_chieng.csv   header name,chinese,english     what is said, both languages
          video/<name>.mp4 ...  (any folder below the root: videos are found by name)

    ``split``: ``train`` (``train-label.csv``, else ``track1_train_disdim.csv``), ``test1`` ..
    ``test3``, ``semi`` or ``noise``.  Labels are the six words (``worry``/``happiness`` read as
    ``worried``/``happy``); ``valence`` goes to ``meta``; the English subtitle is the sample's
    transcript (the Chinese one in ``meta["transcript_zh"]``).
    """
    names = MER_FILES.get(split)
    if names is None:
        raise ManifestError(f"MER: unknown split {split!r} (one of {', '.join(MER_FILES)})")
    f = next((root / n for n in names if (root / n).exists()), None)
    if f is None:
        raise ManifestError(f"{root}: expected {' or '.join(names)} for split {split!r}")
    rows = _read_csv(f)
    head = [norm_word(c) for c in rows[0]] if rows else []
    if "name" not in head or "discrete" not in head:
        raise ManifestError(
            f"{f}: the first line must be a header with name and discrete (found "
            f"{','.join(rows[0]) if rows else 'an empty file'!r})"
        )
    i, d = head.index("name"), head.index("discrete")
    v = head.index("valence") if "valence" in head else None
    subs = subtitles(root)
    videos = {
        p.stem: p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix.lower() in VIDEO_EXTS
    }
    led = Ledger(f, MER_CLASSES)
    pending: list[Pending] = []
    for n, r in enumerate(rows[1:], 2):
        if not any(c.strip() for c in r):
            continue
        led.rows += 1
        line = ",".join(r)
        if len(r) <= max(i, d) or not r[i].strip():
            led.bad_row("without a name and a discrete label", n, line)
            continue
        name, word = r[i].strip(), r[d].strip()
        label = MER_WORDS.get(norm_word(word))
        if label is None:
            led.unknown_label(word, n, line)
            continue
        meta: dict[str, object] = {}
        if v is not None and len(r) > v and r[v].strip():
            try:
                meta["valence"] = float(r[v])
            except ValueError:
                led.bad_row("whose valence is not a number", n, line)
                continue
        zh, en = subs.get(name, ("", ""))
        if zh:
            meta["transcript_zh"] = zh
        pending.append(
            (
                name,
                [videos.get(name, f"video/{name}.mp4")],
                label,
                {"split": split, "transcript": en or zh or None, "meta": meta},
            )
        )
    led.close(len(pending))
    yield from emit(root, str(f), pending)
