"""Sample counts the benchmarks' authors published, so ``sovtp data check`` can tell a researcher
before a long run whether a local copy is the data the papers used.

Each entry is keyed by the adapter name (``dfew``, ``ferv39k`` ...) and maps a (split, fold) cell
to its published total and, where the release documents them, its per-class counts.  Only
numbers read in a public source are recorded here, each with where it comes from:

- DFEW: the five folds of the single-labelled set, train/test = 9356/2341, 9356/2341, 9357/2340,
  9358/2339, 9361/2336 (the ``EmoLabel_DataSplit`` files of the release).
- FERV39k: the All-scenes test split has 7,847 clips — Happy 1,473, Sad 1,393, Neutral 1,958,
  Angry 1,487, Surprise 638, Disgust 467, Fear 431 (``4_setups/All_scenes/test_All.csv``).
- MER2023: ``test3`` has 834 clips.  The other MER2023 splits are left out: no public source
  consulted gave their counts, and a guessed number would flag a correct copy.
- BAH: ``dataset-splits/video-level/BAH_DB/split-0`` has 616 train, 110 val and 392 test rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Published:
    """One (split, fold) cell's published size: ``total`` and, where known, ``classes``
    (label → count, labels spelled as the release spells them)."""

    total: int
    classes: dict[str, int] = field(default_factory=dict)
    source: str = ""


Cell = tuple[str, int | None]  # (split, fold)

_DFEW_FOLDS = {1: (9356, 2341), 2: (9356, 2341), 3: (9357, 2340), 4: (9358, 2339), 5: (9361, 2336)}
_DFEW_SRC = "DFEW EmoLabel_DataSplit, single-labelled set"

PUBLISHED: dict[str, dict[Cell, Published]] = {
    "dfew": {
        cell: Published(n, source=_DFEW_SRC)
        for fold, (train, test) in _DFEW_FOLDS.items()
        for cell, n in (((("train", fold)), train), ((("test", fold)), test))
    },
    "ferv39k": {
        ("test", None): Published(
            7847,
            {
                "Happy": 1473,
                "Sad": 1393,
                "Neutral": 1958,
                "Angry": 1487,
                "Surprise": 638,
                "Disgust": 467,
                "Fear": 431,
            },
            "FERV39k 4_setups/All_scenes/test_All.csv",
        )
    },
    "mer2023": {("test3", None): Published(834, source="MER2023 test3-label.csv")},
    "bah": {
        ("train", None): Published(616, source="BAH split-0 train.txt"),
        ("val", None): Published(110, source="BAH split-0 val.txt"),
        ("test", None): Published(392, source="BAH split-0 test.txt"),
    },
}


def published_for(name: str | None) -> dict[Cell, Published]:
    """The published cells of a benchmark (empty when none are known)."""
    return PUBLISHED.get((name or "").lower(), {})


def _norm(label: str) -> str:
    return label.strip().lower()


@dataclass
class Mismatch:
    """A local count that differs from the published one."""

    split: str
    fold: int | None
    what: str  # "total" or a class label
    found: int
    published: int

    def text(self) -> str:
        where = self.split + (f" fold {self.fold}" if self.fold is not None else "")
        what = "samples" if self.what == "total" else f"{self.what!r} samples"
        return f"{where}: {self.found} {what}, published {self.published}"


def compare(
    name: str | None, counts: dict[Cell, dict[str, int]]
) -> tuple[list[tuple[Cell, Published, int]], list[Mismatch]]:
    """Compare local per-class ``counts`` of each (split, fold) cell with the published ones.

    Returns the cells compared (cell, published, local total) and every mismatch.  A cell the
    check did not count (another fold than ``--fold``) is not compared; labels are matched
    case-insensitively (a release's ``Happy`` is an adapter's ``happy``)."""
    compared: list[tuple[Cell, Published, int]] = []
    bad: list[Mismatch] = []
    for cell, pub in published_for(name).items():
        if cell in counts:
            local = counts[cell]
        elif cell[1] is None and any(s == cell[0] for s, _ in counts):
            # a split published without folds, read under a fold number (BAH's split-0)
            local = {}
            for (s, _), c in counts.items():
                if s == cell[0]:
                    for k, v in c.items():
                        local[k] = local.get(k, 0) + v
        else:
            continue
        total = sum(local.values())
        compared.append((cell, pub, total))
        if total != pub.total:
            bad.append(Mismatch(cell[0], cell[1], "total", total, pub.total))
        by_norm: dict[str, int] = {}
        for k, v in local.items():
            by_norm[_norm(k)] = by_norm.get(_norm(k), 0) + v
        for label, n in pub.classes.items():
            got = by_norm.get(_norm(label), 0)
            if got != n:
                bad.append(Mismatch(cell[0], cell[1], label, got, n))
    return compared, bad
