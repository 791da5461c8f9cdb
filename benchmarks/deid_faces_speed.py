"""Faces de-identification speed on a 640×360 video, as a ratio to the clip's duration.

    python benchmarks/deid_faces_speed.py [--seconds 4] [--fps 25] [--threads 2]

Writes a clip of the astronaut's face panning across a 640×360 frame (PyAV), then times
``sovtp.deid.media.deid_media`` on it — decode, both detectors, tracking + bridging, blur, the
re-check, H.264 encode — with the voice stage off (this is the faces half; the voice half is
``benchmarks/deid_speed.py``).  Printed: frames/s and ``clip seconds / wall seconds`` (≥ 1 is
real time; target ≥ 1 on 2 cores) for CenterFace on every frame and on every 2nd and 3rd frame
(MediaPipe on all; tracks bridge the skipped frames).  Each variant is also audited: the faces
MediaPipe and CenterFace still find in the output (target 0).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every", default="1,2,3", help="CenterFace strides to time")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import cv2

    cv2.setNumThreads(a.threads)
    from sovtp.deid.faces import FaceFinder
    from sovtp.deid.media import deid_media
    from sovtp.media.sample import panning_clip, write_video
    from sovtp.media.video import load_frames

    with tempfile.TemporaryDirectory() as td:
        src = write_video(
            Path(td) / "pan.mp4",
            panning_clip(seconds=a.seconds, fps=a.fps, size=(640, 360)),
            fps=a.fps,
        )
        n = int(a.seconds * a.fps)
        deid_media(src, Path(td) / "warm.mp4", voice=False)  # model load, caches
        print(f"640×360, {n} frames, {a.seconds:.1f} s at {a.fps} fps, {a.threads} threads")
        for every in (int(x) for x in a.every.split(",")):
            dst = Path(td) / f"out{every}.mp4"
            t = time.perf_counter()
            info = deid_media(src, dst, voice=False, centerface_every=every)
            wall = time.perf_counter() - t
            with FaceFinder() as f:
                left = sum(len(f.find(fr.image)) for fr in load_frames(dst, "all"))
            print(
                f"centerface every {every}: {n / wall:6.1f} fps, real-time ratio "
                f"{a.seconds / wall:5.2f}× (target ≥ 1), regions {info['regions_obscured']}, "
                f"faces left {left} (target 0)"
            )


if __name__ == "__main__":
    main()
