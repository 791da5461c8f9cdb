"""Physiological features worded as ``physio`` cues, the way the other cues word AUs or posture.

A vision LLM cannot see a pulse; what it can use is a measured sentence next to the face's AUs —
"heart rate 92 bpm, rising; 3 skin-conductance responses (mean 0.31 µS)".  Each cue carries its
numbers in ``value`` (for tables and the offline reasoner) and that phrase in ``text``; a channel
that is missing or too short to measure yields no cue rather than a guessed one.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from sovtp.errors import SovtpError
from sovtp.physio.features import EdaFeatures, HeartFeatures, eda_features, heart_features
from sovtp.physio.signals import Recording, clip_window, load_csv, window
from sovtp.types import Cue

log = logging.getLogger(__name__)
SOURCE = "sovtp.physio v1"
PPG_NAMES = ("ppg", "bvp", "pulse")
EDA_NAMES = ("eda", "gsr", "scl", "skin")


def heart_phrase(h: HeartFeatures) -> str:
    trend = "" if h.trend == "steady" else f", {h.trend}"
    hrv = ""
    if h.rmssd_ms == h.rmssd_ms:  # NaN when no two clean intervals were adjacent
        hrv = f" (HRV: RMSSD {h.rmssd_ms:.0f} ms, SDNN {h.sdnn_ms:.0f} ms)"
    return f"heart rate {h.hr_bpm:.0f} bpm{trend}{hrv}"


def eda_phrase(e: EdaFeatures) -> str:
    n = e.n_scr
    scr = "no skin-conductance response"
    if n:
        plural = "s" if n != 1 else ""
        scr = f"{n} skin-conductance response{plural} (mean {e.mean_amplitude_us:.2f} µS)"
    tonic = f"skin conductance {e.tonic_us:.1f} µS"
    tonic += "" if e.tonic_trend == "steady" else f", {e.tonic_trend}"
    return f"{scr}; {tonic}"


def physio_cues(rec: Recording, subject: int | None = None) -> list[Cue]:
    """``physio`` cues (``heart_rate``, ``eda``) from a recording window."""
    out: list[Cue] = []
    ppg = rec.channel(*PPG_NAMES)
    if ppg is not None:
        try:
            h = heart_features(ppg, rec.fs)
            out.append(
                Cue("physio", "heart_rate", heart_phrase(h), subject, h.to_dict(), source=SOURCE)
            )
        except SovtpError as e:
            log.info("no heart-rate cue for %s: %s", rec.source, e)
    eda = rec.channel(*EDA_NAMES)
    if eda is not None:
        try:
            e = eda_features(eda, rec.fs)
            out.append(Cue("physio", "eda", eda_phrase(e), subject, e.to_dict(), source=SOURCE))
        except SovtpError as err:
            log.info("no EDA cue for %s: %s", rec.source, err)
    return out


def physio_text(cues: list[Cue]) -> str:
    """The physio cues as one phrase, joined with "; " (what a template prints)."""
    return "; ".join(c.text for c in cues if c.kind == "physio")


PHYSIO_COLUMN = "physio"  # a manifest column (kept in Sample.meta): the recording's CSV
OFFSET_COLUMN = "physio_offset_s"  # optional: recording time = video time + offset


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, offset_s: float) -> Recording:
    # one recording often serves many clips (a trial's intervals): read it once
    return load_csv(path, offset_s=offset_s)


def physio_path(sample: Any, root: str | Path | None = None) -> Path | None:
    """The recording of a sample: ``meta["physio"]`` — absolute as given (an adapter's, or a
    manifest's own choice, as for media), relative under ``root`` (the dataset root; default
    the media's folder) and refused if it climbs out of it.  None when the sample has none."""
    from sovtp.data.sample import safe_path

    rel = (getattr(sample, "meta", None) or {}).get(PHYSIO_COLUMN)
    if rel in (None, ""):
        return None
    p = Path(str(rel).strip())
    if p.is_absolute():
        return p
    return safe_path(Path(root) if root is not None else Path(sample.media).parent, p)


def physio_cues_for(
    sample: Any,
    fps: float | None = None,
    *,
    root: str | Path | None = None,
    pad_s: float = 2.0,
    subject: int | None = None,
) -> list[Cue]:
    """``physio`` cues for one :class:`~sovtp.data.sample.Sample`: its recording
    (:func:`physio_path`), windowed to the clip (:func:`~sovtp.physio.signals.clip_window`:
    ``start_s``/``end_s``, or ``start_frame``/``end_frame`` at ``fps`` — the argument, else
    ``meta["fps"]``, else the video's own rate), padded by ``pad_s`` each side (heart rate needs
    a few beats; a skin-conductance response peaks 1–5 s after its cause), and worded by
    :func:`physio_cues`.  A sample without an interval is the whole video from time 0 (its
    duration from the file's header), never the whole recording.
    ``[]`` when the sample names no recording; a named file that cannot be read raises (a run
    then records that sample's error rather than silently dropping the cue)."""
    path = physio_path(sample, root)
    if path is None:
        return []
    if not path.is_file():
        raise SovtpError(f"sample {sample.id}: no physiology file {path}")
    meta = getattr(sample, "meta", None) or {}
    try:
        offset = float(meta.get(OFFSET_COLUMN) or 0.0)
    except ValueError:
        raise SovtpError(f"sample {sample.id}: {OFFSET_COLUMN} is not a number") from None
    rec = _load(str(path), path.stat().st_mtime_ns, offset)
    if sample.start_s is not None and sample.end_s is not None:
        w = clip_window(rec, sample, pad_s=pad_s)
    elif sample.start_frame is not None and sample.end_frame is not None:
        if fps is None and meta.get("fps"):
            fps = float(meta["fps"])
        if fps is None:
            from sovtp.media.video import probe

            fps = probe(sample.media).fps
        w = clip_window(rec, sample, fps=fps, pad_s=pad_s)
    else:  # the whole media: a video's own duration from time 0 (a still: 0 s, padded)
        from sovtp.media.video import probe

        w = window(rec, 0.0, probe(sample.media).duration_s, pad_s)
    if len(w) < 2:
        log.info("sample %s: the recording %s does not cover the clip", sample.id, path)
        return []
    return physio_cues(w, subject)
