"""Appointments: planted double bookings are found; column variants, formats and zones read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from processing import run, sample, scores, table


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("kind", ["professional", "patient"])
def test_planted_conflicts_are_found(tmp_path: Path, fmt: str, kind: str) -> None:
    # given a schedule with planted overlapping bookings
    src, truth = sample(tmp_path, "appointments", 6_000, fmt=fmt)
    # when processed in chunks
    run("appointments", src, tmp_path / "out", chunk_rows=1_000)
    # then the overlapping pairs are reported
    c = pd.read_parquet(tmp_path / "out" / "conflicts.parquet")
    c = c[c["kind"] == kind]
    found = map(frozenset, zip(c["appointment_id"], c["other_appointment_id"], strict=True))
    precision, recall, msg = scores(found, map(frozenset, truth.planted[kind]))
    assert recall >= 0.9, f"{kind}: {msg}"
    assert precision >= 0.8, f"{kind}: {msg}"


def test_malformed_rows_are_rejected(tmp_path: Path) -> None:
    src, truth = sample(tmp_path, "appointments", 3_000)
    run("appointments", src, tmp_path / "out")
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet").dropna(subset=["record"])
    ids = [r.split('"AppointmentID": "')[1].split('"')[0] for r in rejected["raw"]]
    precision, recall, msg = scores(ids, truth.planted["malformed"])
    assert recall >= 0.9, msg
    assert precision >= 0.8, msg


def test_portuguese_export_with_zones_and_no_show_flag(tmp_path: Path) -> None:
    src = tmp_path / "agenda.csv"
    src.write_text(
        "consulta_id;paciente;profissional;data_consulta;duracao;No-show\n"
        "1;Ana;Dr Silva;03/06/2024 09:00;30;Não\n"
        "2;Bruno;Dr Silva;2024-06-03T09:15:00-03:00;30;Sim\n"
        "3;Ana;Dra Lima;2024-06-03T06:10:00-03:00;20;Não\n"
        "4;Caio;Dra Lima;ontem;30;Não\n"
    )
    result = run("appointments", src, tmp_path / "out")
    bookings = table(tmp_path / "out", "appointments.parquet", ["appointment_id"])
    assert bookings["start"].dt.strftime("%H:%M").tolist() == ["09:00", "12:15", "09:10"]
    assert bookings["status"].tolist() == ["attended", "no_show", "attended"]
    conflicts = pd.read_parquet(tmp_path / "out" / "conflicts.parquet")
    assert conflicts["kind"].tolist() == ["patient"]  # Ana at 09:00 and 09:10 UTC
    assert result.summary["no_shows"] == 1
    assert result.summary["rejected_rows"] == 1


def test_kaggle_no_show_export_and_cancellations(tmp_path: Path) -> None:
    src = tmp_path / "kaggle.json"
    src.write_text(
        '[{"PatientId": 1, "AppointmentID": 10, "ScheduledDay": "2016-04-29T18:38:08Z",'
        ' "AppointmentDay": "2016-04-29T00:00:00Z", "Neighbourhood": "X", "No-show": "Yes",'
        ' "doctor": "d1"},'
        ' {"PatientId": 2, "AppointmentID": 11, "ScheduledDay": "2016-04-20T10:00:00Z",'
        ' "AppointmentDay": "2016-04-29T00:00:00Z", "status": "Cancelled", "doctor": "d1"}]'
    )
    result = run("appointments", src, tmp_path / "out")
    daily = pd.read_parquet(tmp_path / "out" / "daily_professional.parquet")
    assert daily.iloc[0][["bookings", "cancellations", "no_shows"]].tolist() == [2, 1, 1]
    assert daily.iloc[0]["no_show_rate"] == 1.0
    assert result.summary["conflicts"] == {
        "professional": 0,
        "patient": 0,
    }  # the cancelled one does not clash


def _sweep_by_hand(bookings: pd.DataFrame, kind: str) -> set[tuple[str, str, str]]:
    """A held booking clashes with the earlier booking of its entity (in start, id order)
    that reaches furthest, the latest of those on a tie: looked at pair by pair."""
    out = set()
    held = bookings[bookings["status"] != "cancelled"]
    for _, group in held.groupby(kind):
        rows = group.sort_values(["start", "id"], kind="stable").to_dict("records")
        for i, b in enumerate(rows):
            earlier = rows[:i]
            if earlier and b["start"] < max(e["end"] for e in earlier):
                reach = max(e["end"] for e in earlier)
                other = [e for e in earlier if e["end"] == reach][-1]
                out.add((kind, b["id"], other["id"]))
    return out


def test_conflicts_across_weeks_match_a_pairwise_check(tmp_path: Path) -> None:
    # given bookings over five weeks, out of time order, some running for days (into the
    # next week's bucket), some cancelled
    rng = np.random.default_rng(21)
    n = 600
    start = pd.Timestamp("2024-03-01T00:00Z") + pd.to_timedelta(
        rng.integers(0, 35 * 96, n) * 15, "min"
    )
    minutes = rng.choice([15, 30, 60, 3 * 24 * 60], n, p=[0.4, 0.4, 0.17, 0.03])
    bookings = pd.DataFrame(
        {
            "id": [f"B{i:04d}" for i in range(n)],
            "professional": rng.choice([f"DR{i}" for i in range(4)], n),
            "patient": rng.choice([f"P{i:02d}" for i in range(60)], n),
            "start": start,
            "end": start + pd.to_timedelta(minutes, "min"),
            "status": rng.choice(["attended", "cancelled"], n, p=[0.9, 0.1]),
        }
    )
    src = tmp_path / "schedule.csv"
    bookings.assign(
        start=bookings["start"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), duration_min=minutes
    ).drop(columns="end").to_csv(src, index=False)
    # when processed in small chunks
    run("appointments", src, tmp_path / "out", chunk_rows=97)
    # then the conflicts are exactly those a pair-by-pair check finds
    found = pd.read_parquet(tmp_path / "out" / "conflicts.parquet")
    got = set(
        zip(found["kind"], found["appointment_id"], found["other_appointment_id"], strict=True)
    )
    expected = _sweep_by_hand(bookings, "professional") | _sweep_by_hand(bookings, "patient")
    assert got == expected
    assert len(expected) > 50


@pytest.mark.parametrize("scale", [1, 1 << 61])
def test_running_end_per_entity_is_pandas_cummax(scale: int) -> None:
    # given ends of bookings sorted by entity (small ends, and ends so spread that lifting
    # them by entity would overflow: pandas then does it)
    from s3worker.processors.appointments.conflicts import _group_cummax

    rng = np.random.default_rng(4)
    group = np.sort(rng.integers(0, 50, 2_000))
    end = rng.integers(0, 1_000, 2_000) * (scale // 1_000 or 1)
    # when the running maximum is taken per entity
    reach = _group_cummax(group, end)
    # then it is pandas' group-by cummax
    expected = pd.Series(end).groupby(group).cummax().to_numpy()
    np.testing.assert_array_equal(reach, expected)


def test_sub_millisecond_starts_are_floored_to_the_millisecond(tmp_path: Path) -> None:
    # Given a schedule exported with sub-millisecond precision (as some systems write ISO times)
    src = tmp_path / "agenda.csv"
    src.write_text(
        "appointment_id,patient,professional,start,duration\n"
        "1,Ana,Dr Silva,2024-05-06T08:00:00.1234Z,30\n"
        "2,Bruno,Dr Silva,2024-05-06T09:00:00.000999Z,30\n"
    )
    # When processed, the job does not fail ("would lose data") and nothing is rejected
    result = run("appointments", src, tmp_path / "out")
    assert result.summary["rejected_rows"] == 0
    bookings = table(tmp_path / "out", "appointments.parquet", ["appointment_id"])
    assert bookings["start"].dt.strftime("%H:%M:%S.%f").tolist() == [
        "08:00:00.123000", "09:00:00.000000",
    ]  # fmt: skip
