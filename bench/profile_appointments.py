"""CPU seconds per stage of the appointments processor, the stages run one after another.

The processor runs its stages on their own threads, so a profile of it shows them mixed;
here the file is read once alone (the CSV read: process CPU, its parsing threads
included), then again with each stage run on the caller's thread (the two kinds of the
conflicts' sweep too), whose thread CPU time is added up per stage:

    .venv/bin/python bench/profile_appointments.py /tmp/appt/appointments-0.5GiB.csv
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from s3worker.processors.appointments import analysis as a
from s3worker.processors.appointments.conflicts import Sweeper
from s3worker.processors.appointments.daily import SUMMARY, DayCounts
from s3worker.processors.base import JobContext
from s3worker.processors.tabular.output import ParquetSink, RejectSink, write_frame
from s3worker.processors.tabular.reading import iter_chunks


class Inline:
    """An executor that runs each call at once, on the caller's thread."""

    def submit(self, call: Callable[..., Any], *args: Any) -> Future[Any]:
        done: Future[Any] = Future()
        done.set_result(call(*args))
        return done


def profile(src: Path, out: Path) -> dict[str, float]:
    spent: defaultdict[str, float] = defaultdict(float)

    def clock(stage: str, call: Callable[..., Any], *args: Any) -> Any:
        started = time.thread_time()
        result = call(*args)
        spent[stage] += time.thread_time() - started
        return result

    ctx = JobContext(key=src.name, size=src.stat().st_size)
    started = time.process_time()
    for _ in iter_chunks(src, ctx.chunk_rows, ctx.sample, ctx.options):
        pass
    spent["CSV read"] = time.process_time() - started
    written = getattr(a, "written", lambda b: b)  # the code before had none
    rejected, counts = RejectSink(out), DayCounts()
    encoded = [a.BOOKING_ENCODED] if hasattr(a, "BOOKING_ENCODED") else []  # none before
    table = ParquetSink(out, "appointments.parquet", a.BOOKINGS, a.BOOKING_DICTIONARY, *encoded)
    sweeper = Sweeper(Inline())  # type: ignore[arg-type]
    reader = None
    for chunk in iter_chunks(src, ctx.chunk_rows, ctx.sample, ctx.options):
        reader = reader or a.Reader(chunk, ctx)
        bookings, rejects = clock("conversion", reader.bookings, chunk)
        clock("rejects Parquet", rejected.add, rejects)
        clock("bookings Parquet", lambda b: table.write(written(b)), bookings)
        clock("conflict sweep", sweeper.add, a.swept(bookings))
        clock("day counts", counts.add, bookings)
    clock("bookings Parquet", table.close)
    found = clock("conflict sweep", sweeper.finish)
    clock("small outputs", write_frame, out, "conflicts.parquet", found, a.CONFLICTS)
    daily = clock("daily table", counts.daily)
    clock("small outputs", write_frame, out, "daily_professional.parquet", daily, SUMMARY)
    return spent


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="profile-appointments-") as tmp:
        spent = profile(Path(sys.argv[1]), Path(tmp))
    for stage, seconds in spent.items():
        print(f"{stage:18s} {seconds:6.2f} s")
    print(f"{'total':18s} {sum(spent.values()):6.2f} s")


if __name__ == "__main__":
    main()
