"""s3worker.ops.fmt (pure): the operator commands' tables, sizes, durations, times and clipped
text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from s3worker.ops import fmt


def test_a_table_aligns_its_columns_and_drops_trailing_spaces() -> None:
    text = fmt.table(["name", "size", "note"], [["a", 1, "x"], ["long name", None, ""]])

    assert text.splitlines() == [
        "name       size  note",
        "a          1     x",
        "long name",  # None and "" are empty cells; the line ends where its text does
    ]


def test_a_table_without_rows_is_its_header() -> None:
    assert fmt.table(["queue", "visible"], []) == "queue  visible"


def test_a_row_wider_than_the_header_is_an_error_not_a_silent_cut() -> None:
    with pytest.raises(ValueError, match="zip"):
        fmt.table(["a"], [["one", "two"]])


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (2048 * 1024**4, "2048.0 TiB"),  # the largest unit does not overflow
        (-2048, "-2.0 KiB"),  # a retried upload can report negative bytes
        (12.7, "12 B"),
    ],
)
def test_sizes_use_binary_units(n: float | None, text: str) -> None:
    assert fmt.size(n) == text


def test_durations_read_well() -> None:
    assert [fmt.duration(s) for s in (None, 42, 192, 5 * 3600 + 180, 2 * 86400 + 4 * 3600)] == [
        "-", "42s", "3m12s", "5h03m", "2d04h",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0s"), (59.9, "59s"), (60, "1m00s"), (3599, "59m59s"), (3600, "1h00m"),
     (86399, "23h59m"), (86400, "1d00h")],
)  # fmt: skip
def test_durations_change_unit_at_each_boundary(seconds: float, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_moments_are_iso_to_the_second_with_their_offset() -> None:
    moment = datetime(2026, 11, 26, 9, 5, 7, 999_000, tzinfo=UTC)
    local = moment.astimezone(timezone(timedelta(hours=-3)))

    assert fmt.when(moment) == "2026-11-26T09:05:07+00:00"
    assert fmt.when(local) == "2026-11-26T06:05:07-03:00"
    assert fmt.when(None) == "-"


def test_clip_folds_whitespace_and_marks_what_it_cut() -> None:
    assert fmt.clip("a\n  b\tc", 10) == "a b c"
    assert fmt.clip("abcdef", 6) == "abcdef"
    assert fmt.clip("abcdefg", 6) == "abcde…"
    assert len(fmt.clip("x" * 100, 20)) == 20
