"""The appointments processor's run: bookings, conflicts, per-day summaries and rejects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from s3worker.processors.appointments.analysis import (
    ATTENDED,
    BOOKINGS,
    CANCELLED,
    NO_SHOW,
    SCHEDULED,
    run,
    status_of,
    written,
)
from s3worker.processors.base import JobContext, ProcessResult, read_sample
from s3worker.processors.options import Options
from s3worker.processors.tabular.output import conform

HEADER = "appointment_id,patient_id,professional_id,start,end,scheduled_at,status\n"
SCHEDULE = (
    HEADER
    + """\
a1,ana,drx,2024-06-03 09:00,2024-06-03 09:30,2024-06-01 09:00,attended
a2,bia,drx,2024-06-03 09:15,2024-06-03 09:45,2024-06-02 09:00,no-show
a3,caio,drx,2024-06-03 09:20,2024-06-03 09:40,2024-06-02 09:00,cancelled
a4,ana,dry,2024-06-03 09:10,,2024-06-02 09:00,Realizada
a5,dani,dry,2024-06-04 10:00,2024-06-04 10:30,,
"""
)


def run_on(
    tmp_path: Path, body: str, options: Options | None = None, chunk_rows: int = 250_000
) -> ProcessResult:
    tmp_path.mkdir(exist_ok=True)
    src = tmp_path / "agenda.csv"
    src.write_text(body)
    ctx = JobContext(
        key="clinic/agenda.csv",
        size=len(body),
        chunk_rows=chunk_rows,
        sample=read_sample(src, "clinic/agenda.csv"),
        options=options or Options(),
    )
    return run(src, tmp_path / "out", ctx)


def output(tmp_path: Path, name: str) -> dict[str, list[Any]]:
    return pd.read_parquet(tmp_path / "out" / name).to_dict("list")


def codes(*columns: list[str | None]) -> list[int]:
    arrays = [pa.chunked_array([c], pa.string()) for c in columns]
    return status_of(*arrays).tolist()


def test_status_words_in_several_languages_first_listed_wins() -> None:
    words = ["Cancelado", "no-show", "Faltou", "Compareceu", "Realizada", "confirmed", None,
             "cancelled no-show"]  # fmt: skip
    assert codes(words, [None] * len(words)) == [
        CANCELLED, NO_SHOW, NO_SHOW, ATTENDED, ATTENDED, SCHEDULED, SCHEDULED, CANCELLED
    ]  # fmt: skip


def test_flags_decide_only_what_the_status_word_leaves_open() -> None:
    status = [None, None, None, "cancelled", None]
    no_show = ["yes", "no", None, "yes", None]
    showed_up = [None, None, "Sim", None, "0"]
    assert codes(status, no_show) == [NO_SHOW, ATTENDED, SCHEDULED, CANCELLED, SCHEDULED]
    assert codes(status, no_show, showed_up) == [NO_SHOW, ATTENDED, ATTENDED, CANCELLED, NO_SHOW]
    assert codes([None, None], [" Yes ", "S"]) == [NO_SHOW, NO_SHOW]  # padding and case


def test_a_timed_schedule_gives_bookings_conflicts_and_day_summaries(tmp_path: Path) -> None:
    result = run_on(tmp_path, SCHEDULE)
    summary = result.summary
    assert {k: summary[k] for k in ("bookings", "cancellations", "no_shows", "attended")} == {
        "bookings": 5, "cancellations": 1, "no_shows": 1, "attended": 2
    }  # fmt: skip
    assert summary["no_show_rate"] == 0.25  # of the four bookings held (not cancelled)
    assert (summary["days"], summary["professionals"], summary["schedule"]) == (2, 2, "timed")
    assert summary["encoding"] == "utf-8"
    assert (
        result.rows
        == summary["outputs"]
        == {
            "rejected.parquet": 0,
            "appointments.parquet": 5,
            "conflicts.parquet": 2,
            "daily_professional.parquet": 3,
        }
    )
    bookings = output(tmp_path, "appointments.parquet")
    assert bookings["status"] == ["attended", "no_show", "cancelled", "attended", "scheduled"]
    assert bookings["lead_days"][0] == 2.0
    assert str(bookings["end"][3]) == "2024-06-03 09:40:00+00:00"  # the default 30 minutes
    assert output(tmp_path, "daily_professional.parquet") == {
        "day": ["2024-06-03", "2024-06-03", "2024-06-04"],
        "professional_id": ["drx", "dry", "dry"],
        "bookings": [3, 1, 1],
        "cancellations": [1, 0, 0],
        "no_shows": [1, 0, 0],
        "attended": [1, 1, 0],
        "no_show_rate": [0.5, 0.0, 0.0],
    }


def test_cancelled_bookings_do_not_conflict(tmp_path: Path) -> None:
    summary = run_on(tmp_path, SCHEDULE).summary
    assert summary["conflicts"] == {"professional": 1, "patient": 1}
    found = output(tmp_path, "conflicts.parquet")
    # a3 (cancelled) overlaps a1 and a2 at drx; a4 is ana's second booking at 09:10
    assert list(zip(found["appointment_id"], found["other_appointment_id"], strict=True)) == [
        ("a2", "a1"),
        ("a4", "a1"),
    ]
    assert found["overlap_minutes"] == [15.0, 20.0]


def test_rows_that_cannot_be_bookings_are_rejected_with_their_reason(tmp_path: Path) -> None:
    body = (
        HEADER
        + """\
a1,ana,drx,2024-06-04 09:00,2024-06-04 09:30,,
a6,,,2024-06-04 10:00,2024-06-04 10:30,,
a7,eva,drx,,2024-06-04 10:30,,
a8,eva,drx,not a date,2024-06-04 10:30,,
a9,eva,drx,2024-06-04 11:00,2024-06-04 10:30,,
a10,eva,drx,9999-06-04 11:00,,,
"""
    )
    result = run_on(tmp_path, body)
    assert (result.summary["bookings"], result.summary["rejected_rows"]) == (1, 5)
    rejected = output(tmp_path, "rejected.parquet")
    assert rejected["record"] == [1, 2, 3, 4, 5]
    assert rejected["reason"] == [
        "no patient or professional",
        "start: missing",
        "start: unparseable",
        "end before start",
        "start: out of range (1900-01-01..2200-01-01)",
    ]


def test_a_duration_column_and_the_default_minutes_option(tmp_path: Path) -> None:
    body = "patient,doctor,start,duration\nana,drx,2024-06-03 09:00,45\nbia,drx,2024-06-03 10:00,\n"
    body += "caio,drx,2024-06-03 11:00,inf\n"
    options = Options(thresholds={"default_minutes": 20.0})
    result = run_on(tmp_path, body, options)
    ends = [str(t) for t in output(tmp_path, "appointments.parquet")["end"]]
    assert ends == ["2024-06-03 09:45:00+00:00", "2024-06-03 10:20:00+00:00"]
    assert output(tmp_path, "rejected.parquet")["reason"] == ["duration: not a finite number"]
    assert result.summary["rejected_rows"] == 1


def test_a_date_only_schedule_has_whole_day_bookings_and_no_time_conflicts(
    tmp_path: Path,
) -> None:
    body = "patient,doctor,date,status\nana,drx,2024-06-03,attended\nbia,drx,2024-06-03,faltou\n"
    result = run_on(tmp_path, body)
    assert result.summary["schedule"] == "date-only"
    assert result.summary["conflicts"] == {"professional": 0, "patient": 0}
    ends = {str(t) for t in output(tmp_path, "appointments.parquet")["end"]}
    assert ends == {"2024-06-04 00:00:00+00:00"}


def test_a_day_of_only_cancellations_has_no_no_show_rate(tmp_path: Path) -> None:
    body = (
        HEADER
        + "c1,ana,drx,2024-06-03 09:00,,,cancelado\nc2,bia,drx,2024-06-03 10:00,,,cancelado\n"
    )
    summary = run_on(tmp_path, body).summary
    assert summary["no_show_rate"] is None
    daily = pq.read_table(tmp_path / "out" / "daily_professional.parquet")
    assert daily.column("no_show_rate").to_pylist() == [None]  # null, not 0 or NaN


def test_small_chunks_merge_to_the_same_day_counts(tmp_path: Path) -> None:
    # More chunks than partial counts are held before merging (one booking per chunk)
    rows = [f"b{i},p{i},dr{i % 3},2024-06-0{1 + i % 5} 09:{i:02d},,,{'faltou' if i % 4 else ''}"
            for i in range(40)]  # fmt: skip
    body = HEADER + "\n".join(rows) + "\n"
    whole = run_on(tmp_path / "whole", body)
    split = run_on(tmp_path / "split", body, chunk_rows=1)
    assert whole.summary == split.summary
    a = pd.read_parquet(tmp_path / "whole" / "out" / "daily_professional.parquet")
    b = pd.read_parquet(tmp_path / "split" / "out" / "daily_professional.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert a["bookings"].sum() == 40


@pytest.mark.parametrize("column", ["patient", "doctor"])
def test_bookings_need_only_one_of_patient_and_professional(tmp_path: Path, column: str) -> None:
    body = f"{column},start\nana,2024-06-03 09:00\n"
    assert run_on(tmp_path, body).summary["bookings"] == 1


def test_bookings_are_written_to_the_millisecond_as_conform_floors_them() -> None:
    # Given nanosecond times past a millisecond, before 1970 and missing
    ns = ["2024-06-03T09:00:00.123456789", "1969-12-31T23:59:59.999500001", None,
          "2024-06-03T09:00:00.000000000"]  # fmt: skip
    times = pa.array(pd.to_datetime(ns, utc=True), pa.timestamp("ns", "UTC"))
    text = pa.array(["a", "b", "c", "d"])
    bookings = pa.table(
        {
            **{c: text for c in ("appointment_id", "patient_id", "professional_id", "status")},
            **{c: times for c in ("start", "end", "scheduled_at")},
            "lead_days": pa.array([1.5, None, 0.0, 2.0]),
            "record": pa.array([1, 2, 3, 4]),
        }
    ).select(BOOKINGS.names)
    # When made ready for appointments.parquet
    got = written(bookings)
    # Then: the same table as the writer's `conform` makes of it (floored, not rounded)
    assert got.schema == BOOKINGS
    assert got.equals(conform(bookings, BOOKINGS))
    assert got.column("start").to_pylist()[1] == pd.Timestamp("1969-12-31 23:59:59.999", tz="UTC")
