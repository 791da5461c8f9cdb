"""``with`` for the objects that hold costly resources (model graphs, sessions, threads) until
their ``close()``: a Preparer, a face finder.  Each spelled the same two methods out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

_C = TypeVar("_C", bound="Closeable")


class Closeable(ABC):
    """A base for a class whose :meth:`close` releases what it holds: ``with obj:`` gives the
    object and closes it when the block ends, however it ends."""

    @abstractmethod
    def close(self) -> None:
        """Release what the object holds; a second call does nothing."""

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
