"""Voice de-identification speed, as ratios to the clip's duration (≥ 1 is faster than real time).

    python benchmarks/deid_speed.py [--seconds 10] [--threads 2] [--rate 44100]

Builds a speech-like test signal at test time — espeak-ng speech when the binary is installed,
else a source-filter vowel train with a varying pitch — and times, each in the same run:

- McAdams anonymisation (``sovtp.deid.voice.anonymise_audio``, α 0.8) on the samples;
- the prosody measures (``sovtp.deid.prosody.measure``, YIN) on the raw samples;
- ``anonymise_file``: decode an M4A, anonymise, encode an M4A (PyAV);
- the same for a 640×360 video with that audio track (frames re-encoded unchanged: the
  faces half is ``benchmarks/deid_faces_speed.py``).

Printed: seconds and ``clip seconds / wall seconds`` for each (target ≥ 1 on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

TEXT = (
    "The weather was cold and grey all morning, so we stayed inside and talked about the plan. "
    "She opened the window, looked at the garden and said that the roses had finally come out. "
)


def speech(seconds: float, rate: int) -> np.ndarray:
    from sovtp.media.audio import read_wav_bytes, resample

    esp = shutil.which("espeak-ng")
    if esp:
        out = subprocess.run([esp, "-s", "160", "--stdout", TEXT * 4], capture_output=True).stdout
        x, r = read_wav_bytes(out)
        x = resample(x, r, rate)
        reps = int(np.ceil(seconds * rate / len(x)))
        return np.tile(x, reps)[: int(seconds * rate)]
    from scipy.signal import lfilter

    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 130 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = np.cumsum(f0 / rate)
    ex = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    y = ex
    for f, b in ((700, 80), (1200, 90), (2600, 120)):
        rr, th = np.exp(-np.pi * b / rate), 2 * np.pi * f / rate
        y = lfilter([1.0], [1.0, -2 * rr * np.cos(th), rr * rr], y)
    y *= (np.sin(2 * np.pi * 4 * t) > -0.3).astype(float)  # syllable-like bursts
    return (0.4 * y / np.abs(y).max()).astype(np.float32)


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rate", type=int, default=44100)
    a = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(a.threads))

    from sovtp.deid import prosody
    from sovtp.deid.media_writer import encode_media
    from sovtp.deid.voice import anonymise_audio, anonymise_file
    from sovtp.media.sample import panning_clip

    x = speech(a.seconds, a.rate)
    dur = len(x) / a.rate
    src = "espeak-ng speech" if shutil.which("espeak-ng") else "synthetic vowel train"
    print(f"clip: {dur:.1f} s of {src} at {a.rate} Hz, {a.threads} threads")
    anonymise_audio(x[: a.rate], a.rate)  # warm-up (imports, FFT plans)
    rows = [
        ("McAdams anonymise_audio", timed(lambda: anonymise_audio(x, a.rate))),
        ("prosody measure (YIN)", timed(lambda: prosody.measure(x, a.rate))),
    ]
    with tempfile.TemporaryDirectory() as td:
        m4a = Path(td) / "raw.m4a"
        encode_media(m4a, samples=x, rate=a.rate)
        rows.append(
            (
                "anonymise_file m4a→m4a",
                timed(lambda: anonymise_file(str(m4a), str(Path(td) / "anon.m4a")), 2),
            )
        )
        mp4 = Path(td) / "talk.mp4"
        encode_media(mp4, frames=panning_clip(dur, 25), fps=25, samples=x, rate=a.rate)
        rows.append(
            (
                "anonymise_file 640×360 mp4 (frames copied)",
                timed(lambda: anonymise_file(str(mp4), str(Path(td) / "anon.mp4")), 1),
            )
        )
    for name, s in rows:
        print(f"{name:44s} {s:7.3f} s   real-time ratio {dur / s:7.1f}×")


if __name__ == "__main__":
    main()
