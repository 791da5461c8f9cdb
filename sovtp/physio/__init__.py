"""Physiology synchronised with video: windows of PPG / EDA / … recordings aligned to clips,
heart rate, HRV and skin-conductance features worded as ``physio`` cues (for a sample:
:func:`sovtp.physio.cues.physio_cues_for`, reading the manifest column ``physio``),
subject-independent folds, and the valence/arousal regression metrics (the scoring task
``regression``: :mod:`sovtp.scoring.tasks` and :mod:`sovtp.scoring.registry`)."""

from sovtp.physio.signals import Recording, clip_seconds, clip_window, load_csv, window

__all__ = ["Recording", "clip_seconds", "clip_window", "load_csv", "window"]
