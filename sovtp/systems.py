"""What a run asks of a system, as two Protocols: the engine calls these and nothing else.

- :class:`~sovtp.backends.base.Backend` — a language model: a request in, answer text out, its
  capabilities declared as attributes (``capabilities.remote``, ``images_per_prompt``, ...).
  Its text is parsed against the output contract (:mod:`sovtp.scoring.parse`).
- :class:`Predictor` — a scorer that needs no parsing (a CNN baseline): the subject's crops in,
  label scores out as a :class:`~sovtp.records.Prediction`.  ``stateful`` ones (test-time
  adaptation) are answered in sample order by one process.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from sovtp.backends.base import Backend
from sovtp.records import Prediction

__all__ = ["Backend", "Predictor"]


@runtime_checkable
class Predictor(Protocol):
    variant: str  # the run's variant column for its rows (e.g. the checkpoint's folder name)
    stateful: bool  # answers depend on every sample answered before (TTA)

    def crops(self, clip: Any, frames: Any, face: int | None) -> Any:
        """What it reads of a sample, cut from the run's one annotation."""

    def answer(self, sample_id: str, crops: Any, gold: str | None = None) -> Prediction:
        """Label scores for one sample (a stateful predictor learns from it too)."""

    def result(self) -> dict[str, Any] | None:
        """What a stateful predictor measured over the stream (TTA before/after), or None."""
