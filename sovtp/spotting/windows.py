"""A long video for a vision LLM: the frames each query shows (windows of ``window_s`` seconds,
``images`` frames each, first and last included) and the windows' answers joined back into one
list of intervals (a movement that runs over a window's edge is one interval)."""

from __future__ import annotations

from sovtp.spotting.parse import Interval


def windows(n_frames: int, fps: float, window_s: float, images: int) -> list[list[int]]:
    """The frames each query shows: the video cut into windows of ``window_s`` seconds (0: one
    window), ``images`` frames per window, evenly spread, its first and last frame included."""
    if n_frames <= 0:
        return []
    size = n_frames if window_s <= 0 else max(1, int(round(window_s * fps)))
    out = []
    for start in range(0, n_frames, size):
        end = min(n_frames, start + size) - 1
        n = min(images, end - start + 1)
        if n <= 1:
            out.append([start])
            continue
        picks = [start + round(i * (end - start) / (n - 1)) for i in range(n)]
        out.append(sorted(set(picks)))
    return out


def join_windows(parts: list[list[Interval]], bounds: list[tuple[int, int]]) -> list[Interval]:
    """The windows' intervals as one list: an interval that runs to its window's last frame and
    one that starts on the next window's first frame, with the same label, become one."""
    out: list[Interval] = []
    for w, ivs in enumerate(parts):
        for a, b, lab in sorted(ivs):
            if (
                out
                and w > 0
                and a == bounds[w][0]
                and out[-1][1] == bounds[w - 1][1]
                and out[-1][2] == lab
            ):
                out[-1] = (out[-1][0], b, lab)
            else:
                out.append((a, b, lab))
    return out
