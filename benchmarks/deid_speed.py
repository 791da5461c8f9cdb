"""De-identification speed (faces + voice) as a ratio to the clip's duration, with its audit.

    python benchmarks/deid_speed.py [--seconds 4] [--fps 25] [--every 3] [--mode blur|pixelate|fill]

Builds at run time a 640×360 clip from ``skimage.data.astronaut()`` (public domain): the head
enters from the left edge, moves, bobs and grows, and leaves past the right edge
(:func:`sovtp.deid.clips.entering_clip`), muxed with speech (espeak-ng when installed, else a
source-filter vowel train).  Then, in the same run, times ``sovtp.deid.media.deid_media``:

- faces + voice: the whole thing (decode, scan, track, obscure, re-check, H.264 + AAC encode,
  McAdams on the audio) — the target is ≥ 2× real time on 2 cores (issue 22);
- faces only (``voice=False``: the audio re-encoded unchanged);
- voice only: ``sovtp.deid.voice.anonymise_file`` on the clip's audio as an M4A.

Each row prints wall seconds, ``clip seconds / wall seconds`` and the same ratio over the
process's CPU seconds (what the run would take with the machine to itself, minus what threads
overlap) — the machine is shared, so the load average is printed too.  Then the audit: every
frame of the decoded output searched by MediaPipe's face detector (whole frame + tiles) and
CenterFace at 640 — the faces left (target 0) — and whether every frame that showed any of the
head changed where it was.
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
    """``seconds`` of speech-like audio: espeak-ng when installed, else a vowel train."""
    from sovtp.media.audio import read_wav_bytes, resample

    esp = shutil.which("espeak-ng")
    if esp:
        out = subprocess.run([esp, "-s", "160", "--stdout", TEXT * 2], capture_output=True).stdout
        x, r = read_wav_bytes(out)
        x = resample(x, r, rate)
        reps = int(np.ceil(seconds * rate / len(x)))
        return np.tile(x, reps)[: int(seconds * rate)].astype(np.float32)
    from scipy.signal import lfilter

    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 130 + 30 * np.sin(2 * np.pi * 0.5 * t)
    ex = (np.diff(np.floor(np.cumsum(f0 / rate)), prepend=0) > 0).astype(float)
    y = ex
    for f, b in ((700, 80), (1200, 90), (2600, 120)):
        rr, th = np.exp(-np.pi * b / rate), 2 * np.pi * f / rate
        y = lfilter([1.0], [1.0, -2 * rr * np.cos(th), rr * rr], y)
    y *= (np.sin(2 * np.pi * 4 * t) > -0.3).astype(float)  # syllable-like bursts
    return (0.4 * y / np.abs(y).max()).astype(np.float32)


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, process CPU seconds, result)."""
    w, c = time.perf_counter(), time.process_time()
    r = fn()
    return time.perf_counter() - w, time.process_time() - c, r


def audit(raw: list[np.ndarray], dst: Path) -> tuple[int, int, list[int]]:
    """(frames in the output, faces MediaPipe + CenterFace find in them, frames where a visible
    part of the face — the clip's known face box — came out unchanged)."""
    from sovtp.deid.clips import entering_faces
    from sovtp.deid.faces import FaceFinder
    from sovtp.media.video import load_frames

    out = [f.image for f in load_frames(dst, "all")]
    with FaceFinder() as finder:
        left = sum(len(finder.find(o)) for o in out)
    h, w = raw[0].shape[:2]
    untouched = []
    for i, (r, o, box) in enumerate(zip(raw, out, entering_faces(len(raw), (w, h)), strict=False)):
        if box is not None:
            x0, y0, x1, y1 = box
            diff = np.abs(o[y0:y1, x0:x1].astype(int) - r[y0:y1, x0:x1]).mean()
            if diff < 20:  # obscured: ~55 grey levels; H.264 alone: a few
                untouched.append(i)
    return len(out), left, untouched


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--rate", type=int, default=44100)
    ap.add_argument("--every", type=int, default=None, help="full-scan stride (default: library)")
    ap.add_argument("--mode", default="blur", choices=["blur", "pixelate", "fill"])
    ap.add_argument("--workers", type=int, default=None, help="faces threads (default: library)")
    ap.add_argument("--preset", default="veryfast", help="x264 preset of the output")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from sovtp.deid.clips import entering_clip
    from sovtp.deid.faces import CENTERFACE_EVERY
    from sovtp.deid.media import deid_media
    from sovtp.deid.media_writer import encode_media
    from sovtp.deid.voice import anonymise_file

    every = a.every or CENTERFACE_EVERY
    n = int(round(a.seconds * a.fps))
    frames = entering_clip(n, (640, 360))
    x = speech(a.seconds, a.rate)
    src = "espeak-ng speech" if shutil.which("espeak-ng") else "synthetic vowel train"
    with tempfile.TemporaryDirectory() as td:
        d = Path(td)
        clip = d / "talk.mp4"
        encode_media(clip, frames=frames, fps=a.fps, samples=x, rate=a.rate)
        m4a = d / "talk.m4a"
        encode_media(m4a, samples=x, rate=a.rate)
        kw = dict(mode=a.mode, centerface_every=every, preset=a.preset)
        if a.workers:
            kw["workers"] = a.workers
        deid_media(clip, d / "warm.mp4", **kw)  # models, caches
        print(
            f"clip: 640×360, {n} frames at {a.fps} fps ({a.seconds:.1f} s) + {src} at "
            f"{a.rate} Hz; mode {a.mode}, full scan every {every} frames, x264 {a.preset}, "
            f"faces workers {a.workers or 'default'}"
        )
        print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        rows = [
            ("faces + voice", timed(lambda: deid_media(clip, d / "both.mp4", **kw))),
            ("faces only", timed(lambda: deid_media(clip, d / "faces.mp4", voice=False, **kw))),
            ("voice only (m4a)", timed(lambda: anonymise_file(str(m4a), str(d / "anon.m4a")))),
        ]
        print(f"load average after:  {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        for name, (wall, cpu, _) in rows:
            print(
                f"{name:18s} wall {wall:6.2f} s  real-time ratio {a.seconds / wall:5.2f}×   "
                f"cpu {cpu:6.2f} s  cpu ratio {a.seconds / cpu:5.2f}×  (real-time target ≥ 2)"
            )
        info = rows[0][1][2]
        k, left, untouched = audit(frames, d / "both.mp4")
        print(
            f"audit of the decoded output: {k} frames, faces left {left} (target 0), frames "
            f"with the face left unchanged {untouched or 'none'}; regions obscured "
            f"{info['regions_obscured']}, of which re-check hits {info['regions_rechecked']}"
        )


if __name__ == "__main__":
    main()
