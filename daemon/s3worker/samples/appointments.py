"""Clinic schedules in the shape of a real export (mixed English/Kaggle column names).

Professionals work 30-minute slots from 08:00 to 18:00; each slot is booked or not.
Planted: conflicts (a second booking overlapping an existing one, for the same
professional or the same patient) and malformed rows (bad date, bad duration, no ids).
Times carry a -03:00 offset on half the rows: the processor must normalise them to UTC.

How it scales: one block of at most BLOCK_ROWS bookings is drawn (numpy, every column as
numbers), then written as many times as the size needs, each copy shifted: its days follow
the previous copy's last day, its appointment, patient and planted-professional numbers
follow the previous copy's. So a large schedule is the same 200 professionals working on
through more weeks, with conflicts (1 in 200 bookings), cancellations and no-shows (8 % and
12 %) and malformed rows (1 in 300) at the rates of one block. The text is made by Arrow's
vectorised kernels (number and timestamp formatting), never per value in Python: 2 GiB take
a few minutes. A schedule of at most BLOCK_ROWS rows is that one block, as it always was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.samples.writing import Truth

SLOTS_PER_DAY = 20
START = np.datetime64("2024-05-06T08:00:00", "s")
BLOCK_ROWS = 500_000
DAY_S = 86_400
STATUSES = ["attended", "cancelled", "no-show"]
BAD_DAY, BAD_DURATION = "31/31/2024 99:99", "half hour"
I64 = npt.NDArray[np.int64]


@dataclass
class Block:
    """One schedule as numbers, rows in file order; `extra` marks the planted second
    bookings, whose `number` counts them apart from the others (X... against A...)."""

    number: I64  # the appointment's number (A or X), also the patient's (P or Q) unless noted
    extra: npt.NDArray[np.bool_]
    patient: I64
    patient_q: npt.NDArray[np.bool_]  # a planted professional conflict's own patient (Q...)
    prof: I64  # DR-<prof>, or DR-X<prof> where prof_x
    prof_x: npt.NDArray[np.bool_]
    start: npt.NDArray[np.datetime64]
    scheduled: npt.NDArray[np.datetime64]
    duration: I64
    status: npt.NDArray[np.str_]
    local: npt.NDArray[np.bool_]
    bad: I64  # rows spoiled: [0::3] the day, [1::3] the duration, [2::3] both ids
    pairs: dict[str, list[tuple[int, int]]]  # kind -> (A number, X number) planted
    days: int
    counts: tuple[int, int, int]  # A rows, X rows, patient conflicts (DR-X...)


def generate(rows: int, seed: int, truth: Truth) -> Iterator[pa.Table]:
    blocks = max(1, -(-rows // BLOCK_ROWS))
    block = draw(-(-rows // blocks), seed)
    for k in range(blocks):
        yield render(block, k, truth)


def draw(rows: int, seed: int) -> Block:
    """The bookings of `rows` slots, with conflicts planted and rows spoiled."""
    rng = np.random.default_rng(seed)
    n_prof = int(np.clip(rows // 400, 3, 200))
    days = max(1, rows // (n_prof * SLOTS_PER_DAY) + 1)
    space = n_prof * days * SLOTS_PER_DAY
    cells = rng.choice(space, size=min(rows, space), replace=False)
    prof, rest = cells // (days * SLOTS_PER_DAY), cells % (days * SLOTS_PER_DAY)
    start = START + (rest // SLOTS_PER_DAY) * DAY_S + (rest % SLOTS_PER_DAY) * 1800
    n = cells.size
    status = rng.choice(STATUSES, size=n, p=[0.8, 0.08, 0.12])
    scheduled = start - rng.integers(1, 30, n) * DAY_S
    # Planted: a second booking 10 minutes into a held one, 15 minutes long (one overlap
    # only); every other one a patient conflict (same patient, another professional).
    held = np.flatnonzero(status != "cancelled")
    picks = rng.choice(held, size=min(held.size, max(4, n // 200)), replace=False)
    by_patient = np.arange(picks.size) % 2 == 1
    m = picks.size
    number = np.concatenate([np.arange(n), np.arange(m)])
    extra = np.arange(n + m) >= n
    patient_q = np.concatenate([np.zeros(n, bool), ~by_patient])
    prof_x = np.concatenate([np.zeros(n, bool), by_patient])
    patient = np.concatenate([np.arange(n), picks])
    patient[patient_q] = np.arange(int((~by_patient).sum()))
    profs = np.concatenate([prof, prof[picks]])
    profs[prof_x] = np.arange(int(by_patient.sum()))
    starts = np.concatenate([start, start[picks] + 600])
    order = np.argsort(starts, kind="stable")
    local = rng.random(n + m) < 0.5
    held_rows = np.flatnonzero(~extra[order])
    bad = rng.choice(held_rows, size=min(held_rows.size, max(3, (n + m) // 300)), replace=False)
    pairs = {
        kind: list(zip(picks[mask].tolist(), np.flatnonzero(mask).tolist(), strict=True))
        for kind, mask in (("professional", ~by_patient), ("patient", by_patient))
    }
    return Block(
        number[order], extra[order], patient[order], patient_q[order], profs[order],
        prof_x[order], starts[order], np.concatenate([scheduled, scheduled[picks]])[order],
        np.where(extra, 15, 30)[order], np.concatenate([status, np.full(m, "attended")])[order],
        local, bad, pairs, days, (n, m, int(by_patient.sum())),
    )  # fmt: skip


def render(block: Block, k: int, truth: Truth) -> pa.Table:
    """Copy `k` of the block as the export's text columns (its truth added to `truth`)."""
    n, m, m_x = block.counts
    shift = np.timedelta64(k * block.days * DAY_S, "s")
    ident = _either(block.extra, ("X", block.number + k * m, 7), ("A", block.number + k * n, 7))
    patient = _either(
        block.patient_q,
        ("Q", block.patient + k * (m - m_x), 7),
        ("P", block.patient + k * n, 7),
    )
    doctor = _either(block.prof_x, ("DR-X", block.prof + k * m_x, 4), ("DR-", block.prof, 3))
    start = block.start + shift
    day = pc.if_else(
        pa.array(block.local),
        _clock(start - np.timedelta64(3 * 3600, "s"), "-03:00"),
        _clock(start, "Z"),
    )
    spoiled = np.zeros(block.start.size, bool)
    spoiled[block.bad[2::3]] = True
    no_ids = pa.array(spoiled)
    table = pa.table(
        {
            "AppointmentID": ident,
            "PatientId": pc.if_else(no_ids, pa.scalar(None, pa.string()), patient),
            "doctor": pc.if_else(no_ids, pa.scalar(None, pa.string()), doctor),
            "ScheduledDay": _clock(block.scheduled + shift, "Z"),
            "AppointmentDay": _spoil(day, block.bad[0::3], BAD_DAY),
            "duration_min": _spoil(
                pc.cast(pa.array(block.duration), pa.string()), block.bad[1::3], BAD_DURATION
            ),
            "status": pa.array(block.status),
        }
    )
    _add_truth(block, ident, k, truth)
    return table


def _add_truth(block: Block, ident: pa.Array, k: int, truth: Truth) -> None:
    n, m, _ = block.counts
    malformed = sorted(ident.take(pa.array(block.bad)).to_pylist())
    spoiled = {int(s[1:]) - k * n for s in malformed}
    for kind, pairs in block.pairs.items():
        kept = sorted(
            (f"A{a + k * n:07d}", f"X{x + k * m:07d}") for a, x in pairs if a not in spoiled
        )
        truth.planted.setdefault(kind, []).extend(kept)
    truth.planted.setdefault("malformed", []).extend(malformed)


Label = tuple[str, I64, int]  # prefix, numbers, digits at least


def _either(mask: npt.NDArray[np.bool_], yes: Label, no: Label) -> pa.Array:
    """`f"{prefix}{number:0{digits}d}"` of `yes` where `mask`, of `no` elsewhere."""
    return pc.if_else(pa.array(mask), _labels(*yes), _labels(*no))


def _labels(prefix: str, numbers: I64, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _clock(times: npt.NDArray[np.datetime64], zone: str) -> pa.Array:
    """ISO 8601 to the second, `zone` written after it (`Z`, `-03:00`). Bookings fall on a
    few thousand slots: each distinct time is formatted once (Arrow's strftime is slow)."""
    distinct, inverse = np.unique(times.astype("datetime64[s]"), return_inverse=True)
    text = pc.strftime(pa.array(distinct), format=f"%Y-%m-%dT%H:%M:%S{zone}")
    return text.take(pa.array(inverse.ravel()))


def _spoil(text: pa.Array, rows: I64, value: str) -> pa.Array:
    mask = np.zeros(len(text), bool)
    mask[rows] = True
    return pc.if_else(pa.array(mask), pa.scalar(value), text)


def broken_lines(fmt: str) -> list[str]:
    return ["A9999999,P1"] if fmt == "csv" else ["{broken"]
