"""CAS(ME)² and CASME II as released: their Excel coding sheets and their frame folders.

Two datasets from the same lab with confusingly close names: **CAS(ME)²** (``casme_sq``: long
videos with macro- and micro-expression intervals, 4 emotion classes) and **CASME II**
(``casme_ii``: short micro-expression clips, 7 emotion words).  Both number frames from 1 in
unpadded image names (``img46.jpg``); a sample's ``start_frame``/``end_frame`` are 0-based
positions in its frame folder (``n − first image's number``), as sovtp's decoder counts
(:func:`sovtp.media.files.frame_files`, numbers compared as numbers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sovtp.data.common import Pending, emit, norm_word, vocabulary
from sovtp.data.ledger import Ledger
from sovtp.data.sample import ManifestError, Sample
from sovtp.data.xlsx import find_one, read_workbook

CASME_SQ_WORDS = vocabulary({"positive": [], "negative": [], "surprise": [], "others": ["other"]})
CASME_II_CLASSES = ["happiness", "disgust", "repression", "surprise", "others", "fear", "sadness"]
CASME_II_WORDS = vocabulary({c: [] for c in CASME_II_CLASSES} | {"others": ["other"]})
_INT = re.compile(r"^\d+$")


def _first_number(folder: Path) -> int:
    """The number in the name of a frame folder's first image (``img46.jpg`` → 46); 1 when the
    folder is missing (its sample then carries a media error)."""
    if not folder.is_dir():
        return 1
    from sovtp.media.files import frame_files

    files = frame_files(folder)
    m = re.search(r"(\d+)(?=\D*$)", files[0].stem) if files else None
    return int(m.group(1)) if m else 1


# --- CAS(ME)² ----------------------------------------------------------------------------------
def read_casme_sq(root: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The intervals of ``CAS(ME)^2code_final*.xlsx``, each with its frame folder (relative to
    the root) and 1-based frame numbers; see :func:`casme_sq` for the sheets."""
    f = find_one(root, "CAS(ME)^2code_final*.xlsx", "the coding workbook CAS(ME)^2code_final.xlsx")
    sheets = read_workbook(f)
    if len(sheets) < 3:
        raise ManifestError(f"{f}: expected three sheets (codes, naming rule 1, naming rule 2)")
    (s0, codes), (s1, subjects), (s2, videos) = sheets[:3]
    subj: dict[str, str] = {}
    for n, r in enumerate(subjects, 1):
        cells = [c for c in r if c]
        num = next((c for c in reversed(cells) if _INT.match(c)), None)
        folder = next((c.lower() for c in cells if re.match(r"^[sS]\d+$", c)), None)
        if num is None or folder is None:
            raise ManifestError(f"{f} sheet {s1!r} line {n}: not '<folder sNN> ... <number>': {r}")
        subj[str(int(num))] = folder
    vid: dict[str, str] = {}
    for n, r in enumerate(videos, 1):
        if len(r) < 2 or not _INT.match(r[0]) or not r[1]:
            raise ManifestError(f"{f} sheet {s2!r} line {n}: not '<code> <video name>': {r}")
        vid[r[1].strip().lower()] = r[0].zfill(4)
    led = Ledger(f"{f} sheet {s0!r}", sorted({*CASME_SQ_WORDS.values()}))
    out = []
    for n, r in enumerate(codes, 1):
        led.rows += 1
        line = ",".join(r)
        r = (r + [""] * 9)[:9]
        s, video, on, ap, off, aus, emo, kind, _self = r
        if not (_INT.match(s) and _INT.match(on) and _INT.match(ap) and _INT.match(off or "0")):
            led.bad_row(
                "not 'subject,video,onset,apex,offset,au,emotion,type,selfReport' with numbers",
                n,
                line,
            )
            continue
        if str(int(s)) not in subj:
            led.bad_row(f"whose subject is not in sheet {s1!r}", n, line)
            continue
        prefix = video.split("_")[0].lower()
        if prefix not in vid:
            led.bad_row(f"whose video name is not in sheet {s2!r}", n, line)
            continue
        label = CASME_SQ_WORDS.get(norm_word(emo))
        if label is None:
            led.unknown_label(emo, n, line)
            continue
        if "micro" not in kind.lower() and "macro" not in kind.lower():
            led.bad_row("whose type is neither macro- nor micro-expression", n, line)
            continue
        folder = subj[str(int(s))]
        out.append(
            {
                "folder": folder,
                "code": vid[prefix],
                "video": video,
                "onset": int(on),
                "apex": int(ap),
                "offset": int(off or 0),
                "aus": aus,
                "label": label,
                "type": "micro" if "micro" in kind.lower() else "macro",
            }
        )
    led.close(len(out), "intervals")
    return f, out


def casme_sq_folder(root: Path, folder: str, code: str) -> str:
    """``rawpic/s15/15_0101disgustingteeth`` for subject folder ``s15`` and video code ``0101``
    (the folder's name ends with the stimulus' name, which the sheets do not give)."""
    d = root / "rawpic" / folder
    hits = sorted(d.glob(f"{folder[1:]}_{code}*")) if d.is_dir() else []
    return f"rawpic/{folder}/{hits[0].name}" if hits else f"rawpic/{folder}/{folder[1:]}_{code}"


def casme_sq(root: Path, split: str | None = None, fold: int | None = None) -> Iterator[Sample]:
    """CAS(ME)² (``CAS(ME)^2``, "CASME square") macro- and micro-expression intervals::

        CAS(ME)^2/
          CAS(ME)^2code_final.xlsx    (or ...code_final(Updated).xlsx)
            sheet 0, no header, nine positional columns:
              subject, video, onset, apex, offset, au, emotion, type, selfReport
              "1 | disgust1_1 | 557 | 572 | 608 | 4+7 | negative | macro-expression | ..."
            sheet 1 (naming rule 1): a subject's folder and number, "s15 | 15 | 1"
            sheet 2 (naming rule 2): a video code and name, "0101 | disgust1"
          rawpic/s15/15_0101disgustingteeth/img1.jpg ...  (frames numbered from 1)

    ``subject`` (a number) becomes its folder (``s15``) through sheet 1, the part of ``video``
    before ``_`` its code (``0101``) through sheet 2 — as the public loaders read them
    (``naming rule1``: column 2 number → folder; ``naming rule2``: column 1 name → column 0
    code).  An offset of 0 means "use the apex".  Emotions: positive, negative, surprise,
    others.  Each interval is a sample (``s15_0101_557``) over its frames; ``split`` keeps
    ``macro`` or ``micro`` intervals; the leave-one-subject-out protocol groups by ``subject``.
    """
    f, rows = read_casme_sq(root)
    pending: list[Pending] = []
    bases: dict[str, int] = {}
    for r in rows:
        if split and split != r["type"]:
            continue
        rel = casme_sq_folder(root, r["folder"], r["code"])
        base = bases.setdefault(rel, _first_number(root / rel))
        end = r["offset"] if r["offset"] > 0 else r["apex"]
        pending.append(
            (
                f"{r['folder']}_{r['code']}_{r['onset']}",
                [rel],
                r["label"],
                {
                    "split": r["type"],
                    "subject": r["folder"],
                    "start_frame": r["onset"] - base,
                    "end_frame": end - base,
                    "meta": {"apex": r["apex"] - base, "aus": r["aus"], "video": r["video"]},
                },
            )
        )
    if not pending:
        raise ManifestError(f"{f}: no {split} intervals (split is macro or micro)")
    yield from emit(root, str(f), pending)


# --- CASME II ----------------------------------------------------------------------------------
def casme_ii(root: Path, split: str | None = None, fold: int | None = None) -> Iterator[Sample]:
    """CASME II micro-expression clips (7 emotion words)::

        CASME2/
          CASME2-coding-20140508.xlsx    (any CASME2-coding-*.xlsx) first sheet, header row:
              Subject, Filename, [Unnamed,] OnsetFrame, ApexFrame, OffsetFrame, [...,]
              Action Units, Estimated Emotion
              "01 | EP02_01f | 46 | 59 | 86 | AU12 | happiness"
          CASME2-RAW/sub01/EP02_01f/img46.jpg ...   (frames numbered as in the sheet)

    Columns are found by their header names (spaces and case ignored); a sheet without them is
    refused.  Emotions: happiness, disgust, repression, surprise, others, fear, sadness.  One
    sample per clip (``sub01_EP02_01f``) over onset..offset; ``meta["apex"]`` is the apex's
    position ("/" in the sheet, an unknown apex, gives None).
    """
    f = find_one(root, "CASME2-coding-*.xlsx", "the coding workbook CASME2-coding-*.xlsx")
    (name, rows), *_ = read_workbook(f)
    if not rows:
        raise ManifestError(f"{f}: the first sheet is empty")
    head = [norm_word(c) for c in rows[0]]
    need = {
        "subject": "subject",
        "filename": "filename",
        "onset": "onsetframe",
        "apex": "apexframe",
        "offset": "offsetframe",
        "aus": "actionunits",
        "emotion": "estimatedemotion",
    }
    col = {k: head.index(v) for k, v in need.items() if v in head}
    if len(col) < len(need):
        missing = [need[k] for k in need if k not in col]
        raise ManifestError(
            f"{f}: the first row must be the header (Subject, Filename, OnsetFrame, ApexFrame, "
            f"OffsetFrame, Action Units, Estimated Emotion); missing {', '.join(missing)} "
            f"in {rows[0]}"
        )
    led = Ledger(f"{f} sheet {name!r}", CASME_II_CLASSES)
    pending: list[Pending] = []
    for n, r in enumerate(rows[1:], 2):
        led.rows += 1
        r = r + [""] * (len(head) - len(r))
        line = ",".join(r)
        sub, clip = r[col["subject"]], r[col["filename"]]
        on, ap, off = r[col["onset"]], r[col["apex"]], r[col["offset"]]
        if not (_INT.match(sub) and clip and _INT.match(on) and _INT.match(off)):
            led.bad_row("without a subject number, a filename, onset and offset frames", n, line)
            continue
        label = CASME_II_WORDS.get(norm_word(r[col["emotion"]]))
        if label is None:
            led.unknown_label(r[col["emotion"]], n, line)
            continue
        s = f"sub{int(sub):02d}"
        rel = f"CASME2-RAW/{s}/{clip}"
        base = _first_number(root / rel)
        pending.append(
            (
                f"{s}_{clip}",
                [rel],
                label,
                {
                    "subject": s,
                    "start_frame": int(on) - base,
                    "end_frame": int(off) - base,
                    "meta": {
                        "apex": int(ap) - base if _INT.match(ap) else None,
                        "aus": r[col["aus"]],
                        "onset_frame": int(on),
                    },
                },
            )
        )
    led.close(len(pending))
    yield from emit(root, str(f), pending)
