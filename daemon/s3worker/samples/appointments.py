"""Clinic schedules in the shape of a real export (mixed English/Kaggle column names).

Professionals work 30-minute slots from 08:00 to 18:00; each slot is booked or not.
Planted: conflicts (a second booking overlapping an existing one, for the same
professional or the same patient) and malformed rows (bad date, bad duration, no ids).
Times carry a -03:00 offset on half the rows: the processor must normalise them to UTC.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from s3worker.samples.writing import Truth

SLOTS_PER_DAY = 20
START = pd.Timestamp("2024-05-06T08:00:00Z")


def generate(rows: int, seed: int, truth: Truth) -> Iterator[pa.Table]:
    rng = np.random.default_rng(seed)
    n_prof = int(np.clip(rows // 400, 3, 200))
    days = max(1, rows // (n_prof * SLOTS_PER_DAY) + 1)
    cells = rng.choice(
        n_prof * days * SLOTS_PER_DAY, size=min(rows, n_prof * days * SLOTS_PER_DAY), replace=False
    )
    prof, rest = cells // (days * SLOTS_PER_DAY), cells % (days * SLOTS_PER_DAY)
    start = (
        START
        + pd.to_timedelta(rest // SLOTS_PER_DAY, "D")
        + pd.to_timedelta((rest % SLOTS_PER_DAY) * 30, "min")
    )
    n = cells.size
    status = rng.choice(["attended", "cancelled", "no-show"], size=n, p=[0.8, 0.08, 0.12])
    frame = pd.DataFrame(
        {
            "AppointmentID": [f"A{i:07d}" for i in range(n)],
            "PatientId": [f"P{i:07d}" for i in range(n)],
            "doctor": [f"DR-{p:03d}" for p in prof],
            "ScheduledDay": start - pd.to_timedelta(rng.integers(1, 30, n), "D"),
            "AppointmentDay": start,
            "duration_min": 30,
            "status": status,
        }
    )
    frame = _plant_conflicts(frame, rng, truth)
    yield _strings(frame, rng, truth)


def _plant_conflicts(frame: pd.DataFrame, rng: np.random.Generator, truth: Truth) -> pd.DataFrame:
    held = frame.index[frame["status"] != "cancelled"].to_numpy()
    picks = rng.choice(held, size=min(held.size, max(4, len(frame) // 200)), replace=False)
    extra = frame.loc[picks].copy()
    by_patient = np.arange(picks.size) % 2 == 1
    extra["AppointmentID"] = [f"X{i:07d}" for i in range(picks.size)]
    extra["AppointmentDay"] = extra["AppointmentDay"] + pd.Timedelta(minutes=10)
    extra["status"] = "attended"
    extra["duration_min"] = 15  # ends before the next slot: one overlap only
    # A patient conflict: same patient, another professional; else same professional.
    extra.loc[~by_patient, "PatientId"] = [f"Q{i:07d}" for i in range(int((~by_patient).sum()))]
    extra.loc[by_patient, "doctor"] = [f"DR-X{i:04d}" for i in range(int(by_patient.sum()))]
    truth.planted["professional"] = sorted(
        zip(
            frame.loc[picks[~by_patient], "AppointmentID"],
            extra.loc[~by_patient, "AppointmentID"],
            strict=True,
        )
    )
    truth.planted["patient"] = sorted(
        zip(
            frame.loc[picks[by_patient], "AppointmentID"],
            extra.loc[by_patient, "AppointmentID"],
            strict=True,
        )
    )
    both = pd.concat([frame, extra]).sort_values("AppointmentDay", kind="stable")
    return both.reset_index(drop=True)


def _strings(frame: pd.DataFrame, rng: np.random.Generator, truth: Truth) -> pa.Table:
    local = rng.random(len(frame)) < 0.5
    day = frame["AppointmentDay"]
    text = day.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    text[local] = day[local].dt.tz_convert("-03:00").dt.strftime("%Y-%m-%dT%H:%M:%S-03:00")
    out = frame.astype({"duration_min": "str"}).assign(
        AppointmentDay=text, ScheduledDay=frame["ScheduledDay"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    held = out.index[~out["AppointmentID"].str.startswith("X")].to_numpy()
    bad = rng.choice(held, size=min(held.size, max(3, len(out) // 300)), replace=False)
    for k, (column, value) in enumerate(
        (("AppointmentDay", "31/31/2024 99:99"), ("duration_min", "half hour"))
    ):
        out.loc[bad[k::3], column] = value
    out.loc[bad[2::3], ["PatientId", "doctor"]] = None
    truth.planted["malformed"] = sorted(out.loc[bad, "AppointmentID"].tolist())
    truth.planted["professional"] = [
        p for p in truth.planted["professional"] if not set(p) & set(truth.planted["malformed"])
    ]
    truth.planted["patient"] = [
        p for p in truth.planted["patient"] if not set(p) & set(truth.planted["malformed"])
    ]
    return pa.Table.from_pandas(out.astype("str").where(out.notna(), None), preserve_index=False)


def broken_lines(fmt: str) -> list[str]:
    return ["A9999999,P1"] if fmt == "csv" else ["{broken"]
