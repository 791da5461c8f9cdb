"""What a run asks of a system, as two Protocols: the engine calls these and nothing else; and
what a system is called (:func:`system_name`, one name in query folders, rows and reports).

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


def system_name(backend: str, model: str | None = None) -> str:
    """How a system is named in a query folder, a run's rows and the report: the backend, and the
    model's last path part (``openai:Qwen2.5-VL-7B-Instruct``, ``cnn:run1``); the backend alone
    when no model is named (``facs``).  ``sovtp query`` names a server's model as the server
    reports it when ``--model`` is not given."""
    return backend if not model else f"{backend}:{model.rstrip('/').rsplit('/', 1)[-1]}"
