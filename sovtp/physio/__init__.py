"""Physiology synchronised with video: windows of PPG / EDA / … recordings aligned to clips,
heart rate, HRV and skin-conductance features worded as ``physio`` cues, subject-independent
folds, and valence/arousal regression metrics (registered on import of
:mod:`sovtp.physio.metrics`)."""

from sovtp.physio.signals import Recording, clip_seconds, clip_window, load_csv, window

__all__ = ["Recording", "clip_seconds", "clip_window", "load_csv", "window"]
