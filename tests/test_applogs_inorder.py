"""ordered_map: results in the stream's order, at most `workers` items in flight."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from s3worker.processors.applogs.inorder import ordered_map


def test_ordered_map_keeps_the_order_and_raises_what_a_worker_raised() -> None:
    def square(n: int) -> int:
        if n == 7:
            raise ValueError("seven")
        return n * n

    assert list(ordered_map(square, range(7), workers=2)) == [n * n for n in range(7)]
    assert list(ordered_map(square, range(3), workers=1)) == [0, 1, 4]
    with pytest.raises(ValueError, match="seven"):
        list(ordered_map(square, range(10), workers=2))


def test_results_come_in_order_even_when_a_later_item_finishes_first() -> None:
    # Given the first item held until the second has finished
    second_done = threading.Event()

    def work(n: int) -> int:
        if n == 0:
            assert second_done.wait(10)
        else:
            second_done.set()
        return n

    # Then the first result still comes first
    assert list(ordered_map(work, [0, 1], workers=2)) == [0, 1]


def test_at_most_workers_items_are_taken_from_the_stream_ahead_of_the_results() -> None:
    taken: list[int] = []

    def stream() -> Iterator[int]:
        for n in range(100):
            taken.append(n)
            yield n

    results = ordered_map(lambda n: n, stream(), workers=3)
    assert next(results) == 0
    assert len(taken) == 3  # the first result waited for; nothing read beyond the window
    assert next(results) == 1
    assert len(taken) == 4
    assert list(results) == list(range(2, 100))


def test_one_worker_runs_in_the_calling_thread_and_more_in_pool_threads() -> None:
    def where(_: int) -> str:
        return threading.current_thread().name

    here = threading.current_thread().name
    assert set(ordered_map(where, range(4), workers=1)) == {here}
    assert set(ordered_map(where, range(4), workers=0)) == {here}
    names = set(ordered_map(where, range(4), workers=2))
    assert names
    assert all(name.startswith("applogs") for name in names)
