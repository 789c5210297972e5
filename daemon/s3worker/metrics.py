"""The daemon's CloudWatch metrics: recorded per minute, sent in batches with PutMetricData.

PutMetricData rather than Embedded Metric Format log lines: EMF lines become metrics only once
an agent ships the journal to CloudWatch Logs (the CloudWatch agent on every worker, its
configuration, a log group billed per GB ingested); PutMetricData needs nothing on the
instance but its role's permission, one HTTPS call a minute per worker. Values go as
Values/Counts arrays, not statistic sets, so CloudWatch keeps percentiles (p50/p95 latency).
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html

Namespace: S3WORKER_METRICS_NAMESPACE (the stack writes `S3worker/<stack name>`; empty: none
sent). The names, units and dimensions are the README's table ("Metrics and dashboard").
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import structlog

log = structlog.get_logger(__name__)

FILES_PROCESSED = "FilesProcessed"
FILES_FAILED = "FilesFailed"
FILES_RELEASED = "FilesReleased"
PROCESSING_SECONDS = "ProcessingSeconds"
BYTES_PROCESSED = "BytesProcessed"
RESULT_LATENCY = "UploadToResultSeconds"
IN_FLIGHT = "InFlight"
INTERRUPTIONS = "Interruptions"
WORKERS = "Workers"
UNITS = {
    FILES_PROCESSED: "Count",
    FILES_FAILED: "Count",
    FILES_RELEASED: "Count",
    PROCESSING_SECONDS: "Seconds",
    BYTES_PROCESSED: "Bytes",
    RESULT_LATENCY: "Seconds",
    IN_FLIGHT: "Count",
    INTERRUPTIONS: "Count",
    WORKERS: "Count",
}
# Every metric but WORKERS is also sent without dimensions (the stack's total); `job` adds the
# breakdown by Processor of FILES_PROCESSED, PROCESSING_SECONDS and BYTES_PROCESSED.
# Each worker sends Workers=1 once a minute with its state: Sum per State counts the workers.
BUSY, IDLE, DRAINING = "busy", "idle", "draining"
STATE_RANK = {IDLE: 0, BUSY: 1, DRAINING: 2}  # the minute's state: the busiest seen in it

# PutMetricData quotas: at most 150 distinct values per datum; 1,000 datums and 1 MB a request.
MAX_VALUES = 150
DATUMS_PER_CALL = 200
SAMPLE_SECONDS = 10.0
KEEP_MINUTES = 15  # unsent minutes kept while CloudWatch cannot be reached
CLOSE_TIMEOUT_SECONDS = 5.0

Dimensions = tuple[tuple[str, str], ...]
Key = tuple[str, Dimensions]


def _minute(at: float) -> int:
    return int(at // 60) * 60


class Recorder:
    """Per-minute values, in memory; the job runner and the worker feed it (no AWS here)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._minutes: dict[int, dict[Key, list[float]]] = {}
        self._states: dict[int, str] = {}

    def add(self, name: str, value: float, dims: Dimensions = ()) -> None:
        minute = self._minutes.setdefault(_minute(self.clock()), {})
        minute.setdefault((name, ()), []).append(value)
        if dims:
            minute.setdefault((name, dims), []).append(value)

    def job(self, line: dict[str, Any], event_time: str | None, failed: bool) -> None:
        """One file's canonical job line (jobs.py): what it counts for."""
        self._state(BUSY)
        if failed:
            self.add(FILES_FAILED, 1)
        if line.get("outcome") != "processed":
            return
        by = (("Processor", str(line.get("processor", ""))),)
        self.add(FILES_PROCESSED, 1, by)
        self.add(PROCESSING_SECONDS, float(line.get("duration_s", 0.0)), by)
        self.add(BYTES_PROCESSED, float(line.get("size") or 0), by)
        latency = _since(event_time, self.clock())
        if latency is not None:
            self.add(RESULT_LATENCY, latency)

    def released(self, messages: int) -> None:
        for _ in range(messages):
            self.add(FILES_RELEASED, 1)

    def interruption(self, kind: str) -> None:
        self.add(INTERRUPTIONS, 1, (("Notice", kind),))

    def sample(self, in_flight: int, draining: bool) -> None:
        """The worker's state now: in flight, and busy / idle / draining for the minute."""
        self.add(IN_FLIGHT, in_flight)
        self._state(DRAINING if draining else BUSY if in_flight else IDLE)

    def _state(self, state: str) -> None:
        minute = _minute(self.clock())
        if STATE_RANK[state] >= STATE_RANK[self._states.get(minute, IDLE)]:
            self._states[minute] = state

    def take(self, everything: bool = False) -> list[dict[str, Any]]:
        """The datums of every finished minute (and the current one, with `everything`)."""
        now = _minute(self.clock())
        done = sorted(m for m in self._minutes.keys() | self._states if everything or m < now)
        datums: list[dict[str, Any]] = []
        for minute in done:
            values = self._minutes.pop(minute, {})
            if (state := self._states.pop(minute, None)) is not None:
                values[(WORKERS, (("State", state),))] = [1.0]
            for key, found in values.items():
                datums.extend(render(minute, key, found))
        return datums


def _since(event_time: str | None, now: float) -> float | None:
    if not event_time:
        return None
    try:
        at = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return max(0.0, now - at.timestamp())


def render(minute: int, key: Key, values: list[float]) -> Iterator[dict[str, Any]]:
    """PutMetricData datums for one metric and minute: Values/Counts, 150 values each."""
    name, dims = key
    counts = Counter(round(v, 3) for v in values)
    distinct = sorted(counts)
    for start in range(0, len(distinct), MAX_VALUES):
        chunk = distinct[start : start + MAX_VALUES]
        yield {
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
            "Timestamp": datetime.fromtimestamp(minute, UTC),
            "Values": chunk,
            "Counts": [float(counts[v]) for v in chunk],
            "Unit": UNITS[name],
            "StorageResolution": 60,
        }


class Shipper:
    """Samples the worker every SAMPLE_SECONDS and sends each finished minute. A failed send is
    logged and kept for the next (KEEP_MINUTES at most): metrics never hold up the work."""

    def __init__(
        self,
        namespace: str,
        recorder: Recorder,
        make_client: Callable[[], Awaitable[Any]],
        sample: Callable[[], tuple[int, bool]],
    ) -> None:
        self.namespace = namespace
        self.recorder = recorder
        self.make_client = make_client
        self.sample = sample
        self._unsent: list[dict[str, Any]] = []

    async def run(self) -> None:
        if not self.namespace:
            return
        while True:
            self.recorder.sample(*self.sample())
            await self.flush()
            await asyncio.sleep(SAMPLE_SECONDS)

    async def close(self) -> None:
        """Everything recorded, the current minute too (the process is about to end)."""
        if not self.namespace:
            return
        self.recorder.sample(*self.sample())
        try:
            await asyncio.wait_for(self.flush(everything=True), CLOSE_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("metrics_not_sent", datums=len(self._unsent), reason="timeout")

    async def flush(self, everything: bool = False) -> None:
        self._unsent += self.recorder.take(everything)
        oldest = _minute(self.recorder.clock()) - KEEP_MINUTES * 60
        self._unsent = [d for d in self._unsent if d["Timestamp"].timestamp() >= oldest]
        while self._unsent:
            batch = self._unsent[:DATUMS_PER_CALL]
            try:
                client = await self.make_client()
                await client.put_metric_data(Namespace=self.namespace, MetricData=batch)
            except Exception as exc:  # metrics must never stop the work; kept for the next try
                log.warning("metrics_send_failed", datums=len(self._unsent), error=repr(exc))
                return
            del self._unsent[: len(batch)]
