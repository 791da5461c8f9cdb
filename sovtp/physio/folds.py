"""Cross-subject folds: no subject's samples on both sides of a split.

Physiology (and faces) are person-specific; a model that saw a subject in training reads that
subject's baseline, not the emotion, and subject-dependent splits overstate accuracy.  So folds
are assigned per subject: subjects are shuffled with a seed and dealt, largest first, to the fold
with the fewest samples so far (folds stay balanced in samples, not just in subjects).
``k=None`` (or ``k`` ≥ the number of subjects) is leave-one-subject-out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from sovtp.errors import SovtpError


def subject_folds(subjects: Sequence[str | None], k: int | None = 5, seed: int = 0) -> list[int]:
    """The fold (0..k−1) of each sample; all of a subject's samples share one fold."""
    if any(s is None or str(s) == "" for s in subjects):
        raise SovtpError("every sample needs a subject for cross-subject folds")
    counts = Counter(str(s) for s in subjects)
    names = sorted(counts)
    if k is None or k >= len(names):
        order = {s: i for i, s in enumerate(names)}
        return [order[str(s)] for s in subjects]
    if k < 2:
        raise SovtpError("cross-subject folds need k >= 2")
    rng = np.random.default_rng(seed)
    shuffled = [names[i] for i in rng.permutation(len(names))]
    shuffled.sort(key=lambda s: -counts[s])  # stable: ties keep the seeded order
    load = [0] * k
    fold_of: dict[str, int] = {}
    for s in shuffled:
        f = min(range(k), key=lambda j: (load[j], j))
        fold_of[s] = f
        load[f] += counts[s]
    return [fold_of[str(s)] for s in subjects]


def leave_subjects_out(
    subjects: Sequence[str | None], k: int | None = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, test indices) per fold, from :func:`subject_folds`."""
    folds = np.asarray(subject_folds(subjects, k, seed))
    return [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in np.unique(folds)]
