"""Micro-expression *spotting* layouts: one sample per long video, with every annotated interval.

Spotting is scored per video (:mod:`sovtp.scoring.tasks`, MEGC protocol), so these adapters
yield one :class:`~sovtp.data.sample.Sample` per video, its ground truth in ``meta``::

    meta = {"fps": 30.0,
            "intervals": [{"onset": 556, "apex": 563, "offset": 571, "type": "micro",
                           "label": "negative", "aus": "4+7"}, ...]}

Frame numbers are converted to the **0-based decode index** sovtp's media layer uses
(:func:`sovtp.media.video.iter_frames`: position in the video, or in the sorted frame folder), so
spotted and annotated intervals count frames the same way: a video's annotated frame ``n`` is
index ``n − first_frame`` (CAS(ME)² and MMME number frames from 1; for a frame folder the first
image's own number is read from its name, as SAMM names images ``006_1_0001.jpg``).  An offset of
0 (CAS(ME)²'s "not annotated") means the apex.  :func:`gold_spans` turns ``meta`` into the
``(onset, offset, label)`` spans the metrics take, for micro- or macro-expressions or both.

The release spreadsheets (``.xlsx``) are read as CSV: open the sheet, save it as CSV under the
name each docstring gives.  Rows above the header (title lines some releases carry) are skipped:
the header is the first row naming both a subject and an onset column.  Column names are matched
case-insensitively, ignoring spaces and underscores (``Onset Frame`` = ``onset``).  Paths are
checked like every adapter's (:func:`~sovtp.data.sample.safe_path`).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from sovtp.data.adapters import VIDEO_EXTS, _inside, _need, _sample
from sovtp.data.sample import ManifestError, Sample
from sovtp.types import Span

log = logging.getLogger(__name__)

CASME2_FPS = 30.0
SAMM_FPS = 200.0
_DIGITS = re.compile(r"(\d+)(?=\D*$)")


def _key(name: str) -> str:
    return re.sub(r"[\s_\-()]+", "", str(name)).lower()


def read_rows(path: Path, rows: list[list[str]] | None = None) -> list[dict[str, str]]:
    """A spreadsheet saved as CSV (or a sheet's ``rows`` read from ``path``, an .xlsx): rows as
    dicts keyed by normalised column names, starting after the first row that names a subject
    and an onset column."""
    if rows is None:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    for h, row in enumerate(rows):
        keys = [_key(c) for c in row]
        if any(k.startswith("subject") for k in keys) and any(k.startswith("onset") for k in keys):
            return [
                {keys[i]: v.strip() for i, v in enumerate(r) if i < len(keys) and keys[i]}
                for r in rows[h + 1 :]
                if any(c.strip() for c in r)
            ]
    raise ManifestError(f"{path}: no header row with a subject and an onset column")


def _col(row: dict[str, str], *names: str) -> str:
    """The first present, non-empty column among ``names`` (normalised prefixes)."""
    for n in names:
        for k, v in row.items():
            if (k == n or k.startswith(n)) and v != "":
                return v
    return ""


def _int(x: str) -> int:
    return int(float(x)) if x.strip() else 0


def _kind(x: str) -> str:
    return "micro" if "micro" in x.lower() else "macro"


def _first_number(media: Path) -> int | None:
    """The number in the name of a frame folder's first image (``006_1_0001.jpg`` → 1)."""
    if not media.is_dir():
        return None
    from sovtp.media.files import frame_files

    files = frame_files(media)
    m = _DIGITS.search(files[0].stem) if files else None
    return int(m.group(1)) if m else None


def _interval(onset: int, apex: int, offset: int, base: int, **kw: Any) -> dict[str, Any]:
    offset = offset if offset > 0 else apex
    apex = apex if apex > 0 else (onset + offset) // 2
    return {"onset": onset - base, "apex": apex - base, "offset": offset - base, **kw}


def _row_interval(row: dict[str, str], base: int, **kw: Any) -> dict[str, Any]:
    """A sheet row's interval: its onset, apex and offset frame numbers less ``base``, with the
    row's type, emotion and AUs; ``kw`` replaces or adds fields (SAMM's own emotion and AU
    columns, its movement name)."""
    onset, apex, offset = (_int(_col(row, k)) for k in ("onset", "apex", "offset"))
    fields = {
        "type": _kind(_col(row, "type")),
        "label": _col(row, "emotion").lower() or None,
        "aus": _col(row, "aus", "actionunits"),
    }
    return _interval(onset, apex, offset, base, **(fields | kw))


def _video_sample(
    root: Path,
    vid: str,
    media: Path | ManifestError,
    subject: str,
    fps: float | None,
    intervals: list[dict[str, Any]],
    split: str | None,
    **meta: Any,
) -> Sample:
    intervals.sort(key=lambda d: (d["onset"], d["offset"]))
    return _sample(
        root,
        vid,
        media,
        None,
        split=split,
        subject=subject,
        meta={"fps": fps, "intervals": intervals, **meta},
    )


def gold_spans(sample: Sample, kind: str | None = "micro", labels: Any = None) -> list[Span]:
    """The sample's ground truth as ``(onset, offset, label)`` spans (0-based frame indices,
    inclusive); ``kind``: ``micro``, ``macro`` or None for both.  ``labels`` (a label set or
    its name) maps each annotated emotion onto that set (``happiness`` → ``positive`` in
    ``casme2_4``), so it can be compared with a system's labels; unmapped ones become None."""
    ls = None
    if labels is not None:
        from sovtp.labels import load_label_set

        ls = load_label_set(labels)
    out: list[Span] = []
    for d in sample.meta.get("intervals", []):
        if kind is not None and d.get("type") != kind:
            continue
        lab = d.get("label")
        if ls is not None and lab is not None:
            lab = ls.normalize(lab)
        out.append((float(d["onset"]), float(d["offset"]), lab))
    return out


# --- CAS(ME)² long videos ----------------------------------------------------------------------
def casme2_videos(
    root: Path, split: str | None = None, fold: int | None = None, fps: float = CASME2_FPS
) -> Iterator[Sample]:
    """CAS(ME)² long videos for spotting.  As released — ``CAS(ME)^2code_final.xlsx`` and the
    ``rawpic`` frame folders, read as :func:`sovtp.data.casme.casme_sq` reads them (one sample
    per ``rawpic/s15/15_0101...`` folder) — or, without the workbook, the converted form::

        CASME_sq/
          rawvideo/s15/15_0101disgustingteeth.avi ...
          annotations.csv   (CAS(ME)^2code_final.xlsx saved as CSV, with a header)
              subject,video,onset,apex,offset,aus,emotion,type
              onset/apex/offset: frame numbers from 1; offset 0 means "= apex";
              type: micro-expression | macro-expression

    One sample per video (``s15_0101``), every interval in ``meta``; frames 30 fps.  ``split``
    keeps videos of one subject (``s15``) when given.
    """
    if list(root.glob("CAS(ME)^2code_final*.xlsx")):
        yield from _casme_sq_videos(root, split, fps)
        return
    rows = read_rows(_need(root, "annotations.csv"))
    videos: dict[str, dict[str, Any]] = {}
    for row in rows:
        subj = _col(row, "subject").lstrip("sS").zfill(2)
        code = _col(row, "video", "filename")
        if not code:
            continue
        if split and f"s{subj}" != split:
            continue
        vid = f"s{subj}_{code}"
        if vid not in videos:
            folder = root / "rawvideo" / f"s{subj}"
            hits = sorted(folder.glob(f"{subj}_{code}*")) or sorted(folder.glob(f"{code}*"))
            if not hits:
                log.warning("CAS(ME)² video %s of subject %s not found", code, subj)
                continue
            videos[vid] = {"media": _inside(root, hits[0]), "subject": f"s{subj}", "ivs": []}
        videos[vid]["ivs"].append(_row_interval(row, 1))
    for vid, v in videos.items():
        yield _video_sample(root, vid, v["media"], v["subject"], fps, v["ivs"], split)


# --- SAMM long videos --------------------------------------------------------------------------
def samm(
    root: Path, split: str | None = None, fold: int | None = None, fps: float = SAMM_FPS
) -> Iterator[Sample]:
    """SAMM Long Videos (SAMM-LV; 200 fps, frame folders), as released::

        SAMM_MEGC/
          SAMM_longvideos/006_1/006_1_0001.jpg ...   (or rawvideo/006_1/, or 006_1/)
          SAMM_LongVideos_V3_Release.xlsx   ten title rows, then the header
              Subject, Filename, Inducement Code, Onset, Apex, Offset, Duration, Type,
              Action Units, Notes
          SAMM_Micro_FACS_Codes_v2.xlsx     (SAMM_*_Micro_FACS_Codes_v2.xlsx) title rows, then
              a header with Filename ... Estimated Emotion: the only source of emotions,
              joined on (Filename, Type) — micro-expressions only; macro ones have none

    (public loaders read the release sheet with ``skiprows`` 0..9 and those ten columns).  The
    header row is found by its Subject and Onset columns.  Without the release sheet the
    converted form is read::

          annotations.csv   (the release sheet saved as CSV; title rows above the header are
                             skipped) with columns
              Subject, Filename, Inducement Code, Onset, Apex, Offset, Duration, Type,
              Action Units, Notes [, Estimated Emotion]
              Filename "006_1_2" = the 2nd movement of video 006_1; Type "Micro - 1/2" or
              "Macro"; onset/apex/offset are frame numbers as in the image names

    One sample per video folder; a frame number ``n`` becomes index ``n − (first image's
    number)``.  ``split`` keeps one subject (``006``) when given.
    """
    emotions: dict[tuple[str, str], str] | None = None
    release = sorted(root.glob("SAMM_LongVideos_V*_Release.xlsx"))
    if release:
        from sovtp.data.xlsx import find_one, read_workbook

        f = find_one(root, "SAMM_LongVideos_V*_Release.xlsx", "the release sheet")
        rows = read_rows(f, read_workbook(f)[0][1])
        emotions = _samm_emotions(root)
    else:
        rows = read_rows(_need(root, "annotations.csv"))
    unmatched: list[str] = []
    videos: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = _col(row, "filename", "video")
        if not name:
            continue
        parts = name.split("_")
        vid = "_".join(parts[:2]) if len(parts) >= 3 else name
        subj = _col(row, "subject").zfill(3) or parts[0]
        if split and subj != split:
            continue
        if vid not in videos:
            media = None
            for rel in (f"SAMM_longvideos/{vid}", f"rawvideo/{vid}", vid):
                if (root / rel).is_dir():
                    media = _inside(root, root / rel)
                    break
            if media is None:
                log.warning("SAMM video folder %s not found under %s", vid, root)
                continue
            base = _first_number(media) if isinstance(media, Path) else None
            videos[vid] = {"media": media, "subject": subj, "base": base or 0, "ivs": []}
        v = videos[vid]
        kind = _kind(_col(row, "type"))
        label = _col(row, "estimatedemotion", "emotion").lower() or None
        if emotions is not None:  # the release: emotions only from the FACS codes, micro only
            label = (
                emotions.get((name, kind)) or emotions.get((name, "")) if kind == "micro" else None
            )
            if kind == "micro" and label is None:
                unmatched.append(name)
        v["ivs"].append(
            _row_interval(
                row, v["base"], label=label, aus=_col(row, "actionunits", "aus"), movement=name
            )
        )
    if unmatched:
        log.warning(
            "SAMM: %d micro-expression(s) have no emotion in the FACS codes sheet "
            "(first: %s); their label is empty",
            len(unmatched),
            unmatched[0],
        )
    if not videos:
        raise ManifestError(f"{root}: no SAMM video folder found for any annotated movement")
    for vid, v in videos.items():
        yield _video_sample(root, vid, v["media"], v["subject"], fps, v["ivs"], split)


SAMM_WORDS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other")


def _samm_emotions(root: Path) -> dict[tuple[str, str], str]:
    """``(Filename, type) → emotion`` from ``SAMM_*_Micro_FACS_Codes_v2.xlsx`` (title rows, then
    a header with Filename and Estimated Emotion; its type column, when present, joins too —
    else the key's type is ``""``).  Emotions are SAMM's words; another word is refused."""
    from sovtp.data.ledger import Ledger
    from sovtp.data.xlsx import find_one, read_workbook

    hits = sorted(root.glob("SAMM*Micro_FACS_Codes_v2.xlsx"))
    if not hits:
        log.warning("%s: no SAMM*Micro_FACS_Codes_v2.xlsx: micro-expressions have no emotion", root)
        return {}
    f = find_one(root, "SAMM*Micro_FACS_Codes_v2.xlsx", "the FACS codes sheet")
    rows = read_rows(f, read_workbook(f)[0][1])
    led = Ledger(f, list(SAMM_WORDS))
    out: dict[tuple[str, str], str] = {}
    for n, row in enumerate(rows, 1):
        led.rows += 1
        name, word = _col(row, "filename"), _col(row, "estimatedemotion", "emotion")
        if not name:
            led.bad_row("without a Filename", n, ",".join(row.values()))
            continue
        w = word.strip().lower()
        w = "other" if w == "others" else w
        if w not in SAMM_WORDS:
            led.unknown_label(word, n, ",".join(row.values()))
            continue
        typ = _col(row, "type")
        out[(name, _kind(typ) if typ else "")] = w
    led.close(len(out), "emotions")
    return out


def _casme_sq_videos(root: Path, split: str | None, fps: float) -> Iterator[Sample]:
    """One sample per CAS(ME)² rawpic folder with every interval of the workbook."""
    from sovtp.data.casme import _first_number, casme_sq_folder, read_casme_sq

    f, rows = read_casme_sq(root)
    videos: dict[str, dict[str, Any]] = {}
    for r in rows:
        if split and r["folder"] != split:
            continue
        rel = casme_sq_folder(root, r["folder"], r["code"])
        vid = f"{r['folder']}_{r['code']}"
        if vid not in videos:
            media = _inside(root, root / rel) if (root / rel).is_dir() else None
            if media is None:
                log.warning("CAS(ME)² frames %s not found", rel)
                continue
            videos[vid] = {
                "media": media,
                "subject": r["folder"],
                "ivs": [],
                "base": _first_number(root / rel),
            }
        v = videos[vid]
        v["ivs"].append(
            _interval(
                r["onset"],
                r["apex"],
                r["offset"],
                v["base"],
                type=r["type"],
                label=r["label"],
                aus=r["aus"],
            )
        )
    if not videos:
        raise ManifestError(f"{f}: none of its videos' frame folders is under {root}/rawpic")
    for vid, v in videos.items():
        yield _video_sample(root, vid, v["media"], v["subject"], fps, v["ivs"], split)


# --- MMME ---------------------------------------------------------------------------------------
def mmme(
    root: Path, split: str | None = None, fold: int | None = None, fps: float | None = None
) -> Iterator[Sample]:
    """MMME (multimodal micro-expressions: face video with synchronised EEG, PPG, RSP, SKT, EDA,
    ECG).  The release's own tree was not available to check against; this is the layout
    expected (a small script can arrange a download into it)::

        MMME/
          video/<subject>/<trial>.mp4|.avi   (or a frame folder video/<subject>/<trial>/)
          physio/<subject>/<trial>.csv       (optional) a time column in seconds from the
                                             video's first frame, then one column per channel
                                             (read with :func:`sovtp.physio.load_csv`)
          annotations.csv   subject,trial,onset,apex,offset,type,emotion[,aus][,fps]
              onset/apex/offset: frame numbers from 1 (a frame folder: as in the image names);
              type: micro | macro

    One sample per trial (``<subject>_<trial>``); ``meta["physio"]`` is the signal file's path
    when there is one, ``meta["fps"]`` the ``fps`` argument, else the annotation's ``fps``
    column, else None (the runner then probes the video).
    """
    rows = read_rows(_need(root, "annotations.csv"))
    videos: dict[str, dict[str, Any]] = {}
    for row in rows:
        subj, trial = _col(row, "subject"), _col(row, "trial", "video", "filename")
        if not subj or not trial:
            continue
        if split and subj != split:
            continue
        vid = f"{subj}_{trial}"
        if vid not in videos:
            folder = root / "video" / subj
            cands = [folder / trial] + [folder / f"{trial}{e}" for e in VIDEO_EXTS]
            hit = next((c for c in cands if c.exists()), None)
            if hit is None:
                log.warning("MMME video %s of subject %s not found", trial, subj)
                continue
            media = _inside(root, hit)
            base = (_first_number(media) if isinstance(media, Path) else None) or 1
            meta: dict[str, Any] = {}
            phys = root / "physio" / subj / f"{trial}.csv"
            if phys.exists():
                p = _inside(root, phys)
                if isinstance(p, Path):
                    meta["physio"] = str(p)
            col_fps = _col(row, "fps")
            rate = fps if fps is not None else (float(col_fps) if col_fps else None)
            videos[vid] = {
                "media": media,
                "subject": subj,
                "base": base,
                "ivs": [],
                "fps": rate,
                "meta": meta,
            }
        v = videos[vid]
        v["ivs"].append(_row_interval(row, v["base"]))
    for vid, v in videos.items():
        yield _video_sample(
            root, vid, v["media"], v["subject"], v["fps"], v["ivs"], split, **v["meta"]
        )


# --- a manifest ---------------------------------------------------------------------------------
def video_samples(samples: Iterable[Sample]) -> Iterator[Sample]:
    """One sample per long video.  An ME adapter's samples (``meta["intervals"]``) pass as they
    are; manifest rows with ``onset``/``apex``/``offset`` columns — one row per annotated
    interval, 0-based frame indices of the decoded video, an empty or 0 offset meaning the apex,
    optional ``type`` (micro|macro) and ``label``/``emotion`` — are grouped by their media into
    one video (ID: the ``video_id`` column, else the media file's stem); a row with an empty
    onset lists a video without any interval.  Videos come in the order of their first row,
    which gives their facts (split, subject, fps)."""
    groups: dict[str, Sample] = {}
    for s in samples:
        meta = s.meta or {}
        if "intervals" in meta:
            yield s
            continue
        key = str(s.media)
        v = groups.get(key)
        if v is None:
            vid = str(meta.get("video_id") or Path(str(s.media)).stem)
            base = {k: x for k, x in meta.items() if k not in _IV_COLS}
            v = groups[key] = replace(s, id=vid, label=None, meta={**base, "intervals": []})
        onset = _opt_int(meta.get("onset"))
        if onset is None:
            continue
        apex = _opt_int(meta.get("apex"))
        offset = _opt_int(meta.get("offset"))
        offset = offset if offset else (apex if apex is not None else onset)
        kind = str(meta.get("type") or "micro").lower()
        v.meta["intervals"].append(
            {
                "onset": onset,
                "apex": apex if apex is not None else (onset + offset) // 2,
                "offset": offset,
                "type": "micro" if "micro" in kind else "macro",
                "label": (str(meta.get("emotion") or s.label or "").strip().lower() or None),
            }
        )
    for v in groups.values():
        v.meta["intervals"].sort(key=lambda d: (d["onset"], d["offset"]))
        yield v


_IV_COLS = ("onset", "apex", "offset", "type", "emotion", "video_id")


def _opt_int(x: Any) -> int | None:
    if x is None or (isinstance(x, str) and not x.strip()):
        return None
    return int(float(x))


ME_ADAPTERS: dict[str, Callable[..., Iterator[Sample]]] = {
    "casme2_spot": casme2_videos,
    "samm": samm,
    "mmme": mmme,
}
