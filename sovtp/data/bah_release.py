"""BAH as released: the official video-level split files and their class table."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from sovtp.data.common import VIDEO_EXTS, Pending, _find_media, _need, emit, norm_word, vocabulary
from sovtp.data.ledger import Ledger
from sovtp.data.sample import ManifestError, Sample

# --- BAH -------------------------------------------------------------------------------------
BAH_WORDS = vocabulary({"ambivalence": ["With A-H", "A-H"], "none": ["No A-H", "Without A-H"]})
BAH_SPLITS = "dataset-splits/video-level/BAH_DB"


def bah(root: Path, split: str = "test", fold: int | None = None) -> Iterator[Sample]:
    """BAH (ambivalence / hesitancy, one label per video), official split files::

        BAH/
          Videos/<pid>/Visite_1/<file>.mp4 ...        (names may contain spaces)
          dataset-splits/video-level/BAH_DB/
            class_id.yaml                 "With A-H: 1" / "No A-H: 0"
            split-0/train.txt, val.txt, test.txt      (616 / 110 / 392 rows in split-0)
              no header; "Videos/<pid>/Visite_1/<file>.mp4,<0|1>,<transcript>"
              the transcript is not quoted and contains commas: a line is split on its
              first two commas only

    ``fold`` picks ``split-<fold>`` (default 0); labels are named through ``class_id.yaml``
    (also looked for in the split folder and the folders above it), ``With A-H`` →
    ``ambivalence``, ``No A-H`` → ``none``.  Sample IDs are the path below ``Videos/`` with
    ``/`` → ``_`` and no extension (``<pid>_Visite_1_<file>``), the subject is ``<pid>``.

    A root without ``dataset-splits`` is read in the earlier converted form
    ``splits/<split>.csv`` (header ``video,label[,participant][,transcript]``, paths relative to
    ``videos/``), with ``transcripts/<video>.txt`` as an optional transcript.
    """
    if not (root / "dataset-splits").exists() and (root / "splits" / f"{split}.csv").exists():
        yield from _bah_converted(root, split)
        return
    d = _need(root, f"{BAH_SPLITS}/split-{fold or 0}")
    f = _need(root, f"{BAH_SPLITS}/split-{fold or 0}/{split}.txt")
    codes = _bah_classes(root, d)
    led = Ledger(f, [f"{k}={v}" for k, v in codes.items()])
    pending: list[Pending] = []
    for n, line in enumerate(f.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        led.rows += 1
        parts = line.split(",", 2)
        if len(parts) < 2 or not parts[0].strip().lower().endswith(VIDEO_EXTS):
            led.bad_row("not '<video path>,<0|1>,<transcript>'", n, line)
            continue
        rel, code = parts[0].strip(), parts[1].strip()
        if code not in codes:
            led.unknown_label(code, n, line)
            continue
        inner = rel.split("/", 1)[1] if rel.split("/", 1)[0].lower() == "videos" else rel
        sid = Path(inner).with_suffix("").as_posix().replace("/", "_")
        transcript = parts[2].strip() if len(parts) > 2 else ""
        pending.append(
            (
                sid,
                [rel],
                codes[code],
                {
                    "split": split,
                    "fold": fold or 0,
                    "subject": inner.split("/")[0],
                    "transcript": transcript or None,
                },
            )
        )
    led.close(len(pending))
    yield from emit(root, str(f), pending)


def _bah_classes(root: Path, split_dir: Path) -> dict[str, str]:
    """``{"1": "ambivalence", "0": "none"}`` from the release's ``class_id.yaml``."""
    import yaml

    for d in (split_dir, *split_dir.parents):
        f = d / "class_id.yaml"
        if f.exists():
            break
        if d == root:
            return {"1": "ambivalence", "0": "none"}  # the release's table, when not copied
    data = yaml.safe_load(f.read_text(encoding="utf-8-sig")) or {}
    if not isinstance(data, dict):
        raise ManifestError(f"{f}: expected 'With A-H: 1' and 'No A-H: 0'")
    out = {}
    for name, code in data.items():
        lab = BAH_WORDS.get(norm_word(name))
        if lab is None:
            raise ManifestError(f"{f}: class {name!r} is not With A-H / No A-H")
        out[str(code).strip()] = lab
    return out


def _bah_converted(root: Path, split: str) -> Iterator[Sample]:
    f = root / "splits" / f"{split}.csv"
    led = Ledger(f, ["1", "0", "ambivalence", "none"])
    pending: list[Pending] = []
    with f.open(newline="", encoding="utf-8-sig") as fh:
        for n, row in enumerate(csv.DictReader(fh), 2):
            led.rows += 1
            rel = (row.get("video") or "").strip()
            raw = str(row.get("label") or "").strip()
            lab = {"1": "ambivalence", "0": "none"}.get(raw) or BAH_WORDS.get(norm_word(raw))
            if not rel:
                led.bad_row("without a video", n, ",".join(map(str, row.values())))
                continue
            if lab is None and raw not in ("ambivalence", "none"):
                led.unknown_label(raw, n, ",".join(map(str, row.values())))
                continue
            pending.append(
                (
                    Path(rel).with_suffix("").as_posix().replace("/", "_"),
                    [f"videos/{rel}", rel],
                    lab or raw,
                    {
                        "split": split,
                        "subject": row.get("participant") or Path(rel).parts[0],
                        "transcript": _bah_transcript(root, rel, row),
                    },
                )
            )
    led.close(len(pending))
    yield from emit(root, str(f), pending)


def _bah_transcript(root: Path, rel: str, row: dict[str, str]) -> str | None:
    """A BAH video's words: its split row's ``transcript``, else ``transcripts/<video>.txt``
    (a path inside the root only)."""
    if (row.get("transcript") or "").strip():
        return row["transcript"].strip()
    f = _find_media(root, [f"transcripts/{Path(rel).with_suffix('.txt').as_posix()}"])
    if isinstance(f, Path) and f.is_file():
        return f.read_text(encoding="utf-8", errors="replace").strip() or None
    return None
