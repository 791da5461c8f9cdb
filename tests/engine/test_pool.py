"""The thread helpers of ``sovtp/pool.py``: the ordered map both face scan loops use (results in
input order whatever order the work finishes in, a bounded read-ahead, exceptions where their
result would have been, the plain inline map for one worker) and ``threaded``, the background
producer the media writer's stages run on."""

from __future__ import annotations

import threading
import time

import pytest

from sovtp.pool import ordered_map, thread_pool, threaded


def test_order_is_kept_when_later_items_finish_first():
    finished: list[int] = []
    lock = threading.Lock()

    def slow_first(i: int) -> int:
        time.sleep(0.02 * (5 - i % 6))  # each group of six finishes back to front
        with lock:
            finished.append(i)
        return i * i

    with thread_pool(4, "t-order") as pool:
        out = list(ordered_map(slow_first, range(18), pool, depth=6))
    assert out == [i * i for i in range(18)]
    assert finished != sorted(finished)  # the work really did finish out of order


def test_an_exception_is_raised_where_its_result_would_be():
    started: list[int] = []

    def fails_at_3(i: int) -> int:
        started.append(i)
        if i == 3:
            raise RuntimeError("frame 3 is broken")
        time.sleep(0.05)
        return i

    got: list[int] = []
    with pytest.raises(RuntimeError, match="frame 3 is broken"), thread_pool(2, "t-fail") as pool:
        for r in ordered_map(fails_at_3, range(100), pool, depth=4):
            got.append(r)
    assert got == [0, 1, 2]
    assert len(started) < 12  # nothing ran far ahead of the failure


def test_the_read_ahead_is_bounded():
    pulled = 0

    def items():
        nonlocal pulled
        for i in range(50):
            pulled += 1
            yield i

    with thread_pool(3, "t-bound") as pool:
        for k, r in enumerate(ordered_map(lambda i: i, items(), pool, depth=5)):
            assert r == k
            assert pulled <= k + 1 + 5 + 1  # this one, the depth in flight, the one added


def test_one_worker_runs_inline_and_stages_can_share_a_pool():
    caller = threading.get_ident()
    with thread_pool(1) as pool:
        assert pool is None
        assert list(ordered_map(lambda i: threading.get_ident(), range(3), pool)) == [caller] * 3
    names: set[str] = set()

    def named(i: int) -> int:
        names.add(threading.current_thread().name)
        return i + 1

    with thread_pool(2, "t-stage") as pool:
        first = ordered_map(named, range(20), pool, depth=3)
        assert list(ordered_map(named, first, pool, depth=3)) == [i + 2 for i in range(20)]
    assert names and all(n.startswith("t-stage") for n in names)


def test_threaded_produces_in_order_on_another_thread_and_raises_its_errors():
    where: list[int] = []

    def items(n: int, fail_at: int | None = None):
        for i in range(n):
            where.append(threading.get_ident())
            if i == fail_at:
                raise ValueError(f"item {i}")
            yield i

    assert list(threaded(items(20), depth=3)) == list(range(20))
    assert set(where) and threading.get_ident() not in where
    got: list[int] = []
    with pytest.raises(ValueError, match="item 5"):
        for x in threaded(items(20, fail_at=5)):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]


def test_threaded_stops_its_producer_when_the_consumer_stops():
    made = 0

    def endless():
        nonlocal made
        while True:
            made += 1
            yield made

    gen = threaded(endless(), depth=2, name="t-producer")
    assert [next(gen) for _ in range(3)] == [1, 2, 3]
    gen.close()
    assert not [t for t in threading.enumerate() if t.name == "t-producer"]  # it ended
    assert made <= 3 + 2 + 2  # and never ran far ahead
