"""Simple physiological features: heart rate and HRV from PPG, tonic and phasic EDA.

Deliberately textbook (scipy only), because they are worded into prompts and must be explainable:

**PPG.**  Band-pass 0.5–8 Hz (4th-order Butterworth, zero phase), systolic peaks with
``find_peaks`` (at least 0.33 s apart — 180 bpm — and prominent by half the signal's standard
deviation), each refined to sub-sample time by a parabola through its three samples.  Inter-beat
intervals outside 0.33–1.5 s or more than 30 % from their median are dropped as artefacts (a
missed or doubled beat).  HR = 60 / mean IBI; RMSSD = root mean square of successive IBI
differences; SDNN = standard deviation of the IBIs (both ms; pairs across a dropped interval are
not successive).  The trend is the least-squares slope of the beat-by-beat rate times the window
length: "rising"/"falling" beyond ±3 bpm over the window.

**EDA** (µS).  Low-pass 1 Hz; skin-conductance responses (SCRs) are peaks whose rise from the
preceding trough is at least ``min_amplitude`` (0.02 µS by default; 0.01–0.05 is usual) and that
are at least 1 s apart and stand out from their surroundings (prominence of half that); the
trough is found by walking back down the rise, so a slow tonic drift never adds to a
response's amplitude.  The tonic level is the mean of the troughs-and-ends lower envelope (the
signal with its responses cut off); its trend is the envelope's slope over the window
("rising"/"falling" beyond ±0.05 µS).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from sovtp.errors import SovtpError


def bandpass(x: np.ndarray, fs: float, lo: float | None, hi: float | None, order: int = 4):
    """Zero-phase Butterworth band-/low-/high-pass (``lo`` or ``hi`` None drops that edge)."""
    from scipy.signal import butter, sosfiltfilt

    nyq = fs / 2
    if hi is not None and hi >= nyq:
        hi = None
    if lo is None and hi is None:
        return np.asarray(x, dtype=float)
    if lo is None:
        sos = butter(order, hi / nyq, "lowpass", output="sos")
    elif hi is None:
        sos = butter(order, lo / nyq, "highpass", output="sos")
    else:
        sos = butter(order, [lo / nyq, hi / nyq], "bandpass", output="sos")
    x = np.asarray(x, dtype=float)
    padlen = min(len(x) - 1, 3 * (2 * len(sos) + 1))
    return sosfiltfilt(sos, x, padlen=max(0, padlen))


def _fill_nan(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    bad = ~np.isfinite(x)
    if bad.all():
        raise SovtpError("the channel holds no finite sample")
    if bad.any():
        i = np.arange(len(x))
        x = x.copy()
        x[bad] = np.interp(i[bad], i[~bad], x[~bad])
    return x


def _trend(slope_per_s: float, duration_s: float, eps: float) -> str:
    change = slope_per_s * duration_s
    return "rising" if change > eps else "falling" if change < -eps else "steady"


@dataclass
class HeartFeatures:
    hr_bpm: float
    rmssd_ms: float
    sdnn_ms: float
    n_beats: int
    trend: str  # rising | falling | steady
    slope_bpm_per_s: float
    duration_s: float
    beat_times: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("beat_times")
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def ppg_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """Systolic peak times (s from the window's first sample), sub-sample refined."""
    from scipy.signal import find_peaks

    y = bandpass(_fill_nan(x), fs, 0.5, 8.0)
    pk, _ = find_peaks(y, distance=max(1, int(0.33 * fs)), prominence=0.5 * float(np.std(y)))
    t = pk.astype(float)
    inner = (pk > 0) & (pk < len(y) - 1)
    a, b, c = y[pk[inner] - 1], y[pk[inner]], y[pk[inner] + 1]
    den = a - 2 * b + c
    t[inner] += np.where(den != 0, 0.5 * (a - c) / np.where(den != 0, den, 1), 0.0)
    return t / fs


def heart_features(x: np.ndarray, fs: float) -> HeartFeatures:
    """Heart rate, RMSSD, SDNN and trend from a PPG window (see the module doc)."""
    beats = ppg_peaks(x, fs)
    dur = len(x) / fs
    if len(beats) < 3:
        raise SovtpError(f"too few heart beats in {dur:.1f} s of PPG to measure a rate")
    ibi = np.diff(beats)
    ok = (ibi >= 0.33) & (ibi <= 1.5)
    med = np.median(ibi[ok]) if ok.any() else np.median(ibi)
    ok &= np.abs(ibi - med) <= 0.3 * med
    if ok.sum() < 2:
        raise SovtpError("no clean inter-beat intervals in the PPG window")
    good = ibi[ok]
    succ = np.diff(ibi)[ok[1:] & ok[:-1]]  # only pairs of adjacent clean intervals
    rmssd = float(np.sqrt(np.mean(succ**2)) * 1000) if succ.size else float("nan")
    rate = 60.0 / ibi[ok]
    mid = (beats[1:][ok] + beats[:-1][ok]) / 2
    slope = float(np.polyfit(mid, rate, 1)[0]) if len(rate) >= 3 else 0.0
    return HeartFeatures(
        hr_bpm=float(60.0 / good.mean()),
        rmssd_ms=rmssd,
        sdnn_ms=float(np.std(good, ddof=1) * 1000) if len(good) > 1 else 0.0,
        n_beats=len(beats),
        trend=_trend(slope, dur, 3.0),
        slope_bpm_per_s=slope,
        duration_s=dur,
        beat_times=[float(b) for b in beats],
    )


@dataclass
class EdaFeatures:
    tonic_us: float
    tonic_trend: str
    tonic_slope_us_per_s: float
    n_scr: int
    scr_amplitudes_us: list[float]
    scr_times_s: list[float]
    duration_s: float

    @property
    def mean_amplitude_us(self) -> float:
        return float(np.mean(self.scr_amplitudes_us)) if self.scr_amplitudes_us else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean_amplitude_us"] = self.mean_amplitude_us
        return {
            k: round(v, 4)
            if isinstance(v, float)
            else [round(a, 4) for a in v]
            if isinstance(v, list)
            else v
            for k, v in d.items()
        }


def eda_features(x: np.ndarray, fs: float, min_amplitude: float = 0.02) -> EdaFeatures:
    """Tonic level and trend, and skin-conductance responses, of an EDA window (µS)."""
    from scipy.signal import find_peaks

    y = bandpass(_fill_nan(x), fs, None, 1.0)
    dur = len(y) / fs
    # prominence drops shoulders (a filter's ripple on a rising tonic level is not a response)
    pk, _ = find_peaks(y, distance=max(1, int(1.0 * fs)), prominence=0.5 * min_amplitude)
    peaks, amps, troughs = [], [], []
    prev = 0
    for p in pk:
        lo = int(p)  # the response's onset: walk back down its rise to the trough
        while lo > prev and y[lo - 1] <= y[lo]:
            lo -= 1
        amp = float(y[p] - y[lo])
        if amp >= min_amplitude:
            peaks.append(int(p))
            amps.append(amp)
            troughs.append(lo)
            prev = int(p)
    # lower envelope: the signal's ends and every response's onset trough
    knots = sorted({0, len(y) - 1, *troughs})
    env = np.interp(np.arange(len(y)), knots, y[knots])
    t = np.arange(len(y)) / fs
    slope = float(np.polyfit(t, env, 1)[0]) if len(y) > 2 else 0.0
    return EdaFeatures(
        tonic_us=float(env.mean()),
        tonic_trend=_trend(slope, dur, 0.05),
        tonic_slope_us_per_s=slope,
        n_scr=len(peaks),
        scr_amplitudes_us=amps,
        scr_times_s=[p / fs for p in peaks],
        duration_s=dur,
    )
