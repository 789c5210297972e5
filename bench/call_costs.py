"""What one call costs the emulator (moto's CPU) and the caller, by kind and by client: the
daemon's aiobotocore client (s3worker.aws, as the daemon builds it) against plain boto3 (what
the bare-calls ceiling uses), no proxy.

    .venv/bin/python bench/call_costs.py [--calls 300] [--rounds 3]

Each variant makes `--calls` calls, 8 at a time; the variants alternate within each round
and each figure is the median over rounds of moto's CPU (utime + stime from /proc, so a busy
machine inflates it less than wall time) and of the caller's CPU, in ms per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from common import emulator, loadavg
from s3worker.aws import ClientsContext

AT_ONCE = 8
BODY = os.urandom(3000)  # about one small Parquet output of a sales file
ENTRY = b"s3://bucket/results/small/00001.csv/daily/part-0.0123456789abcdef.parquet\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def moto_pid() -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[1]) == os.getpid() and b"moto_server" in cmd:
                return int(entry.name)
    raise RuntimeError("no moto_server child")


def aio_variants(s3: Any, sqs: Any, bucket: str, queue: str) -> dict[str, Callable[[int], Any]]:
    async def get(i: int) -> None:
        resp = await s3.get_object(Bucket=bucket, Key="small")
        async with resp["Body"] as body:
            await body.read()

    async def receive(i: int) -> None:
        await sqs.receive_message(
            QueueUrl=queue,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )

    return {
        "aio PUT output": lambda i: s3.put_object(
            Bucket=bucket, Key=f"o/{i}", Body=BODY, ContentType="application/vnd.apache.parquet"
        ),
        "aio PUT entry": lambda i: s3.put_object(
            Bucket=bucket, Key=f"e/{i}", Body=ENTRY, ContentType="text/plain"
        ),
        "aio PUT manifest": lambda i: s3.put_object(
            Bucket=bucket,
            Key=f"m/{uuid.uuid4().hex}",
            Body=BODY[:1500],
            ContentType="application/json",
            Metadata={"etag": "x" * 32},
            IfNoneMatch="*",
        ),
        "aio GET": get,
        "aio HEAD": lambda i: s3.head_object(Bucket=bucket, Key="small"),
        "aio ReceiveMessage (empty)": receive,
    }


def boto_variants(bucket: str, queue: str) -> dict[str, Callable[[Any, Any, int], Any]]:
    return {
        "boto3 PUT output": lambda s3, sqs, i: s3.put_object(
            Bucket=bucket, Key=f"b/{i}", Body=BODY
        ),
        "boto3 GET": lambda s3, sqs, i: s3.get_object(Bucket=bucket, Key="small")["Body"].read(),
        "boto3 HEAD": lambda s3, sqs, i: s3.head_object(Bucket=bucket, Key="small"),
        "boto3 ReceiveMessage (empty)": lambda s3, sqs, i: sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ),
    }


async def timed_aio(
    call: Callable[[int], Awaitable[Any]], n: int, moto: int
) -> tuple[float, float]:
    room = asyncio.Semaphore(AT_ONCE)

    async def one(i: int) -> None:
        async with room:
            await call(i)

    m0, c0 = cpu_seconds(moto), time.process_time()
    await asyncio.gather(*(one(i) for i in range(n)))
    return cpu_seconds(moto) - m0, time.process_time() - c0


def timed_boto(call: Callable[[Any, Any, int], Any], n: int, moto: int) -> tuple[float, float]:
    clients = [(boto3.client("s3"), boto3.client("sqs")) for _ in range(AT_ONCE)]
    m0, c0 = cpu_seconds(moto), time.process_time()
    with ThreadPoolExecutor(AT_ONCE) as pool:
        list(pool.map(lambda i: call(*clients[i % AT_ONCE], i), range(n)))
    return cpu_seconds(moto) - m0, time.process_time() - c0


async def measure(n: int, rounds: int) -> dict[str, Any]:
    moto = moto_pid()
    bucket, queue_name = f"cost-{uuid.uuid4().hex[:8]}", f"cost-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    boto3.client("s3").put_object(Bucket=bucket, Key="small", Body=BODY * 3)
    queue = boto3.client("sqs").create_queue(QueueName=queue_name)["QueueUrl"]
    seen: dict[str, list[tuple[float, float]]] = {}
    async with ClientsContext(8) as clients:
        aio = aio_variants(clients.s3, clients.sqs, bucket, queue)
        boto = boto_variants(bucket, queue)
        await timed_aio(aio["aio HEAD"], 20, moto)  # warm both: connections, loaders
        timed_boto(boto["boto3 HEAD"], 20, moto)
        for _ in range(rounds):
            for name, call in aio.items():
                seen.setdefault(name, []).append(await timed_aio(call, n, moto))
            for bname, bcall in boto.items():
                seen.setdefault(bname, []).append(timed_boto(bcall, n, moto))
    return {
        name: {
            "moto_ms": round(1000 * statistics.median(m for m, _ in runs) / n, 2),
            "caller_ms": round(1000 * statistics.median(c for _, c in runs) / n, 2),
        }
        for name, runs in seen.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with emulator():
        before = loadavg()
        result = asyncio.run(measure(args.calls, args.rounds))
        print(json.dumps({"load": [before, loadavg()], "per_call": result}, indent=2))


if __name__ == "__main__":
    main()
