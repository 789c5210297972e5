"""One SQS message, start to finish: parse, then per object download → route → process →
upload → manifest. Returns a verdict; the worker acts on the queue."""

from __future__ import annotations

import asyncio
import enum
import errno
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from s3worker import __version__
from s3worker.config import Settings
from s3worker.errors import (
    BadDataError,
    BadEventError,
    JobTimeoutError,
    PermanentError,
    SupersededError,
    TransientError,
)
from s3worker.events import ObjectRef, parse_body
from s3worker.pool import ProcessPool
from s3worker.processors.base import JobContext, ProcessResult, execute, read_sample
from s3worker.processors.registry import Registry
from s3worker.retry import is_transient
from s3worker.scratch import Scratch
from s3worker.sqs import Message
from s3worker.storage import Output, Storage

log = structlog.get_logger("s3worker.job")


class Verdict(enum.Enum):
    ACK = "ack"  # done (or nothing to do): delete the message
    DEAD_LETTER = "dead_letter"  # permanent failure, reported: straight to the DLQ
    RELEASE = "release"  # transient failure: let SQS deliver it again later


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    error: BaseException | None = None
    report_key: str | None = None


class JobRunner:
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        scratch: Scratch,
        pool: ProcessPool,
        registry: Registry,
        instance_id: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.scratch = scratch
        self.pool = pool
        self.registry = registry
        self.instance_id = instance_id
        # Object versions being processed here now: a duplicate waits, then finds the manifest.
        self._inflight: dict[tuple[str, str, str], asyncio.Event] = {}

    async def handle(self, message: Message) -> Decision:
        try:
            parsed = parse_body(message.body)
        except BadEventError as exc:
            return await self._report_event(message, exc)
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
            except Exception as exc:
                decision = await self._failed(ref, message, exc)
                line.update(outcome=decision.verdict.value, error=f"{type(exc).__name__}: {exc}")
            line["duration_s"] = round(time.monotonic() - started, 3)
            # A dead-lettered file needs a person: `journalctl -p warning` must show it.
            (log.warning if decision.verdict is Verdict.DEAD_LETTER else log.info)("job", **line)
        return decision

    async def _process_once(self, ref: ObjectRef, message: Message) -> dict[str, Any]:
        ref = await self.storage.resolve(ref)
        await self.storage.ensure_current(ref)
        identity = (ref.bucket, ref.key, ref.version_id or ref.etag or "")
        while (running := self._inflight.get(identity)) is not None:
            await running.wait()
        self._inflight[identity] = done = asyncio.Event()
        try:
            previous = await self.storage.previous_results(ref)
            if previous.done:
                return {"outcome": "duplicate", "size": ref.size}
            line, written = await self._process(ref, message)
            await self._drop_stale(previous.outputs, written)
            return line
        finally:
            del self._inflight[identity]
            done.set()

    async def _drop_stale(self, before: tuple[str, ...], now: list[str]) -> None:
        """Outputs of the key's previous version that this version did not write (e.g. a
        `dt=` partition that is no longer in the file) would be read by Athena: remove them."""
        stale = sorted(set(before) - set(now))
        if not stale:
            return
        try:
            await self.storage.delete(stale)
            log.info("stale_results_removed", count=len(stale))
        except Exception as exc:  # the new results are complete; the old ones linger, loudly
            log.error("stale_results_left", count=len(stale), error=repr(exc), keys=stale[:10])

    async def _process(self, ref: ObjectRef, message: Message) -> tuple[dict[str, Any], list[str]]:
        t: dict[str, Any] = {"started_at": _now()}
        t0 = time.monotonic()
        async with self.scratch.job(ref.size or 0) as job:
            await self.storage.download(ref, job.input)
            t1 = time.monotonic()
            sample = await asyncio.to_thread(read_sample, job.input, ref.key)
            processor = self.registry.route(sample, self.settings.routes)
            ctx = JobContext(key=ref.key, size=ref.size or 0)
            result = await self._run(processor, job, ctx)
            t2 = time.monotonic()
            outputs = await self.storage.upload_outputs(job.out, ref.key)
            t3 = time.monotonic()
        t.update(download_s=t1 - t0, process_s=t2 - t1, upload_s=t3 - t2)
        await self._write_manifest(ref, message, processor, result, outputs, t)
        line = {
            "outcome": "processed",
            "size": ref.size,
            "processor": processor.name,
            "output_rows": sum(result.rows.values()),
        }
        return line, [o.key for o in outputs]

    async def _run(self, processor: Any, job: Any, ctx: JobContext) -> ProcessResult:
        timeout = self.settings.job_timeout_seconds
        try:
            return await self.pool.run(execute, processor, job.input, job.out, ctx, limit=timeout)
        except TimeoutError:
            raise JobTimeoutError(
                f"processor {processor.name} ran longer than {timeout:g} s "
                "(S3WORKER_JOB_TIMEOUT_SECONDS); its worker process was ended"
            ) from None
        except (PermanentError, TransientError, MemoryError):
            raise
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise TransientError(f"scratch space ran out while processing: {exc}") from exc
            raise BadDataError(f"processor {processor.name} failed: {exc!r}") from exc
        except Exception as exc:
            # A processor that raises on this input will raise again: no point retrying.
            raise BadDataError(f"processor {processor.name} failed: {exc!r}") from exc

    async def _write_manifest(
        self,
        ref: ObjectRef,
        message: Message,
        processor: Any,
        result: ProcessResult,
        outputs: list[Output],
        timings: dict[str, Any],
    ) -> None:
        timings = {k: round(v, 3) if isinstance(v, float) else v for k, v in timings.items()}
        manifest = {
            "input": _input_doc(ref),
            "processor": {"name": processor.name, "version": processor.version},
            "outputs": [
                {"key": o.key, "bytes": o.bytes, "rows": result.rows.get(o.path)} for o in outputs
            ],
            "timings": {**timings, "finished_at": _now()},
            "worker": self._worker_doc(),
            "message": {"id": message.id, "receive_count": message.receive_count},
        }
        metadata = {"source-etag": ref.etag or "", "source-version-id": ref.version_id or ""}
        # Written last: its presence means "done".
        await self.storage.put_json(self.storage.layout.manifest_key(ref.key), manifest, metadata)

    async def _failed(self, ref: ObjectRef, message: Message, exc: Exception) -> Decision:
        if is_transient(exc) or isinstance(exc, MemoryError) or _disk_full(exc):
            log.warning("job_transient_failure", error=repr(exc))
            return Decision(Verdict.RELEASE, exc)
        if not isinstance(exc, PermanentError):
            log.exception("job_unexpected_error")
            return Decision(Verdict.RELEASE, exc)
        report = {"input": _input_doc(ref), **self._error_doc(message, exc)}
        return await self._write_report(self.storage.layout.error_key(ref.key), report, exc)

    async def _report_event(self, message: Message, exc: BadEventError) -> Decision:
        log.warning("bad_event", message_id=message.id, error=str(exc), body=message.body[:500])
        report = self._error_doc(message, exc)
        return await self._write_report(
            self.storage.layout.event_error_key(message.id), report, exc
        )

    async def _write_report(self, key: str, report: dict[str, Any], exc: Exception) -> Decision:
        try:
            await self.storage.put_json(key, report, {})
        except Exception as write_exc:  # cannot report it now: let SQS deliver it again
            log.error("error_report_failed", error=repr(write_exc))
            return Decision(Verdict.RELEASE, exc)
        return Decision(Verdict.DEAD_LETTER, exc, key)

    def _error_doc(self, message: Message, exc: BaseException) -> dict[str, Any]:
        return {
            "error": {"class": type(exc).__name__, "message": str(exc)},
            "attempts": message.receive_count,
            "message": {"id": message.id, "body": message.body},
            "worker": self._worker_doc(),
            "at": _now(),
        }

    def _worker_doc(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id(),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "s3worker_version": __version__,
        }


def combine(decisions: list[Decision]) -> Decision:
    """One verdict for a message of several objects: retry beats dead-letter beats done."""
    for verdict in (Verdict.RELEASE, Verdict.DEAD_LETTER):
        for decision in decisions:
            if decision.verdict is verdict:
                return decision
    return Decision(Verdict.ACK)


def _input_doc(ref: ObjectRef) -> dict[str, Any]:
    doc = asdict(ref)
    doc.pop("sequencer", None)
    return doc


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
