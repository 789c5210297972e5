"""One SQS message, start to finish: parse, then per object download → route → process →
upload → manifest. Returns a verdict; the worker acts on the queue.

What one small file costs (a sales CSV: 12 outputs, 10 table index entries), in order, and the
contract each call serves (tests/test_jobs.py counts them):

    SQS ReceiveMessage       shared by the messages received together (up to 10; intake waits
                             for a place per process while each has a file ahead: intake.py)
    GET input                the event's version is the key's current one (an older version's
                             late event is acknowledged, never processed over newer results),
                             S3's own size (skip rules) and the bytes, in one answer; from
                             WHOLE_GET_BYTES a HEAD, then GETs into scratch reserved for that size
    GET manifest             a version done already is acknowledged unprocessed; its ETag is the
                             swap's condition, its outputs what this version replaces
    PUT output x12           named per input version: no run writes over another version's
    HEAD input               still this version: a run overwritten mid-job writes no manifest
    PUT manifest             If-Match that ETag (If-None-Match * for a first one): the commit;
                             on a conflict the manifest is read again, HEAD and swap repeated
    PUT index entry x10      one per table and partition per input: what Athena reads; the
                             first manifest's are created with If-None-Match * (tables)
    SQS DeleteMessageBatch   shared by the jobs that finish within half a second (sqs.py)

A version replacing another writes its entries unconditionally and then GETs the manifest again
(a newer version swapped in meanwhile gets its entries back), as does a first manifest that
found one of its entries there already; it also deletes the outputs it replaced (one
DeleteObjects). A redelivery of a version done already costs the GETs and the index entries
again (its first run may have died before them, and only writing them tells).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from s3worker import __version__
from s3worker.aws import pool_size
from s3worker.config import Settings
from s3worker.contract import (
    ErrorReport,
    InputDoc,
    Layout,
    Manifest,
    OutputDoc,
    WorkerDoc,
    source_metadata,
)
from s3worker.errors import (
    AttemptsExhaustedError,
    BadDataError,
    JobTimeoutError,
    PermanentError,
    SupersededError,
    TransientError,
    WrongBucketError,
)
from s3worker.events import ObjectRef, parse_body
from s3worker.metrics import Recorder
from s3worker.pool import ProcessPool
from s3worker.processors.base import JobContext, ProcessResult, execute, read_sample
from s3worker.processors.registry import Registry
from s3worker.progress import Progress
from s3worker.publish import Publisher, version_tag
from s3worker.retry import RetryPolicy
from s3worker.scratch import Scratch
from s3worker.skiprules import object_skip_reason
from s3worker.sqs import Message
from s3worker.storage import Fetched, Output, Previous, Storage
from s3worker.tables import TableIndex
from s3worker.verdict import (
    Decision,
    Verdict,
    combine,
    is_final_receive,
    kind_of,
    verdict_for,
)

log = structlog.get_logger("s3worker.job")


class JobRunner:
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        scratch: Scratch,
        pool: ProcessPool,
        registry: Registry,
        instance_id: Callable[[], str | None] = lambda: None,
        on_processing: Callable[[str], None] = lambda delivery: None,
        metrics: Recorder | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.scratch = scratch
        self.pool = pool
        self.registry = registry
        self.instance_id = instance_id
        self.on_processing = on_processing  # told when a process takes a message's file (intake)
        self.publisher = Publisher(storage)
        self.progress = Progress()  # what each held file is doing: the interruption rule's input
        self.metrics = Recorder() if metrics is None else metrics  # what the shipper sends
        self.index = TableIndex(storage)
        self.max_receives: int | None = None  # the queue's maxReceiveCount, once known
        # Object versions being processed here now: a duplicate waits, then finds the manifest.
        self._inflight: dict[tuple[str, str, str], asyncio.Event] = {}

    @classmethod
    def open(
        cls, settings: Settings, s3: Any, retry: RetryPolicy, scratch: Scratch,
        registry: Registry, instance_id: Callable[[], str | None], **kwargs: Any,
    ) -> JobRunner:  # fmt: skip
        """A runner with its own process pool and storage on the client `s3`."""
        pool = ProcessPool(settings.concurrency, settings.job_memory_bytes)
        # The bucket is part of the results' path only when two buckets could share a key.
        layout = Layout(settings.output_prefix, per_bucket=len(settings.input_buckets) > 1)
        connections = pool_size(settings.max_in_flight)
        storage = Storage(s3, retry, settings.output_bucket, layout, connections)
        return cls(settings, storage, scratch, pool, registry, instance_id, **kwargs)

    async def handle(self, message: Message) -> Decision:
        try:
            return await self._handle(message)
        except Exception as exc:  # not one object's failure: the message's
            return await self._failed(None, message, exc)

    async def _handle(self, message: Message) -> Decision:
        parsed = parse_body(message.body)
        for skipped in parsed.skipped:
            log.info("skipped", key=skipped.key, reason=skipped.reason, message_id=message.id)
        # Every record is attempted: one bad object must not hold back the others.
        decisions = [await self._handle_object(ref, message) for ref in parsed.objects]
        return combine(decisions)

    async def _handle_object(self, ref: ObjectRef, message: Message) -> Decision:
        started = time.monotonic()
        line: dict[str, Any] = {"key": ref.key, "bucket": ref.bucket, "size": ref.size}
        with structlog.contextvars.bound_contextvars(
            message_id=message.id, key=ref.key, receive_count=message.receive_count
        ):
            try:
                line.update(await self._process_once(ref, message))
                decision = Decision(Verdict.ACK)
            except SupersededError as exc:
                line.update(outcome="superseded", error=str(exc))
                decision = Decision(Verdict.ACK)
            except Exception as exc:  # every exception: the one rule in verdict.py decides
                decision = await self._failed(ref, message, exc)
                line.update(outcome=decision.verdict.value, error=f"{type(exc).__name__}: {exc}")
            line["duration_s"] = round(time.monotonic() - started, 3)
            self.metrics.job(line, ref.event_time, decision.verdict is Verdict.DEAD_LETTER)
            # A dead-lettered file needs a person: `journalctl -p warning` must show it.
            (log.warning if decision.verdict is Verdict.DEAD_LETTER else log.info)("job", **line)
        return decision

    async def _process_once(self, ref: ObjectRef, message: Message) -> dict[str, Any]:
        if ref.bucket not in self.settings.input_buckets:
            raise WrongBucketError(
                f"s3://{ref.bucket}/{ref.key[:200]}: bucket {ref.bucket} is not an input "
                f"bucket of this worker (S3WORKER_INPUT_BUCKETS="
                f"{','.join(self.settings.input_buckets)}); fix the event rule or the setting"
            )
        try:
            source = await self.storage.fetch(ref)  # also the real size, whatever the event says
        except SupersededError:
            await self.publisher.sweep(ref)  # what a killed earlier run of it left
            raise
        ref = source.ref
        if skipped := object_skip_reason(ref.key, ref.size):  # S3's size, not the event's
            return {"outcome": "skipped", "size": ref.size, "reason": skipped}
        identity = (ref.bucket, ref.key, ref.version_id or ref.etag or "")
        while (running := self._inflight.get(identity)) is not None:
            await running.wait()
        self._inflight[identity] = done = asyncio.Event()
        try:
            return await self._process_current(source, message)
        finally:
            del self._inflight[identity]
            done.set()

    async def _process_current(self, source: Fetched, message: Message) -> dict[str, Any]:
        ref = source.ref
        previous = await self.storage.previous_results(ref)
        if previous.done:
            await self._finish_done(ref, previous)
            return {"outcome": "duplicate", "size": ref.size}
        if is_final_receive(message.receive_count, self.max_receives):
            await self.publisher.sweep(ref)  # what the dead attempts uploaded
            raise AttemptsExhaustedError(
                f"s3://{ref.bucket}/{ref.key[:200]} was received {message.receive_count} times "
                "and no attempt finished: each ended with its worker (killed, stopped or out of "
                "memory without a report). Check the workers' journals for the receives of "
                f"message {message.id}, then redrive it (s3worker dlq redrive)"
            )
        line, written, manifest = await self._process(source, message)
        metadata = source_metadata(ref.etag, ref.version_id)
        try:
            swapped = await self.publisher.swap(ref, manifest, metadata, previous)
        except SupersededError:
            await self.publisher.discard(ref, written)
            raise
        if swapped is None:  # another worker finished this very version first
            await self._finish_done(ref, await self.storage.previous_results(ref))
            return {**line, "outcome": "duplicate"}
        committed, first = swapped
        replaced = committed.replaced_outputs
        await self.index.update(
            ref, committed.processor_name, committed.output_keys, replaced, created=first
        )
        await self.publisher.drop(replaced)  # after the index no longer names them
        return line

    async def _finish_done(self, ref: ObjectRef, previous: Previous) -> None:
        """What follows the manifest of a version done already: its run may have died (or
        failed) before its table index entries or the removal of what it replaced."""
        if previous.done:
            await self.index.update(ref, previous.processor, previous.outputs, previous.replaced)
            await self.publisher.drop(previous.replaced)

    async def _process(
        self, source: Fetched, message: Message
    ) -> tuple[dict[str, Any], list[str], Manifest]:
        ref = source.ref
        t: dict[str, Any] = {"started_at": _now()}
        t0 = time.monotonic()
        async with self.scratch.job(ref.size or 0) as job:
            await self.storage.download(source, job.input)
            t1 = time.monotonic()
            sample = await asyncio.to_thread(read_sample, job.input, ref.key)
            # Sniffing parses the sample's first rows: off the event loop.
            processor = await asyncio.to_thread(self.registry.route, sample, self.settings.routes)
            options = self.settings.processor_config.for_key(ref.key)
            ctx = JobContext(key=ref.key, size=ref.size or 0, sample=sample, options=options)
            started = self._starter(message.delivery, processor.name, ref.size or 0)
            result = await self._run(processor, job, ctx, started)
            self.progress.processed(message.delivery)
            t2 = time.monotonic()
            results = self.storage.layout.source(ref.bucket, ref.key)
            outputs = await self.storage.upload_outputs(job.out, results, version_tag(ref))
            t3 = time.monotonic()
        t.update(download_s=t1 - t0, process_s=t2 - t1, upload_s=t3 - t2)
        manifest = self._manifest(ref, message, processor, result, outputs, t)
        line = {
            "outcome": "processed",
            "size": ref.size,
            "processor": processor.name,
            "output_rows": sum(result.rows.values()),
        }
        return line, [o.key for o in outputs], manifest

    def _starter(self, delivery: str, processor: str, size: int) -> Callable[[], None]:
        """What the pool calls when a process takes the file: progress and intake learn it."""
        progress = self.progress.starter(delivery, processor, size)

        def started() -> None:
            progress()
            self.on_processing(delivery)

        return started

    async def _run(
        self, processor: Any, job: Any, ctx: JobContext, on_start: Callable[[], None]
    ) -> ProcessResult:
        timeout = self.settings.job_timeout_seconds
        try:
            return await self.pool.run(
                execute, processor, job.input, job.out, ctx, limit=timeout, on_start=on_start
            )
        except TimeoutError:
            raise JobTimeoutError(
                f"processor {processor.name} ran longer than {timeout:g} s "
                "(S3WORKER_JOB_TIMEOUT_SECONDS); its worker process was ended"
            ) from None
        except (PermanentError, TransientError):
            raise
        except MemoryError as exc:  # the job's own address-space limit
            raise self.pool.too_large(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise TransientError(f"scratch space ran out while processing: {exc}") from exc
            raise BadDataError(f"processor {processor.name} failed: {exc!r}") from exc
        except Exception as exc:
            # A processor that raises on this input will raise again: no point retrying.
            raise BadDataError(f"processor {processor.name} failed: {exc!r}") from exc

    def _manifest(
        self,
        ref: ObjectRef,
        message: Message,
        processor: Any,
        result: ProcessResult,
        outputs: list[Output],
        timings: dict[str, Any],
    ) -> Manifest:
        timings = {k: round(v, 3) if isinstance(v, float) else v for k, v in timings.items()}
        return Manifest(
            input=_input_doc(ref),
            processor_name=processor.name,
            processor_version=processor.version,
            outputs=tuple(
                OutputDoc(o.key, o.path, o.bytes, result.rows.get(o.path)) for o in outputs
            ),
            timings={**timings, "finished_at": _now()},
            worker=self._worker_doc(),
            message_id=message.id,
            receive_count=message.receive_count,
        )

    async def _failed(self, ref: ObjectRef | None, message: Message, exc: Exception) -> Decision:
        """The one rule (verdict.py) for every exception; a report for what is not retried."""
        verdict = verdict_for(exc, message.receive_count, self.max_receives)
        kind = kind_of(exc).value
        if verdict is Verdict.RELEASE:
            log.warning("job_failure_retried", kind=kind, error=repr(exc), exc_info=exc)
            return Decision(Verdict.RELEASE, exc)
        if verdict is Verdict.ACK:
            return Decision(Verdict.ACK)
        log.warning("job_failure_reported", kind=kind, error=repr(exc))
        layout = self.storage.layout
        if ref is None or isinstance(exc, WrongBucketError):
            report = self._error_report(message, exc, kind, None)
            key = layout.event_error_key(message.id)
        else:
            report = self._error_report(message, exc, kind, _input_doc(ref))
            key = layout.error_key(layout.source(ref.bucket, ref.key))
        return await self._write_report(key, report, exc)

    async def _write_report(self, key: str, report: ErrorReport, exc: Exception) -> Decision:
        try:
            await self.storage.put_json(key, report.render(), {})
        except Exception as write_exc:  # cannot report it now: let SQS deliver it again
            log.error("error_report_failed", error=repr(write_exc))
            return Decision(Verdict.RELEASE, exc)
        return Decision(Verdict.DEAD_LETTER, exc, key)

    def _error_report(
        self, message: Message, exc: BaseException, kind: str, source: InputDoc | None
    ) -> ErrorReport:
        return ErrorReport(
            error_class=type(exc).__name__,
            error_message=str(exc),
            attempts=message.receive_count,
            message_id=message.id,
            message_body=message.body,
            worker=self._worker_doc(),
            at=_now(),
            kind=kind,
            input=source,
        )

    def _worker_doc(self) -> WorkerDoc:
        return WorkerDoc(self.instance_id(), socket.gethostname(), os.getpid(), __version__)


def _input_doc(ref: ObjectRef) -> InputDoc:
    return InputDoc(ref.bucket, ref.key, ref.size, ref.etag, ref.version_id)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
