"""progress.py: what each held message's file is doing, and the pace of this worker's files
(the interruption drain rule's input). The clock is injected: no sleeps."""

from __future__ import annotations

import pytest
from s3worker.interruption import Running
from s3worker.progress import RATE_HISTORY, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def progress(clock: Clock) -> Progress:
    return Progress(clock)


def test_progress_expects_the_pace_of_the_workers_own_files() -> None:
    clock = iter([0.0, 10.0, 20.0, 20.0]).__next__
    progress = Progress(clock=clock)
    progress.starter("a", "sales", 1000)()  # started at 0
    progress.processed("a")  # done at 10: 0.01 s per byte
    progress.starter("b", "sales", 3000)()  # started at 20
    (b,) = progress.running(["b"])
    assert b.started == 20.0
    assert b.expected_s == pytest.approx(30.0)
    (unknown,) = progress.running(["c"])
    assert unknown.started is None


def test_a_held_message_whose_file_has_not_started_is_not_running(
    clock: Clock, progress: Progress
) -> None:
    started = progress.starter("a", "sales", 100)  # the callback, not yet called
    assert progress.running(["a"]) == [Running("a", None, None)]
    clock.now = 5.0
    started()
    assert progress.running(["a"]) == [Running("a", 5.0, None, False)]  # no pace known yet


def test_the_pace_is_per_processor_and_the_median_of_recent_files(
    clock: Clock, progress: Progress
) -> None:
    for i, seconds in enumerate((1.0, 2.0, 30.0)):  # 0.01, 0.02 and 0.3 s per byte
        clock.now = 100.0 * i
        progress.starter(f"s{i}", "sales", 100)()
        clock.now += seconds
        progress.processed(f"s{i}")
    progress.starter("next", "sales", 1000)()
    progress.starter("other", "sensors", 1000)()
    sales, sensors = progress.running(["next", "other"])
    assert sales.expected_s == pytest.approx(20.0)  # the median, not the mean (0.11 s/byte)
    assert sensors.expected_s is None  # the sales files say nothing about sensors'


def test_only_the_last_files_set_the_pace(clock: Clock, progress: Progress) -> None:

    def one(delivery: str, seconds: float) -> None:
        clock.now += 1000.0
        progress.starter(delivery, "sales", 10)()
        clock.now += seconds
        progress.processed(delivery)

    for i in range(RATE_HISTORY):
        one(f"old{i}", 100.0)
    for i in range(RATE_HISTORY):
        one(f"new{i}", 1.0)
    progress.starter("x", "sales", 10)()
    (x,) = progress.running(["x"])
    assert x.expected_s == pytest.approx(1.0)


def test_a_processed_file_is_marked_and_an_empty_one_teaches_no_pace(
    clock: Clock, progress: Progress
) -> None:
    progress.starter("empty", "sales", 0)()
    clock.now = 50.0
    progress.processed("empty")
    progress.processed("never-started")  # no state: nothing happens
    progress.starter("b", "sales", 100)()
    empty, b, never = progress.running(["empty", "b", "never-started"])
    assert empty.processed
    assert b.expected_s is None  # a zero-byte file gives no seconds per byte
    assert never == Running("never-started", None, None)


def test_settling_counts_as_processed_and_forget_drops_the_message(
    clock: Clock, progress: Progress
) -> None:
    progress.starter("a", "sales", 100)()
    clock.now = 7.0
    progress.settling("a")
    (a,) = progress.running(["a"])
    assert (a.started, a.processed) == (7.0, True)
    progress.forget("a")
    progress.forget("a")  # twice is harmless
    assert progress.running(["a"]) == [Running("a", None, None)]
