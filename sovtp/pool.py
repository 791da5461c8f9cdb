"""Ordered work on a few threads: results come back in the order the items went in.

Why a module of its own: a stream of frames is scanned (and de-identified) by detectors that
release the GIL, so a few threads go faster than one, but what reads the results — face tracks
linked frame by frame, frames written to a video — needs them in frame order, and a stream must
not be read ahead without bound (decoded frames are large).  Both face scan loops of
:mod:`sovtp.deid.faces` (the plan pass and the de-identifying stream) are that one loop; it lives
here once, with its tests (``tests/engine/test_pool.py``), instead of twice, inline.

- :func:`thread_pool` — a pool of ``workers`` threads, or ``None`` for one (run in the caller);
  on exit, work not yet started is cancelled and running work is waited for.
- :func:`threaded` — a (lazy) iterable produced on a thread of its own, a few items ahead: the
  stages of :func:`sovtp.deid.media_writer.write_media` (decode, faces, encode) run at once.
- :func:`ordered_map` — ``fn`` over a (lazy) iterable on that pool, at most ``depth`` calls in
  flight, results yielded in input order as soon as the oldest is done; an exception raised by
  ``fn`` is raised where its result would have been yielded, and what is still pending is
  cancelled.  Several maps may share one pool (a pipeline of stages), since no task waits on
  another.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def thread_pool(workers: int, name: str = "sovtp") -> Iterator[Executor | None]:
    """``workers`` threads named ``name-N`` (``None`` when ``workers <= 1``: run inline)."""
    if workers <= 1:
        yield None
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], pool: Executor | None, depth: int = 4
) -> Iterator[R]:
    """``fn(item)`` for each item, in the items' order.

    With ``pool`` ``None`` it is a plain lazy map.  Otherwise up to ``depth`` calls run ahead on
    the pool; the oldest result is handed out as soon as it is done (or, when ``depth`` calls
    are in flight, once it is), so at most ``depth + 1`` items are held at once."""
    if pool is None:
        for item in items:
            yield fn(item)
        return
    depth = max(1, depth)
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            while pending and (len(pending) > depth or pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()


def threaded(items: Iterable[T], depth: int = 4, name: str = "sovtp-deid-stage") -> Iterator[T]:
    """``items`` produced on a background thread, at most ``depth`` ahead of the consumer.
    An exception in the producer is raised in the consumer; a consumer that stops early stops
    the producer at its next item."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(x) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for x in items:
                if not put((x, None)):
                    return
            put((end, None))
        except BaseException as e:  # noqa: BLE001 — handed to the consumer, raised there
            put((end, e))

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    try:
        while True:
            x, err = q.get()
            if err is not None:
                raise err
            if x is end:
                return
            yield x
    finally:
        stop.set()
        t.join(timeout=5)
