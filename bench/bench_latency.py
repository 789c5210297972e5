"""The daemon where AWS is slow: every S3/SQS call through a proxy that adds a fixed latency
(bench/latency_proxy.py), with the plain sequential consumer and the bare-calls ceiling
measured through the same proxy in the same run; then large objects through a bandwidth cap.

    .venv/bin/python bench/bench_latency.py [--latencies 10,30,60] [--files 100]

Per latency: files/s of each, the daemon's ratio to the ceiling and to the plain consumer, and
to the CPU-bound limit (cores / the daemon's CPU seconds per file, measured in the same run);
the calls bound: the ceiling's calls per second divided by the daemon's calls per file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from bench_pipeline import (
    call_mix,
    ceiling,
    enqueue,
    make_corpus,
    new_bucket,
    new_queue,
    plain_consumer,
    run_daemon,
    upload_corpus,
)
from common import ROOT, emulator
from latency_proxy import CALLS_PATH
from procs import Pipeline

# The bandwidth run: one object of LARGE_MIB through a link of LINK_MIB_S, one stream of it
# at most STREAM_MIB_S (S3 serves one connection at a fraction of an instance's network).
# Kept below what the emulator itself moves on a loaded 2-core machine (measured through the
# proxy without a cap: ~27 MiB/s down, ~13 MiB/s up), so the cap is what is measured.
LARGE_MIB = 64
LINK_MIB_S = 4.0
STREAM_MIB_S = 1.5
ONE_STREAM_MIB = 8  # the single-GET comparison reads this much of the object
THREADS = 16  # the ceilings' client threads
# Each ceiling thread takes 10 messages and makes their calls one after another: with the
# daemon's ~30 calls per file on a loaded machine that outlasts a 30 s visibility timeout, and
# SQS would hand the rest to another thread (files done twice). The daemon heart-beats instead.
CEILING_VISIBILITY = 900


@contextlib.contextmanager
def latency_proxy(
    upstream: str, latency_ms: float, link: float = 0, stream: float = 0
) -> Iterator[str]:
    """The proxy in its own process; while the block runs, AWS_ENDPOINT_URL points at it (for
    this process's clients and every daemon started meanwhile)."""
    argv = [sys.executable, str(ROOT / "bench" / "latency_proxy.py"), "--upstream", upstream,
            "--latency-ms", str(latency_ms), "--link-mib-s", str(link),
            "--stream-mib-s", str(stream)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        yield url
    finally:
        os.environ["AWS_ENDPOINT_URL"] = upstream
        proc.terminate()
        proc.wait(timeout=30)


def small_files(
    upstream: str, latency_ms: float, n: int, n_plain: int, folder: Path, rounds: int = 2
) -> dict[str, Any]:
    """Daemon, ceiling and same-calls ceiling alternated (`rounds` of each on n files), the
    plain consumer once between them: the machine's load drifts, and each figure is the median
    of its runs. The proxy counts every run's calls."""
    pipe = Pipeline.create(f"lat-{uuid.uuid4().hex[:8]}", visibility_timeout=60)
    events = upload_corpus(pipe, make_corpus(folder, 60), n * rounds + n_plain)
    runs = folder / f"at-{latency_ms:g}ms"
    runs.mkdir()
    daemons, ceilings, same = [], [], []
    with latency_proxy(upstream, latency_ms) as url:
        for r in range(rounds):
            batch = events[r * n : (r + 1) * n]
            own = runs / f"daemon-{r}"  # its own log: the run counts the job lines in it
            own.mkdir()
            queue = _queue(pipe, f"d{r}", batch)
            run = partial(run_daemon, pipe, queue, pipe.processed, n, own)
            daemons.append(counted(url, n, run))
            manifest = pipe.manifest(batch[0]["detail"]["object"]["key"])
            assert manifest, "the daemon wrote no manifest"
            sizes = call_mix(pipe.processed, manifest)
            queue, bucket = (
                _queue(pipe, f"c{r}", batch, CEILING_VISIBILITY),
                new_bucket(f"{pipe.raw}-c{r}"),
            )
            ceilings.append(counted(url, n, partial(ceiling, queue, bucket, n, sizes, THREADS)))
            s3_calls = {k: v for k, v in daemons[-1]["calls_per_file"].items() if k[:3] == "s3:"}
            queue, bucket = (
                _queue(pipe, f"s{r}", batch, CEILING_VISIBILITY),
                new_bucket(f"{pipe.raw}-s{r}"),
            )
            same.append(counted(url, n, partial(same_calls_ceiling, queue, bucket, n, sizes,
                                                s3_calls)))  # fmt: skip
            if r == 0:
                queue, bucket = _queue(pipe, "p", events[-n_plain:]), new_bucket(f"{pipe.raw}-p")
                plain = counted(url, n_plain, partial(plain_consumer, queue, bucket, n_plain, runs))
    return _row(latency_ms, _medians(daemons), plain, _medians(ceilings), _medians(same), manifest)


def _queue(
    pipe: Pipeline, suffix: str, events: list[dict[str, Any]], visibility: int | None = None
) -> str:
    queue = new_queue(f"{pipe.raw}-{suffix}")
    if visibility is not None:
        boto3.client("sqs").set_queue_attributes(
            QueueUrl=queue, Attributes={"VisibilityTimeout": str(visibility)}
        )
    enqueue(queue, events)
    return queue


def _row(
    latency_ms: float,
    daemon: dict[str, Any],
    plain: dict[str, Any],
    ceil: dict[str, Any],
    same: dict[str, Any],
    manifest: dict[str, Any],
) -> dict[str, Any]:
    cpu_limit = (os.cpu_count() or 1) / daemon["cpu_s_per_file"]
    d = daemon["files_per_s"]
    # What the ceiling's rate of calls allows at the daemon's calls per file: the ratio the
    # daemon could reach if its calls cost what the ceiling's do (its contract's calls bound).
    ceiling_calls_per_s = ceil["files_per_s"] * ceil["calls_per_file_total"]
    calls_bound = ceiling_calls_per_s / daemon["calls_per_file_total"]
    return {
        "latency_ms": latency_ms,
        "daemon": daemon,
        "plain": plain,
        "ceiling": ceil,
        "same_calls_ceiling": same,
        "outputs_per_file": len(manifest["outputs"]),
        "cpu_bound_files_per_s": round(cpu_limit, 1),
        "calls_bound_files_per_s": round(calls_bound, 2),
        "calls_bound_vs_ceiling": round(calls_bound / ceil["files_per_s"], 2),
        "daemon_vs_calls_bound": round(d / calls_bound, 2),
        "daemon_vs_ceiling": round(d / ceil["files_per_s"], 2),
        "daemon_vs_same_calls_ceiling": round(d / same["files_per_s"], 2),
        "daemon_vs_plain": round(d / plain["files_per_s"], 2),
        "daemon_vs_cpu_bound": round(d / cpu_limit, 2),
    }


def proxy_calls(url: str) -> Counter[str]:
    with urllib.request.urlopen(url + CALLS_PATH, timeout=30) as resp:
        return Counter(json.loads(resp.read()))


def counted(url: str, files: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`run()`'s result with the calls it made through the proxy, per file and in all."""
    before = proxy_calls(url)
    result = run()
    made = proxy_calls(url) - before
    per_file = {k: round(v / files, 2) for k, v in sorted(made.items())}
    return {**result, "calls_per_file": per_file, "calls_per_file_total": round(
        sum(made.values()) / files, 1)}  # fmt: skip


def same_calls_ceiling(
    queue: str, out_bucket: str, n: int, output_sizes: list[int], s3_calls: dict[str, float]
) -> dict[str, Any]:
    """The bare-calls ceiling making as many S3 calls of each kind per file as the daemon made
    (counted by the proxy in the daemon's run just before): HEADs of the input, GETs (the input,
    then the results' manifest), PUTs (the outputs' sizes, then small documents); SQS as the
    plain ceiling (receive 10, delete in a batch). What the emulator allows for the calls the
    daemon's contract needs (version checks, the compare-and-swap manifest, the table index)."""
    heads, gets = round(s3_calls.get("s3:HEAD", 0)), round(s3_calls.get("s3:GET", 0))
    puts = round(s3_calls.get("s3:PUT", 0))
    bodies = [b"x" * size for size in output_sizes][:puts]
    bodies += [b"s3://bucket/key\n"] * (puts - len(bodies))

    def one(s3: Any, detail: dict[str, Any]) -> None:
        bucket, key = detail["bucket"]["name"], detail["object"]["key"]
        for _ in range(heads):
            s3.head_object(Bucket=bucket, Key=key)
        s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for _ in range(gets - 1):
            with contextlib.suppress(s3.exceptions.NoSuchKey):
                s3.get_object(Bucket=out_bucket, Key=f"{key}/_manifest.json")["Body"].read()
        for i, body in enumerate(bodies):
            s3.put_object(Bucket=out_bucket, Key=f"{key}/out-{i}", Body=body)

    result = ceiling(queue, out_bucket, n, [], THREADS, per_file=one)
    return {**result, "puts_per_file": puts, "s3_calls_per_file": heads + gets + puts}


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in ("files_per_s", "cpu_s_per_file", "calls_per_file_total") if k in runs[0]]
    out = {k: round(statistics.median(r[k] for r in runs), 4) for k in keys}
    return {"files": runs[0]["files"], **out, "runs": runs}


def large_object(upstream: str, folder: Path, latency_ms: float = 30) -> dict[str, Any]:
    """Download and upload of one large object by the daemon's own code (storage.py /
    transfers.py) through the capped link; one plain GET stream of it for comparison."""
    from s3worker.aws import ClientsContext
    from s3worker.contract import Layout
    from s3worker.events import ObjectRef
    from s3worker.retry import RetryPolicy
    from s3worker.storage import Fetched, Storage

    bucket = new_bucket(f"big-{uuid.uuid4().hex[:8]}")
    src = folder / "large.bin"
    src.write_bytes(os.urandom(LARGE_MIB * 2**20))
    boto3.client("s3").upload_file(str(src), bucket, "large.bin")
    head = boto3.client("s3").head_object(Bucket=bucket, Key="large.bin")
    ref = ObjectRef(bucket, "large.bin", head["ContentLength"], head["ETag"].strip('"'))

    async def transfers() -> tuple[float, float, float]:
        async with ClientsContext(8) as clients:
            s3 = CompleteTimer(clients.s3)
            storage = Storage(s3, RetryPolicy(), bucket, Layout())
            t0 = time.perf_counter()
            await storage.download(Fetched(ref), folder / "down.bin")
            t1 = time.perf_counter()
            await storage.transfers.upload_file(bucket, src, "copy.bin")
            return t1 - t0, time.perf_counter() - t1, s3.seconds

    with latency_proxy(upstream, latency_ms, LINK_MIB_S, STREAM_MIB_S):
        down_s, up_s, complete_s = asyncio.run(transfers())
        t0 = time.perf_counter()
        span = f"bytes=0-{ONE_STREAM_MIB * 2**20 - 1}"
        boto3.client("s3").get_object(Bucket=bucket, Key="large.bin", Range=span)["Body"].read()
        one_stream_s = time.perf_counter() - t0
    assert (folder / "down.bin").read_bytes() == src.read_bytes(), "download differs"
    mib = LARGE_MIB
    return {
        "object_mib": mib,
        "link_mib_s": LINK_MIB_S,
        "stream_mib_s": STREAM_MIB_S,
        "latency_ms": latency_ms,
        "download_mib_s": round(mib / down_s, 1),
        "upload_mib_s": round(mib / up_s, 1),
        # CompleteMultipartUpload: the emulator assembles the object (1.7 s for 64 MiB without
        # the proxy on this machine); the parts' own rate is the rest.
        "complete_s": round(complete_s, 2),
        "upload_parts_mib_s": round(mib / (up_s - complete_s), 1),
        "upload_parts_vs_cap": round(mib / (up_s - complete_s) / LINK_MIB_S, 2),
        "one_get_stream_mib_s": round(ONE_STREAM_MIB / one_stream_s, 1),
        "download_vs_cap": round(mib / down_s / LINK_MIB_S, 2),
        "upload_vs_cap": round(mib / up_s / LINK_MIB_S, 2),
    }


class CompleteTimer:
    """An S3 client that times its CompleteMultipartUpload calls."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.s3, name)
        if name != "complete_multipart_upload":
            return fn

        async def timed(**params: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(**params)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


def run(latencies: list[float], n: int, n_plain: int, folder: Path) -> dict[str, Any]:
    upstream = os.environ["AWS_ENDPOINT_URL"]
    rows = [small_files(upstream, ms, n, n_plain, folder) for ms in latencies]
    return {"small_files": rows, "large_object": large_object(upstream, folder)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latencies", default="10,30,60", help="ms per call, comma-separated")
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--plain-files", type=int, default=40)
    args = parser.parse_args()
    latencies = [float(x) for x in args.latencies.split(",")]
    with tempfile.TemporaryDirectory(prefix="s3worker-lat-") as tmp, emulator():
        print(json.dumps(run(latencies, args.files, args.plain_files, Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
