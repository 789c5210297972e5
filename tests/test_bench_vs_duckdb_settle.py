"""bench/vs_duckdb: the settling before each run waits for the free-page reporting to stop,
and the row's figures keep every side's CPU and the read's order apart."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from vs_duckdb import _settle, summary


class Clock:
    """time.monotonic and time.sleep for _settle: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(_settle, "time", fake)
    return fake


def reporting(monkeypatch: pytest.MonkeyPatch, clock: Clock, until: float) -> None:
    """A reported_kib counter that grows every 0.5 s of the clock until `until`."""
    monkeypatch.setattr(_settle, "reported_kib", lambda: int(min(clock.now, until) * 2) * 256)


def test_waits_until_nothing_was_reported_for_the_quiet_time(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    # given a host still taking memory back for 10 s
    reporting(monkeypatch, clock, until=10.0)
    # when the bench settles
    waited = _settle.wait_reporting(quiet=3.0, most=60.0)
    # then it waited for the last report and then the quiet time
    assert waited == pytest.approx(13.0, abs=0.2)


def test_stops_waiting_after_the_longest_wait(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    reporting(monkeypatch, clock, until=1e9)  # other work keeps the reporting going
    assert _settle.wait_reporting(quiet=3.0, most=20.0) == pytest.approx(20.0, abs=0.2)


def test_no_wait_without_page_reporting(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    monkeypatch.setattr(_settle, "REPORTED", Path("/nonexistent/reported_kib"))
    assert _settle.wait_reporting() == 0.0
    assert clock.now == 0.0


def test_unsettled_runs_only_read_the_input(
    monkeypatch: pytest.MonkeyPatch, clock: Clock, tmp_path: Path
) -> None:
    reporting(monkeypatch, clock, until=1e9)
    monkeypatch.setattr(_settle, "ENABLED", False)
    src = tmp_path / "in.csv"
    src.write_bytes(b"a,b\n" * 1000)
    found = _settle.settle(src)
    assert clock.now == 0.0
    assert set(found) == {"settle_s", "load1"}


def run(mode: str, seconds: float, user: float, sys_: float, after: str | None) -> dict[str, Any]:
    return {
        "mode": mode,
        "seconds": seconds,
        "user_s": user,
        "sys_s": sys_,
        "peak_rss": 100,
        "after": after,
    }


def one_round() -> list[dict[str, Any]]:
    """Processor, read, DuckDB, read, with figures easy to take medians of."""
    return [
        run("processor", 4.0, 3.0, 1.0, None),
        run("floor", 2.0, 1.5, 1.0, "processor"),
        run("duckdb", 8.0, 12.0, 2.0, "floor"),
        run("floor", 3.0, 1.5, 2.0, "duckdb"),
    ]


def test_row_has_cpu_figures_and_the_read_by_what_ran_before_it() -> None:
    # given two rounds of processor, read, DuckDB, read
    sequence = [
        *one_round(),
        run("processor", 6.0, 3.0, 3.0, "floor"),
        run("floor", 4.0, 1.5, 1.0, "processor"),
        run("duckdb", 10.0, 12.0, 4.0, "floor"),
        run("floor", 5.0, 1.5, 4.0, "duckdb"),
    ]
    row = summary(sequence, stopped=[], same=True)
    assert row["processor_cpu_s"] == 5.0
    assert row["duckdb_cpu_s"] == 15.0
    assert row["cpu_ratio"] == pytest.approx(5.0 / 15.0, abs=1e-3)
    assert (row["floor_s"], row["floor_best_s"]) == (3.5, 2.0)
    assert (row["floor_cpu_s"], row["floor_best_cpu_s"]) == (3.0, 2.5)
    assert row["floor_cpu_ratio"] == pytest.approx(3.0 / 5.0)
    assert row["floor_ratio"] == pytest.approx(3.5 / 5.0)
    assert row["floor_after"] == {
        "processor": {"s": 3.0, "cpu_s": 2.5},
        "duckdb": {"s": 4.0, "cpu_s": 4.5},
    }
    assert row["user_s"] == {"processor": 3.0, "duckdb": 12.0, "floor": 1.5}
    assert row["sys_s"] == {"processor": 2.0, "duckdb": 3.0, "floor": 1.5}
    assert row["floor_user_ratio"] == 0.5
    assert [r["mode"] for r in row["run_details"]] == [r["mode"] for r in sequence]


def test_stopped_duckdb_runs_have_no_cpu_figure() -> None:
    sequence = [
        run("processor", 4.0, 3.0, 1.0, None),
        run("floor", 2.0, 1.5, 1.0, "processor"),
        {**run("duckdb", 12.0, 0.0, 0.0, "floor"), "unfinished": 1},
        run("floor", 3.0, 1.5, 2.0, "duckdb"),
    ]
    row = summary(sequence, stopped=[12.0], same=None)
    assert row["duckdb_cpu_s"] is None
    assert row["cpu_ratio"] is None
    assert row["floor_cpu_ratio"] == pytest.approx(3.0 / 4.0)
