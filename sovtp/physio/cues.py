"""Physiological features worded as ``physio`` cues, the way the other cues word AUs or posture.

A vision LLM cannot see a pulse; what it can use is a measured sentence next to the face's AUs —
"heart rate 92 bpm, rising; 3 skin-conductance responses (mean 0.31 µS)".  Each cue carries its
numbers in ``value`` (for tables and the offline reasoner) and that phrase in ``text``; a channel
that is missing or too short to measure yields no cue rather than a guessed one.
"""

from __future__ import annotations

import logging

from sovtp.errors import SovtpError
from sovtp.physio.features import EdaFeatures, HeartFeatures, eda_features, heart_features
from sovtp.physio.signals import Recording
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
            out.append(Cue("physio", "heart_rate", heart_phrase(h), subject, h.to_dict(),
                           source=SOURCE))  # fmt: skip
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
