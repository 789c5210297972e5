"""The daemon against baselines on the emulator, in one run: small-file throughput (daemon vs
the plain synchronous consumer vs the emulator's ceiling for the same calls), CPU per file,
warm upload → manifest latency, and cold start to READY=1 vs importing boto3.

    .venv/bin/python bench/bench_pipeline.py [--files 2000] [--latency-samples 40]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from common import (
    BIN,
    TreeCpu,
    emulator,
    log_events,
    percentile,
    start_daemon,
    wait_until,
)
from procs import Pipeline, eventbridge_event
from s3worker.events import parse_body
from s3worker.processors.base import JobContext, execute, read_sample
from s3worker.processors.registry import registry
from s3worker.samples import write_sample

DISTINCT_FILES = 20  # distinct contents, cycled over the keys


# --- the corpus ----------------------------------------------------------------------------


def make_corpus(folder: Path, rows: int) -> list[bytes]:
    bodies = []
    for seed in range(DISTINCT_FILES):
        path = folder / f"sales-{seed}.csv"
        write_sample("sales", rows, path, seed=seed)
        bodies.append(path.read_bytes())
    return bodies


def upload_corpus(pipe: Pipeline, bodies: list[bytes], n: int) -> list[dict[str, Any]]:
    """Put n objects once; return their EventBridge events (sent to each consumer's queue)."""
    s3 = boto3.client("s3")

    def put(i: int) -> dict[str, Any]:
        key = f"small/{i:05d}.csv"
        body = bodies[i % len(bodies)]
        resp = s3.put_object(Bucket=pipe.raw, Key=key, Body=body)
        return eventbridge_event(
            pipe.raw, key, len(body), resp["ETag"].strip('"'), resp.get("VersionId")
        )

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(put, range(n)))


def enqueue(queue_url: str, events: list[dict[str, Any]]) -> None:
    sqs = boto3.client("sqs")
    for i in range(0, len(events), 10):
        entries = [
            {"Id": str(k), "MessageBody": json.dumps(e)} for k, e in enumerate(events[i : i + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def new_queue(name: str) -> str:
    return str(boto3.client("sqs").create_queue(QueueName=name)["QueueUrl"])


def new_bucket(name: str) -> str:
    boto3.client("s3").create_bucket(Bucket=name)
    return name


# --- 1. the daemon --------------------------------------------------------------------------


class NotifySocket:
    """What systemd listens on: a datagram socket, read continuously (as systemd does: an unread
    socket fills and the daemon's next notify blocks); notes when READY=1 arrives."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"notify-{uuid.uuid4().hex[:8]}.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.5)
        self.ready_at: float | None = None
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, OSError):
                continue
            if self.ready_at is None and "READY=1" in data.decode().splitlines():
                self.ready_at = time.perf_counter()

    def wait_ready(self, timeout: float = 60) -> float:
        wait_until(lambda: self.ready_at is not None, timeout, "READY=1", every=0.001)
        assert self.ready_at is not None
        return self.ready_at

    def close(self) -> None:
        self._closed = True
        self._reader.join()
        self.sock.close()
        self.path.unlink(missing_ok=True)


def count_jobs(log: Path) -> int:
    # A substring count, not a JSON parse: this runs every 0.2 s on the daemon's cores.
    return log.read_bytes().count(b'"event": "job"')


def run_daemon(pipe: Pipeline, queue: str, out_bucket: str, n: int, folder: Path) -> dict[str, Any]:
    scratch, log = folder / "scratch-daemon", folder / "daemon.log"
    notify = NotifySocket(folder)
    env = pipe.env(
        scratch,
        S3WORKER_QUEUE_URL=queue,
        S3WORKER_OUTPUT_BUCKET=out_bucket,
        S3WORKER_CONCURRENCY=os.cpu_count() or 1,
        S3WORKER_IDLE_SECONDS=2,
        S3WORKER_POLL_SECONDS=1,
        NOTIFY_SOCKET=str(notify.path),
    )
    proc = start_daemon(env, log)
    cpu = TreeCpu(proc.pid)
    try:
        ready = notify.wait_ready()
        while (jobs := count_jobs(log)) < n:
            cpu.sample()
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited early ({proc.returncode}) after {jobs} jobs")
            time.sleep(0.2)
        done_at = time.perf_counter()
        cpu.sample()
        code = proc.wait(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):  # never leave a daemon behind
            os.killpg(proc.pid, signal.SIGKILL)
        notify.close()
    outcomes = [e.get("outcome") for e in log_events(log) if e.get("event") == "job"]
    seconds = done_at - ready
    return {
        "files": n,
        "seconds": round(seconds, 2),
        "files_per_s": round(n / seconds, 1),
        "cpu_s": round(cpu.total, 2),
        "cpu_s_per_file": round(cpu.total / n, 4),
        "processed": outcomes.count("processed"),
        "exit_code": code,
        "concurrency": os.cpu_count(),
        "note": "throughput timed READY=1 → last job line (0.2 s poll); CPU = whole process "
        "group incl. start-up and the 2 s idle tail",
    }


# --- 2. the plain consumer -------------------------------------------------------------------


def plain_consumer(queue: str, out_bucket: str, n: int, folder: Path) -> dict[str, Any]:
    """Synchronous boto3, one message at a time: receive, get, process, put, delete."""
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    work = folder / "plain"
    done, cpu0, t0 = 0, time.process_time(), time.perf_counter()
    while done < n:
        msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        for m in msgs.get("Messages", []):
            for ref in parse_body(m["Body"]).objects:
                src, out = work / "input", work / "out"
                work.mkdir(parents=True, exist_ok=True)
                s3.download_file(ref.bucket, ref.key, str(src))
                processor = registry.route(read_sample(src, ref.key))
                execute(processor, src, out, JobContext(key=ref.key, size=ref.size or 0))
                outputs = sorted(p for p in out.rglob("*") if p.is_file())
                for p in outputs:
                    key = f"{ref.key}/{p.relative_to(out).as_posix()}"
                    s3.put_object(Bucket=out_bucket, Key=key, Body=p.read_bytes())
                manifest = {"input": ref.key, "outputs": len(outputs)}
                s3.put_object(
                    Bucket=out_bucket,
                    Key=f"{ref.key}/_manifest.json",
                    Body=json.dumps(manifest).encode(),
                )
                for p in outputs:
                    p.unlink()
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            done += 1
    seconds = time.perf_counter() - t0
    return {
        "files": n,
        "seconds": round(seconds, 2),
        "files_per_s": round(n / seconds, 1),
        "cpu_s_per_file": round((time.process_time() - cpu0) / n, 4),
    }


# --- 3. the emulator's ceiling for the same calls ---------------------------------------------


def call_mix(out_bucket: str, sample_manifest: dict[str, Any]) -> list[int]:
    return [int(o["bytes"]) for o in sample_manifest["outputs"]]


def ceiling(
    queue: str,
    out_bucket: str,
    n: int,
    output_sizes: list[int],
    threads: int,
    per_file: Callable[[Any, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """A bare concurrent client making the daemon's calls per file and nothing else:
    receive (10), HEAD manifest, GET input, PUT each output and the manifest, delete (batch).
    `per_file(s3, detail)`: other S3 calls per file instead of those."""
    done = 0
    lock = threading.Lock()
    payloads = [b"x" * size for size in output_sizes]

    def calls(s3: Any, detail: dict[str, Any]) -> None:
        key = detail["object"]["key"]
        with contextlib.suppress(s3.exceptions.ClientError):
            s3.head_object(Bucket=out_bucket, Key=f"{key}/_manifest.json")
        s3.get_object(Bucket=detail["bucket"]["name"], Key=key)["Body"].read()
        for i, body in enumerate(payloads):
            s3.put_object(Bucket=out_bucket, Key=f"{key}/out-{i}", Body=body)
        s3.put_object(Bucket=out_bucket, Key=f"{key}/_manifest.json", Body=b"{}")

    def worker() -> None:
        nonlocal done
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        while True:
            with lock:
                if done >= n:
                    return
            msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            batch = msgs.get("Messages", [])
            for m in batch:
                (per_file or calls)(s3, json.loads(m["Body"])["detail"])
            if batch:
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ]
                sqs.delete_message_batch(QueueUrl=queue, Entries=entries)
                with lock:
                    done += len(batch)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(worker) for _ in range(threads)]:
            f.result()
    seconds = time.perf_counter() - t0
    return {
        "files": n,
        "seconds": round(seconds, 2),
        "files_per_s": round(n / seconds, 1),
        "threads": threads,
        "puts_per_file": len(payloads) + 1,
    }


def small_files(n: int, rows: int, folder: Path) -> dict[str, Any]:
    pipe = Pipeline.create(f"b-{uuid.uuid4().hex[:8]}", visibility_timeout=60)
    events = upload_corpus(pipe, make_corpus(folder, rows), n)
    size = sum(e["detail"]["object"]["size"] for e in events) / n
    enqueue(pipe.queue_url, events)
    daemon = run_daemon(pipe, pipe.queue_url, pipe.processed, n, folder)
    manifest = pipe.manifest(events[0]["detail"]["object"]["key"])
    assert manifest, "the daemon wrote no manifest"
    plain_q, plain_b = new_queue(f"{pipe.raw}-plain"), new_bucket(f"{pipe.raw}-plain-out")
    enqueue(plain_q, events)
    plain = plain_consumer(plain_q, plain_b, n, folder)
    ceil_q, ceil_b = new_queue(f"{pipe.raw}-ceil"), new_bucket(f"{pipe.raw}-ceil-out")
    enqueue(ceil_q, events)
    ceil = ceiling(ceil_q, ceil_b, n, call_mix(pipe.processed, manifest), threads=16)
    return {
        "files": n,
        "mean_file_bytes": round(size),
        "rows_per_file": rows,
        "daemon": daemon,
        "plain": plain,
        "ceiling": ceil,
        "daemon_vs_plain": round(daemon["files_per_s"] / plain["files_per_s"], 2),
        "daemon_vs_ceiling": round(daemon["files_per_s"] / ceil["files_per_s"], 2),
    }


# --- latency with a warm worker ------------------------------------------------------------


def latency(samples: int, folder: Path, poll: float = 0.01) -> dict[str, Any]:
    pipe = Pipeline.create(f"l-{uuid.uuid4().hex[:8]}")
    body = make_corpus(folder, 60)[0]
    env = pipe.env(
        folder / "scratch-latency", S3WORKER_IDLE_ACTION="none", S3WORKER_POLL_SECONDS=20
    )
    proc = start_daemon(env, folder / "latency.log")
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    try:
        wait_until(
            lambda: any(e.get("event") == "ready" for e in log_events(folder / "latency.log")),
            60,
            "daemon ready",
        )
        # Warm: the first file pays for the pool's pandas import; it is not a sample.
        seconds = [one_trip(pipe, s3, sqs, f"lat/warm-{i}.csv", body, poll) for i in range(2)]
        seconds = [one_trip(pipe, s3, sqs, f"lat/{i:03d}.csv", body, poll) for i in range(samples)]
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    return {
        "samples": samples,
        "p50_s": round(percentile(seconds, 50), 3),
        "p95_s": round(percentile(seconds, 95), 3),
        "max_s": round(max(seconds), 3),
        "poll_granularity_s": poll,
        "file_bytes": len(body),
        "note": "upload = PutObject + the EventBridge event sent to SQS; manifest polled with "
        "HeadObject; daemon long-polls 20 s as in production",
    }


def one_trip(pipe: Pipeline, s3: Any, sqs: Any, key: str, body: bytes, poll: float) -> float:
    t0 = time.perf_counter()
    resp = s3.put_object(Bucket=pipe.raw, Key=key, Body=body)
    event = eventbridge_event(
        pipe.raw, key, len(body), resp["ETag"].strip('"'), resp.get("VersionId")
    )
    sqs.send_message(QueueUrl=pipe.queue_url, MessageBody=json.dumps(event))
    deadline = t0 + 60
    while time.perf_counter() < deadline:
        try:
            s3.head_object(Bucket=pipe.processed, Key=f"{key}/_manifest.json")
            return time.perf_counter() - t0
        except s3.exceptions.ClientError:
            time.sleep(poll)
    raise TimeoutError(f"no manifest for {key}")


# --- cold start ----------------------------------------------------------------------------


def cold_start(repeats: int, folder: Path) -> dict[str, Any]:
    pipe = Pipeline.create(f"c-{uuid.uuid4().hex[:8]}")
    ready: list[float] = []
    for i in range(repeats):
        notify = NotifySocket(folder)
        env = {
            **os.environ,
            **pipe.env(
                folder / f"scratch-cold-{i}",
                S3WORKER_IDLE_ACTION="none",
                NOTIFY_SOCKET=str(notify.path),
            ),
        }
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [str(BIN / "s3worker"), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ready.append(notify.wait_ready() - t0)
        proc.terminate()
        proc.wait(timeout=120)
        notify.close()
    baseline = [timed([sys.executable, "-c", "import boto3"]) for _ in range(repeats)]
    bare = [timed([sys.executable, "-c", "pass"]) for _ in range(repeats)]
    med = percentile(ready, 50)
    return {
        "repeats": repeats,
        "ready_median_s": round(med, 3),
        "ready_max_s": round(max(ready), 3),
        "import_boto3_median_s": round(percentile(baseline, 50), 3),
        "python_pass_median_s": round(percentile(bare, 50), 3),
        "ready_vs_import_boto3": round(med / percentile(baseline, 50), 2),
        "within_1s": max(ready) < 1.0,
    }


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=60, help="rows per small sales file")
    parser.add_argument("--latency-samples", type=int, default=40)
    parser.add_argument("--cold-repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    parser.add_argument("--dir", type=Path, help="keep files and logs here (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s3worker-bench-") as tmp, emulator():
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        result = {
            "small_files": small_files(args.files, args.rows, folder),
            "latency": latency(args.latency_samples, folder),
            "cold_start": cold_start(args.cold_repeats, folder),
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
