"""samples/appointments.py: clinic schedules with planted double bookings (per professional,
per patient), malformed rows and times in two offsets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from s3worker.samples import appointments
from s3worker.samples.writing import Truth, write_sample
from test_samples_writing import assert_reproducible


@pytest.fixture(params=[appointments.BLOCK_ROWS, 1_000], ids=["one-block", "repeated-block"])
def block_rows(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Schedules as one block, and as a 1,000-row block written three times over (shifted):
    the planted figures must hold either way."""
    monkeypatch.setattr(appointments, "BLOCK_ROWS", request.param)
    return int(request.param)


def frame_of(tmp_path: Path, rows: int = 3_000) -> tuple[pd.DataFrame, Truth]:
    out = tmp_path / "appointments.csv"
    truth = write_sample("appointments", rows, out, seed=11)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False).head(truth.rows)
    return frame.set_index("AppointmentID"), truth


def test_same_seed_same_file(tmp_path: Path) -> None:
    assert_reproducible(tmp_path, "appointments")


def start_end(row: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(row["AppointmentDay"]).tz_convert("UTC")
    return start, start + pd.Timedelta(minutes=int(row["duration_min"]))


@pytest.mark.usefixtures("block_rows")
def test_each_planted_conflict_overlaps_on_the_right_person(tmp_path: Path) -> None:
    frame, truth = frame_of(tmp_path)
    assert truth.planted["professional"]
    assert truth.planted["patient"]
    for kind, same, other in (
        ("professional", "doctor", "PatientId"), ("patient", "PatientId", "doctor"),
    ):  # fmt: skip
        for first, second in truth.planted[kind]:
            a, b = frame.loc[first], frame.loc[second]
            assert second.startswith("X")
            assert a[same] == b[same], (kind, first, second)
            assert a[other] != b[other], (kind, first, second)
            (a0, a1), (b0, b1) = start_end(a), start_end(b)
            assert a0 < b1, (first, second)  # they overlap
            assert b0 < a1, (first, second)


@pytest.mark.usefixtures("block_rows")
def test_malformed_rows_are_listed_and_left_out_of_the_conflicts(tmp_path: Path) -> None:
    frame, truth = frame_of(tmp_path)
    bad = truth.planted["malformed"]
    assert len(bad) >= 3
    for ident in bad:
        row = frame.loc[ident]
        spoiled = (
            row["AppointmentDay"] == "31/31/2024 99:99",
            row["duration_min"] == "half hour",
            row["PatientId"] == "" and row["doctor"] == "",
        )
        assert sum(spoiled) == 1, ident
    in_conflicts = {i for pair in truth.planted["professional"] + truth.planted["patient"]
                    for i in pair}  # fmt: skip
    assert not in_conflicts & set(bad)


@pytest.mark.usefixtures("block_rows")
def test_times_come_in_utc_and_in_minus_three_hours(tmp_path: Path) -> None:
    frame, truth = frame_of(tmp_path)
    days = frame["AppointmentDay"].drop(index=truth.planted["malformed"])
    utc, local = days.str.endswith("Z"), days.str.endswith("-03:00")
    assert (utc | local).all()
    assert 0.3 < local.mean() < 0.7
    hours = days.map(lambda t: pd.Timestamp(t).tz_convert("UTC").hour)
    assert hours.between(8, 17).all()  # 30-minute slots from 08:00 to 18:00 UTC


def test_a_repeated_block_continues_the_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a block of 1,000 bookings
    monkeypatch.setattr(appointments, "BLOCK_ROWS", 1_000)
    # when 3,000 are written
    frame, truth = frame_of(tmp_path)
    # then the block is there three times, each copy after the one before, nothing repeated
    assert frame.index.is_unique
    assert 3_000 <= truth.rows < 3_100
    day = pd.to_datetime(frame["AppointmentDay"], utc=True, errors="coerce")
    assert day.dropna().is_monotonic_increasing
    assert frame["doctor"].replace("", None).dropna().str.fullmatch(r"DR-(\d{3}|X\d{4})").all()
    # and what is planted comes at the rates of one block, every copy's own
    pairs = len(truth.planted["professional"]) + len(truth.planted["patient"])
    assert 1 / 250 < pairs / truth.rows <= 1 / 200  # less the pairs a malformed row spoiled
    assert 1 / 350 < len(truth.planted["malformed"]) / truth.rows < 1 / 280
    by_copy = pd.Series([int(first[1:]) // 1_000 for first, _ in truth.planted["patient"]])
    assert sorted(by_copy.unique()) == [0, 1, 2]
    status = frame["status"].value_counts(normalize=True)
    assert 0.05 < status["cancelled"] < 0.11
    assert 0.09 < status["no-show"] < 0.15


def test_a_conflict_with_a_malformed_row_is_dropped_from_the_truth() -> None:
    dropped = 0
    for seed in range(30):  # small schedules: four conflicts, three malformed rows each
        truth = Truth()
        next(appointments.generate(40, seed, truth))
        pairs = truth.planted["professional"] + truth.planted["patient"]
        assert not {i for pair in pairs for i in pair} & set(truth.planted["malformed"])
        dropped += 4 - len(pairs)
    assert dropped > 0  # some seeds did spoil a conflict's row: it is no longer counted


def test_broken_lines_suit_the_format() -> None:
    assert appointments.broken_lines("csv") == ["A9999999,P1"]
    assert appointments.broken_lines("json") == ["{broken"]
