"""What an adapter could not use, counted and quoted, so that no benchmark shrinks in silence.

An official label file read with the wrong rules fails quietly: FERV39k's split files once
yielded zero samples because every label was a word where a number was expected.  Each adapter
therefore reads its label file whole (they are small: 16k lines at most) into a :class:`Ledger`
before it yields anything, and :meth:`Ledger.close` turns what went wrong into one
:class:`~sovtp.data.sample.ManifestError` line (the CLI prints it and exits 2):

- rows it cannot parse (a header where none belongs, a missing field), by reason, with the first
  offending lines quoted;
- label words outside the dataset's own vocabulary, each listed with its count and lines;
- zero samples in the end.

Rows the benchmark's own protocol leaves out (DFEW's multi-label clips) are *excluded*: counted,
quoted and logged as a warning, never an error.  Missing media is not a parse error either: a
sample whose clip is absent carries ``Sample.error`` (its rows say so) — unless none of the
listed clips is there, which means a wrong root or folder name and is refused
(:func:`check_media`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from sovtp.data.sample import ManifestError

log = logging.getLogger(__name__)
QUOTE = 3  # offending lines quoted per reason


def _q(n: int | str, text: str) -> str:
    t = text.strip()
    return f"line {n}: {t[:80] + '...' if len(t) > 80 else t!r}"


class Ledger:
    """Problems met while reading one label file (``where``)."""

    def __init__(self, where: str | Path, vocabulary: list[str] | None = None) -> None:
        self.where = str(where)
        self.vocabulary = vocabulary or []
        self.bad: dict[str, list[tuple[int | str, str]]] = defaultdict(list)
        self.unknown: dict[str, list[tuple[int | str, str]]] = defaultdict(list)
        self.excluded: dict[str, list[tuple[int | str, str]]] = defaultdict(list)
        self.rows = 0

    def bad_row(self, why: str, n: int | str, text: str) -> None:
        self.bad[why].append((n, text))

    def unknown_label(self, word: str, n: int | str, text: str) -> None:
        self.unknown[word].append((n, text))

    def exclude(self, why: str, n: int | str, text: str) -> None:
        self.excluded[why].append((n, text))

    def message(self) -> str | None:
        """The one line that says what could not be used, or None when everything could."""
        parts = []
        for why, items in self.bad.items():
            q = "; ".join(_q(n, t) for n, t in items[:QUOTE])
            parts.append(f"{len(items)} row(s) {why} ({q}{'; ...' if len(items) > QUOTE else ''})")
        if self.unknown:
            words = "; ".join(
                f"{w!r} x{len(v)} ({_q(*v[0])})"
                for w, v in sorted(self.unknown.items(), key=lambda kv: -len(kv[1]))
            )
            known = f" (known: {', '.join(self.vocabulary)})" if self.vocabulary else ""
            parts.append(f"label words not in the dataset's vocabulary{known}: {words}")
        if not parts:
            return None
        n = sum(map(len, self.bad.values())) + sum(map(len, self.unknown.values()))
        return (
            f"{self.where}: {n} of {self.rows} row(s) cannot be used: "
            + "; ".join(parts)
            + " — is this the release's own file (see the adapter's documented layout)?"
        )

    def close(self, found: int, what: str = "samples") -> None:
        """Raise for unusable rows or for nothing found; log what the protocol excludes."""
        msg = self.message()
        if msg:
            raise ManifestError(msg)
        for why, items in self.excluded.items():
            log.warning(
                "%s: %d row(s) left out: %s (%s)",
                self.where,
                len(items),
                why,
                "; ".join(_q(n, t) for n, t in items[:QUOTE]),
            )
        if found == 0:
            left = sum(map(len, self.excluded.values()))
            raise ManifestError(
                f"{self.where}: no {what} found in {self.rows} row(s)"
                + (f" ({left} left out by the protocol)" if left else "")
            )


def check_media(where: str, listed: int, missing: list[str], root: Path) -> None:
    """Refuse a tree where none of the ``listed`` clips is present (a wrong root or folder
    name); a few missing clips become per-sample errors instead, and are logged here."""
    if listed and len(missing) == listed:
        raise ManifestError(
            f"{where}: none of the {listed} clip(s) it lists is under {root} "
            f"(first expected at {missing[0]}) — a wrong root or folder name?"
        )
    if missing:
        log.warning(
            "%s: %d of %d clip(s) missing (first: %s); their rows carry the error",
            where,
            len(missing),
            listed,
            missing[0],
        )
