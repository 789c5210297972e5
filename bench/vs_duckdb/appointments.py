"""Appointments: the processor vs DuckDB writing the same three tables from the same CSV.

The query reads the sample's columns typed, skips what the processor rejects (wrong column
count, an unparseable start, a duration that is not a number: DuckDB's ignore_errors; neither
patient nor professional, an end before the start: the WHERE clause), maps status words as
the processor does (first listed wins), and finds conflicts as one sweep would: a held
booking overlaps the earlier booking of the same professional (or patient) that reaches
furthest, the latest of those on a tie. (Typed, a ScheduledDay that does not parse would
skip its row, where the processor keeps it without a lead time; the sample has none.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from bench_processors import write_sized
from s3worker.processors.appointments.schema import STATUS_WORDS

from vs_duckdb import REPEATS, same_tables, side_by_side

KIND = "appointments"
DEFAULT_MINUTES = 30  # the processor's default_minutes
# Typed as a data engineer would: ignore_errors then skips a row whose value does not parse.
COLUMNS = {
    "AppointmentID": "VARCHAR",
    "PatientId": "VARCHAR",
    "doctor": "VARCHAR",
    "ScheduledDay": "TIMESTAMPTZ",
    "AppointmentDay": "TIMESTAMPTZ",
    "duration_min": "DOUBLE",
    "status": "VARCHAR",
}
BOOKING_COLUMNS = ["appointment_id", "patient_id", "professional_id", "start", "end", "status"]
TYPES = {"start": pa.timestamp("us", "UTC"), "end": pa.timestamp("us", "UTC")}  # as compared


def make_input(path: Path, size_bytes: int) -> None:
    write_sized(KIND, path, size_bytes)


def _status_case(column: str) -> str:
    arms = [
        f"WHEN {column} LIKE '%{stem.replace(chr(39), chr(39) * 2)}%' THEN '{label}'"
        for label, stems in STATUS_WORDS.items()
        for stem in stems
    ]
    return f"CASE {' '.join(arms)} ELSE 'scheduled' END"


def _conflicts(kind: str) -> str:
    col = f"{kind}_id"
    frame = (
        f"PARTITION BY {col} ORDER BY start, appointment_id "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    )
    return f"""
    SELECT '{kind}' AS kind, {col} AS entity, appointment_id, held.other.id AS other_appointment_id,
           start, held.other.start AS other_start,
           epoch_ms(least("end", held.reach) - start) / 60000.0 AS overlap_minutes
    FROM (SELECT *, max("end") OVER w AS reach,
                 arg_max({{'id': appointment_id, 'start': start}}, ("end", n)) OVER w AS other
          FROM held WHERE {col} IS NOT NULL WINDOW w AS ({frame})) AS held
    WHERE start < reach
    """


def query(path: Path, out: Path) -> str:
    return f"""
    SET TimeZone = 'UTC';
    CREATE TEMP TABLE bookings AS
    SELECT AppointmentID AS appointment_id, PatientId AS patient_id, doctor AS professional_id,
           AppointmentDay AS start,
           AppointmentDay + to_microseconds(
               CAST(coalesce(duration_min, {DEFAULT_MINUTES}) * 60e6 AS BIGINT)) AS "end",
           ScheduledDay AS scheduled_at,
           epoch(AppointmentDay - ScheduledDay) / 86400.0 AS lead_days,
           {_status_case("strip_accents(lower(status))")} AS status, row_number() OVER () AS n
    FROM read_csv('{path}', header = true, ignore_errors = true, columns = {COLUMNS})
    WHERE (PatientId IS NOT NULL OR doctor IS NOT NULL) AND coalesce(duration_min, 0) >= 0;
    COPY (SELECT * EXCLUDE (n) FROM bookings)
      TO '{out}/appointments.parquet' (FORMAT parquet, COMPRESSION zstd);
    CREATE TEMP TABLE held AS SELECT * FROM bookings WHERE status <> 'cancelled';
    COPY ({_conflicts("professional")} UNION ALL {_conflicts("patient")}
          ORDER BY kind DESC, entity, start, appointment_id)
      TO '{out}/conflicts.parquet' (FORMAT parquet, COMPRESSION zstd);
    COPY (SELECT strftime(start, '%Y-%m-%d') AS day,
                 coalesce(professional_id, 'unknown') AS professional_id,
                 count(*) AS bookings, count(*) FILTER (status = 'cancelled') AS cancellations,
                 count(*) FILTER (status = 'no_show') AS no_shows,
                 count(*) FILTER (status = 'attended') AS attended,
                 no_shows / nullif(count(*) FILTER (status <> 'cancelled'), 0) AS no_show_rate
          FROM bookings GROUP BY ALL ORDER BY ALL)
      TO '{out}/daily_professional.parquet' (FORMAT parquet, COMPRESSION zstd);
    """


def check(mine: Path, theirs: Path) -> bool:
    """The same bookings, conflicts and daily figures in both."""
    if not same_bookings(mine / "appointments.parquet", theirs / "appointments.parquet"):
        return False
    tables = (
        ("conflicts.parquet", ["kind", "appointment_id"], ["entity", "other_appointment_id"]),
        ("daily_professional.parquet", ["day", "professional_id"], None),
    )
    for name, keys, columns in tables:
        a, b = pq.read_table(mine / name), pq.read_table(theirs / name)
        if not same_tables(a, b, keys, columns or a.column_names):
            return False
    return True


def same_bookings(mine: Path, theirs: Path) -> bool:
    """The bookings tables hold the same rows (BOOKING_COLUMNS), compared as Arrow tables:
    a row per booking, so `same_tables`' Python values would take minutes and gigabytes."""

    def normal(path: Path) -> pa.Table:
        table = pq.read_table(path, columns=BOOKING_COLUMNS)
        typed = table.cast(pa.schema([(c, TYPES.get(c, pa.string())) for c in BOOKING_COLUMNS]))
        return typed.sort_by("appointment_id").combine_chunks()

    return bool(normal(mine).equals(normal(theirs)))


def measure(path: Path, repeats: int = REPEATS) -> dict[str, Any]:
    return side_by_side(KIND, path, query, repeats, check)
