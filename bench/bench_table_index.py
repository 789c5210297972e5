"""What the table index costs a job, at AWS-like latency: one sales input of DAYS days.

The index writes one entry per table and day (`s3worker.tables`). Through a proxy that adds
up to 60 ms to every S3 call (30 ms mean), the entries of one input are written one at a time
(PARALLEL_PUTS=1) and 8 at a time (the daemon's setting), alternating, REPEATS times each;
medians and their ratio are printed. Run: .venv/bin/python bench/bench_table_index.py
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

DAYS = 365
REPEATS = 3
BUCKET = "bench-processed"


def keys(tag: str) -> list[str]:
    root = "sales/year.csv/"
    first = datetime.date(2025, 1, 1)
    days = [f"{root}sales/dt={first + datetime.timedelta(d)}/part-0.{tag}.parquet"
            for d in range(DAYS)]  # fmt: skip
    daily = ["daily_totals", "daily_store", "top_products"]
    return [f"{root}{name}.{tag}.parquet" for name in daily] + days


async def update(parallel: int, tag: str) -> float:
    from s3worker import tables
    from s3worker.aws import ClientsContext
    from s3worker.contract import Layout
    from s3worker.events import ObjectRef
    from s3worker.retry import RetryPolicy
    from s3worker.storage import Storage

    tables.PARALLEL_PUTS = parallel
    async with ClientsContext(8) as clients:
        storage = Storage(clients.s3, RetryPolicy(3), BUCKET, Layout())
        started = time.perf_counter()
        await tables.TableIndex(storage).update(
            ObjectRef("raw", "sales/year.csv"), "sales", keys(tag), ()
        )
        return time.perf_counter() - started


def main() -> None:
    from conftest import CREDENTIALS, free_port
    from faults import FaultPlan, FaultProxy
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(CREDENTIALS)
    plan = FaultPlan(rates={}, latency={"s3": (1.0, 0.06)})
    with FaultProxy(f"http://127.0.0.1:{port}", plan) as proxy:
        os.environ["AWS_ENDPOINT_URL"] = proxy.url
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        times: dict[int, list[float]] = {1: [], 8: []}
        for i in range(REPEATS):
            for parallel in (1, 8):
                times[parallel].append(asyncio.run(update(parallel, f"{i:016x}")))
    server.stop()
    one, eight = (statistics.median(times[p]) for p in (1, 8))
    ratio = one / eight
    print(f"{DAYS + 3} entries, S3 latency up to 60 ms: one at a time {one:.2f} s, 8 at a "
          f"time {eight:.2f} s (median of {REPEATS}, alternated); ratio {ratio:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
