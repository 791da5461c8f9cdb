"""Frame-sampling strategies: which frame indices of a clip are worth decoding.

A strategy is a short string so that it can live in a config file, a cache key and a CLI flag:

- ``uniform:N``   N frames spread evenly over the clip (centres of N equal segments)
- ``fps:F``       F frames per second of video
- ``indices:0,5,9`` exactly those frame indices (out-of-range ones are an error)
- ``all``         every frame
- ``apex:N``      the N frames where a face's expression is strongest, plus the onset frame
                  before the strongest movement; ``apex:N@A-B`` looks only at frames A..B.
                  Choosing them takes a detection pass (:mod:`sovtp.annotate.apex`), so
                  :meth:`Sampling.select` cannot resolve it: ``annotate()`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from sovtp.errors import MediaError


@dataclass(frozen=True)
class Sampling:
    kind: str
    value: float = 0.0
    indices: tuple[int, ...] = ()

    @classmethod
    def parse(cls, spec: str | Sampling) -> Sampling:
        if isinstance(spec, Sampling):
            return spec
        text = str(spec).strip().lower()
        if text == "all":
            return cls("all")
        kind, _, arg = text.partition(":")
        try:
            if kind == "apex":
                n_text, _, window = arg.partition("@")
                n = int(n_text)
                if n < 1:
                    raise ValueError
                if not window:
                    return cls("apex", float(n))
                a, _, b = window.partition("-")
                lo, hi = int(a), int(b)
                if lo < 0 or hi < lo:
                    raise ValueError
                return cls("apex", float(n), (lo, hi))
            if kind == "uniform":
                n = int(arg)
                if n < 1:
                    raise ValueError
                return cls("uniform", float(n))
            if kind == "fps":
                f = float(arg)
                if not (math.isfinite(f) and f > 0):  # nan fails every sample; inf means "all"
                    raise ValueError
                return cls("fps", f)
            if kind == "indices":
                idx = tuple(sorted({int(x) for x in arg.split(",") if x.strip()}))
                if not idx or idx[0] < 0:
                    raise ValueError
                return cls("indices", indices=idx)
        except ValueError:
            pass
        raise ValueError(
            f"bad sampling {spec!r}: use uniform:N, fps:F, indices:I,J,..., apex:N[@A-B] or all"
        )

    def __str__(self) -> str:
        if self.kind == "all":
            return "all"
        if self.kind == "indices":
            return "indices:" + ",".join(map(str, self.indices))
        if self.kind == "uniform":
            return f"uniform:{int(self.value)}"
        if self.kind == "apex":
            window = f"@{self.indices[0]}-{self.indices[1]}" if self.indices else ""
            return f"apex:{int(self.value)}{window}"
        return f"fps:{self.value:g}"

    @property
    def window(self) -> tuple[int, int] | None:
        """The frame range (first, last, inclusive) an ``apex:N@A-B`` sampling looks at."""
        return (self.indices[0], self.indices[1]) if self.kind == "apex" and self.indices else None

    def select(self, n_frames: int, fps: float, clip: str | Path = "<clip>") -> list[int]:
        """Frame indices to decode for a clip of ``n_frames`` at ``fps`` (sorted, unique).
        ``clip``: the path an ``indices:`` past the end names in its error."""
        if n_frames <= 0:
            return []
        if self.kind == "apex":
            raise ValueError(
                f"{self} chooses frames by a detection pass: resolve it with "
                "sovtp.annotate.apex.scan (annotate() does) before decoding"
            )
        if self.kind == "all":
            return list(range(n_frames))
        if self.kind == "uniform":
            n = min(int(self.value), n_frames)
            seg = n_frames / n
            return sorted({min(n_frames - 1, int(seg * (i + 0.5))) for i in range(n)})
        if self.kind == "fps":
            step = max(fps, 1e-6) / self.value
            out: list[int] = []
            t = 0.0
            while int(round(t)) < n_frames:
                out.append(int(round(t)))
                t += max(step, 1.0)
            return sorted(set(out))
        bad = [i for i in self.indices if i >= n_frames]
        if bad:
            raise MediaError(clip, f"frame indices {bad} beyond the clip's {n_frames} frames")
        return list(self.indices)
