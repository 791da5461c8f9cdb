"""The BAH (ambivalence / hesitancy) section of a report: video-level and frame-level AVGF1 and
AP as the BAH release computes them, and the invalid-answer rate, per system × variant.

A pure reading of a run folder: its ``predictions.jsonl`` (the latest row per sample, system,
variant and face) and the frame annotations of the dataset its ``config.yaml`` names
(``data: bah:ROOT``, read by :mod:`sovtp.data.bah_frames`).  The numbers are those of
:mod:`sovtp.scoring.bah`:

- **video level**: each video's answer against its gold label; AVGF1 = the mean of the two
  classes' F1; AP = the release's AP (0.001 threshold grid, trapezoidal area) and scikit-learn's
  step-wise AP, both on the positive-class score (``scores[ambivalence]``, else the answer's
  confidence in the class it chose, else 1/0);
- **frame level**: each video's answer broadcast to its frames (or, when a system answered with
  A/H ``intervals`` in seconds, A/H inside them) against the annotated frame labels, all frames of
  all videos pooled, frames annotated −1 left out;
- an invalid answer is never A/H: it is wrong whatever the gold (on every frame of its video),
  it adds no true or false positive, and its missing score is ranked as wrong as possible.

When the frame labels cannot be reached (the data is not a ``bah:`` layout, the folder is gone,
it holds no ``annotations/``) the section keeps the video-level columns and says why in its notes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from sovtp.scoring import bah as B

log = logging.getLogger(__name__)

HEADER = [
    "system",
    "variant",
    "videos",
    "video AVGF1",
    "video AP",
    "video AP (sklearn)",
    "invalid rate",
    "frames",
    "frame AVGF1",
    "frame AP",
    "frame AP (sklearn)",
]
Row = dict[str, Any]


def _is_bah(cfg: dict[str, Any], rows: list[Row]) -> bool:
    data = str(cfg.get("data") or "")
    if data.startswith("bah:") or cfg.get("evaluator") == "bah" or cfg.get("labels") == "bah2":
        return True
    return bool(rows) and {r.get("gold") for r in rows} <= {B.POSITIVE, B.NEGATIVE, None}


class _Frames:
    """Frame labels (and fps, when needed) of the run's videos, each video probed at most once."""

    def __init__(self, cfg: dict[str, Any]):
        self.root: Path | None = None
        self.media: dict[str, Path] = {}
        self.why = ""
        data = str(cfg.get("data") or "")
        kind, _, rest = data.partition(":")
        if kind != "bah" or not rest:
            self.why = f"the run's data {data!r} is not a bah:ROOT layout"
            return
        root = Path(rest)
        if not (root / "annotations").is_dir():
            self.why = f"{root} holds no annotations/ (segments.csv or frames/)"
            return
        from sovtp.data.sources import open_dataset

        try:
            kw = {k: cfg[k] for k in ("split", "fold") if cfg.get(k) is not None}
            for s in open_dataset(data, **kw, **(cfg.get("adapter_options") or {})):
                if not s.error:
                    self.media[s.id] = Path(s.media)
        except Exception as e:  # a moved or unreadable dataset: the section says so
            self.why = f"the dataset {data!r} cannot be read ({type(e).__name__}: {e})"
            return
        self.root = root
        self._info: dict[str, tuple[int, float]] = {}

    def info(self, vid: str) -> tuple[int, float]:
        """(frame count, fps) of one video."""
        if vid not in self._info:
            from sovtp.media.video import probe

            m = probe(self.media[vid])
            self._info[vid] = (m.n_frames, m.fps)
        return self._info[vid]

    def labels(self, vid: str) -> np.ndarray | None:
        from sovtp.data.bah_frames import frame_labels

        assert self.root is not None
        if (self.root / "annotations" / "frames").is_dir():
            return frame_labels(self.root, vid)
        if vid not in self.media:
            return None
        return frame_labels(self.root, vid, *self.info(vid))


def _fmt(x: Any) -> Any:
    return round(float(x), 4) if isinstance(x, (float, np.floating)) else x


def bah_section(run: Path) -> dict[str, Any] | None:
    """``{"title", "table": (header, rows), "notes", "scores"}`` for a BAH run; None when the
    run is not a BAH run (or has no scored rows).  ``scores`` holds the full numbers per
    system × variant (``video`` and ``frame`` dicts of :func:`sovtp.scoring.bah.scores`)."""
    import yaml

    from sovtp.jsonl import latest_rows

    run = Path(run)
    cfg_p = run / "config.yaml"
    cfg = (yaml.safe_load(cfg_p.read_text()) if cfg_p.exists() else None) or {}
    if cfg.get("evaluator") not in (None, "bah"):
        return None  # another evaluator's run: not read at all (every report asks)
    rows = [r for r in latest_rows(run / "predictions.jsonl") if r.get("gold") is not None]
    if not rows or not _is_bah(cfg, rows):
        return None
    positive = B.POSITIVE  # the bah2 label set's A/H class, as sovtp.scoring.bah reads it
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(str(r.get("system") or ""), str(r.get("variant") or ""))].append(r)

    frames = _Frames(cfg)
    notes = [
        "AVGF1: the mean of the two classes' F1. AP: the BAH release's (precision at thresholds "
        "0, 0.001, ..., 0.999, trapezoidal area); AP (sklearn): scikit-learn's step-wise AP.",
        "An invalid answer is never counted as A/H: it is wrong for either gold class (on every "
        "frame of its video), adds no true or false positive, and its score ranks as wrong as "
        "possible. The release's zero-shot script would count it as A/H.",
    ]
    if frames.root is None:
        notes.append(f"Frame level not computed: frame labels not reachable — {frames.why}.")
    missing: set[str] = set()
    table, scores = [], []
    for (system, variant), rs in sorted(groups.items()):
        video = B.video_scores(rs, positive)
        frame: dict[str, Any] | None = None
        if frames.root is not None:
            vids = []
            for r in rs:
                sid = str(r["sample_id"])
                try:
                    g = frames.labels(sid)
                except Exception as e:  # one unreadable video: left out, and named
                    log.warning("BAH frame labels of %s: %s", sid, e)
                    g = None
                if g is None:
                    missing.add(sid)
                    continue
                ivs = [(float(i[0]), float(i[1])) for i in (r.get("intervals") or [])]
                fps = frames.info(sid)[1] if ivs else None
                label = r.get("label") if r.get("label") in (B.POSITIVE, B.NEGATIVE) else None
                vids.append(
                    (
                        g,
                        *B.frame_predictions(
                            label, len(g), B.answer_score(r, positive), ivs or None, fps
                        ),
                    )
                )
            frame = B.frame_scores(vids) if vids else None
        scores.append({"system": system, "variant": variant, "video": video, "frame": frame})
        f = frame or {}
        table.append(
            [
                _fmt(x)
                for x in (
                    system,
                    variant,
                    video["n"],
                    video["avgf1"],
                    video.get("ap"),
                    video.get("ap_sklearn"),
                    video["invalid_rate"],
                    f.get("n"),
                    f.get("avgf1"),
                    f.get("ap"),
                    f.get("ap_sklearn"),
                )
            ]
        )
    if missing:
        notes.append(
            f"{len(missing)} video(s) have no frame labels and are left out of the frame level: "
            + ", ".join(sorted(missing)[:10])
            + (" ..." if len(missing) > 10 else "")
        )
    return {
        "title": "Ambivalence / hesitancy (BAH): video and frame level",
        "table": (HEADER, table),
        "notes": notes,
        "scores": scores,
    }
