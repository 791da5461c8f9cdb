"""Ground-truth intervals checked before a spotting run scores against them.

Why: an interval with its onset after its offset, a negative frame, or a frame past the end of
its video cannot be matched by any prediction (or matches by accident); scored as it is, it
silently moves recall and F1.  Such a row is a data error: the run is refused with one line
that names the video and the interval, before any video is spotted.  The end of a video comes
from its header (:func:`sovtp.media.video.probe`); a video that cannot be probed is left to the
run, where it becomes an error row of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sovtp.errors import SovtpError


def interval_problem(onset: float, offset: float, n_frames: int | None) -> str | None:
    """What is wrong with one interval (0-based, inclusive frame indices), or None."""
    if onset < 0 or offset < 0:
        return "a negative frame"
    if onset > offset:
        return "its onset after its offset"
    if n_frames is not None and n_frames > 0 and offset >= n_frames:
        return f"a frame past the video's end (it has {n_frames} frames, 0..{n_frames - 1})"
    return None


def _n_frames(sample: Any) -> int | None:
    from sovtp.errors import MediaError
    from sovtp.media.video import probe

    if getattr(sample, "error", None):
        return None
    try:
        return int(probe(sample.media).n_frames)
    except MediaError:
        return None  # the run reports it as this video's error row


def check_gold(videos: Iterable[Any]) -> None:
    """Refuse the first ground-truth interval of ``videos`` (samples whose ``meta["intervals"]``
    hold ``onset``/``offset`` frame indices) that no frame of its video can match: a
    :class:`~sovtp.errors.SovtpError` naming the video, the interval and what is wrong."""
    for v in videos:
        spans = (v.meta or {}).get("intervals") or []
        if not spans:
            continue
        n = None
        for k, d in enumerate(spans, 1):
            on, off = float(d["onset"]), float(d["offset"])
            why = interval_problem(on, off, None)
            if why is None:
                n = _n_frames(v) if n is None else n
                why = interval_problem(on, off, n)
            if why is not None:
                raise SovtpError(
                    f"ground truth of video {v.id!r}, interval {k} (onset {on:g}, offset "
                    f"{off:g}, {d.get('type') or '?'} {d.get('label') or ''}".rstrip()
                    + f") has {why}: fix that row of the annotations"
                )
