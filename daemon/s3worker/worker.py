"""The daemon's lifecycle: startup → main loop → shutdown, returning why it ended."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from s3worker import certs, collector, logs, preflight
from s3worker.aws import Clients, ClientsContext
from s3worker.config import Settings
from s3worker.exits import ExitReason, exit_code
from s3worker.idle import IdlePolicy
from s3worker.instance import InstanceId, stop_self
from s3worker.intake import Intake
from s3worker.interruption import INTERRUPTION, InterruptionWatcher, Notice, triage
from s3worker.metrics import Recorder, Shipper
from s3worker.processors.registry import Registry, registry
from s3worker.retry import RetryPolicy, is_transient
from s3worker.scratch import Scratch
from s3worker.settle import Settler
from s3worker.sqs import Heartbeat, Message, Queue, QueueInfo
from s3worker.stopping import StopRequest
from s3worker.systemd import Notifier, Watchdog
from s3worker.verdict import Decision, Verdict

if TYPE_CHECKING:  # built after READY=1 (Worker.open_jobs), and imported then
    from s3worker.jobs import JobRunner

log = structlog.get_logger("s3worker.worker")

# How long a stop waits for the answer of a poll in flight before cutting the poll short.
HAND_BACK_GRACE_SECONDS = 2.0
# The longest the main loop waits for a free slot before going round again: a loop that waits
# for its jobs still turns, so the watchdog tells it from a loop that hangs.
TURN_SECONDS = 5.0
# The longest intake waits for the worker processes to start (intake.py) before it opens anyway.
WARM_UP_SECONDS = 30.0


class Worker:
    def __init__(
        self,
        settings: Settings,
        clients: Clients,
        *,
        processors: Registry = registry,
        notifier: Notifier | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings, self.on_ready = settings, on_ready  # on_ready: once READY=1 is sent
        self.clients = clients
        self.notifier = notifier or Notifier()
        self.retry = retry or RetryPolicy(settings.max_attempts)
        self.clock = clock
        self.processors = processors
        self.queue = Queue(clients.sqs, settings.queue_url, self.retry)
        self.scratch = Scratch(settings.scratch_dir, settings.scratch_max_bytes)
        self.intake = Intake(settings.max_in_flight, settings.concurrency)
        # The job path (jobs.py and what it imports: storage, tables, publish, the pool) is
        # built once READY=1 is sent (open_jobs): READY=1 does not wait for its imports.
        self.jobs: JobRunner
        self.max_receives: int | None = None  # the queue's maxReceiveCount, for the jobs
        self.metrics = Recorder()  # the jobs', the settler's and the shipper's (metrics.py)
        self.settler = Settler(self.queue, settings.output_bucket, self.metrics.released)
        self.heartbeat: Heartbeat | None = None
        self.queue_check: asyncio.Task[preflight.QueueSettings] | None = None  # serve()'s
        self.tasks: dict[str, tuple[asyncio.Task[None], Message]] = {}
        self.stop = StopRequest()
        self.watchdog = Watchdog(self.notifier)
        self.instance = InstanceId()
        self._background: list[asyncio.Task[None]] = []
        self.idle = IdlePolicy.from_settings(settings, clock())
        self._idle_logged = False
        self.interruption = InterruptionWatcher(self._on_notice)
        self.shipper = Shipper(
            settings.metrics_namespace, self.metrics, clients.make_cloudwatch,
            lambda: (len(self.tasks), self.stop.requested.is_set()),
        )  # fmt: skip

    def request_exit(self) -> None:
        """Signal handlers only call this: the loop notices and winds down; a second call
        cuts the drain short (stopping.py)."""
        self.stop.request()

    def _on_notice(self, notice: Notice) -> None:
        """A Spot interruption notice or rebalance recommendation: wind down as for a stop,
        with the drain rule of interruption.py."""
        self.metrics.interruption(notice.kind)
        self.stop_receiving()

    async def run(self) -> ExitReason:
        await self.startup()
        try:
            reason = await self.main_loop()
        finally:
            await self.shutdown()
        if self.stop.forced.is_set():
            return ExitReason.FORCED
        if (notice := self.interruption.notice) is not None:
            return ExitReason.INTERRUPTED if notice.kind == INTERRUPTION else ExitReason.REBALANCE
        return reason

    # -- startup ---------------------------------------------------------------------------

    async def startup(self) -> None:
        queue = asyncio.ensure_future(self._connect_queue())  # beside the bucket's check
        try:
            await preflight.check(self.settings, self.clients.s3, self.processors, self.retry)
            info = await queue
        finally:  # a queue error behind a settings problem is retrieved, not reported
            queue.cancel()
            queue.done() and not queue.cancelled() and queue.exception()
        removed = self.scratch.wipe()
        self.heartbeat = Heartbeat(self.queue, info.visibility_timeout)
        self.heartbeat.start()
        self.instance.start()
        if self.notifier.watchdog_seconds:
            self._background.append(asyncio.create_task(self.watchdog.run()))
        self._background.append(asyncio.create_task(self.interruption.run()))
        self._background.append(asyncio.create_task(self.shipper.run()))
        self.notifier.ready(f"polling {self.settings.queue_url}")
        self.open_jobs()
        self.on_ready()
        log.info(
            "ready",
            queue=self.settings.queue_url,
            dlq=self.settler.dlq.url if self.settler.dlq else None,
            concurrency=self.settings.concurrency,
            max_in_flight=self.settings.max_in_flight,
            visibility_timeout=info.visibility_timeout,
            scratch_entries_wiped=removed,
        )
        # After READY: start the worker processes; intake opens once they are up (intake.py).
        try:
            self.intake.open_after(self.jobs.pool.warm(), WARM_UP_SECONDS)
        except Exception as exc:  # only an optimisation: the first job starts them anyway
            log.warning("pool_warm_up_failed", error=repr(exc))

    async def _connect_queue(self) -> QueueInfo:
        """The work queue's settings and DLQ (preflight.py); serve() asks for them early."""
        asked = self.queue_check or preflight.queue_settings(
            self.queue, self.settings.dlq_url, self.retry
        )
        info, dlq_url = await asked
        await self.settler.connect_dlq(dlq_url, info.dlq_arn, self.retry)
        self.max_receives = info.max_receive_count
        return info

    def open_jobs(self) -> None:
        """The job path, once READY=1 is sent and before the first receive (and before the
        ready hook, so that the collector, collector.py, freezes it with the rest)."""
        from s3worker.jobs import JobRunner

        self.jobs = JobRunner.open(
            self.settings, self.clients.s3, self.retry, self.scratch, self.processors,
            lambda: self.instance.known, on_processing=self.intake.processing,
            metrics=self.metrics,  # one recorder: what the shipper sends
        )  # fmt: skip
        self.jobs.max_receives = self.max_receives

    # -- main loop -------------------------------------------------------------------------

    async def main_loop(self) -> ExitReason:
        while not self.stop.requested.is_set():
            self.watchdog.turn()
            free = self.intake.room()
            if free <= 0:
                if await self.stop.first(self.intake.changed, TURN_SECONDS):
                    self.intake.changed.clear()
                continue
            messages = await self._receive(free)
            for message in messages:
                self._start(message)
            if messages:
                self.idle.active(self.clock())
            elif not self.tasks and await self._idle_confirmed():
                return ExitReason.IDLE
        return ExitReason.SIGNAL

    async def _receive(self, free: int) -> list[Message]:
        receive = asyncio.ensure_future(self.queue.receive(free, self.settings.poll_seconds))
        if not await self.stop.first(receive):
            await self._hand_back(receive)
            return []
        try:
            return receive.result()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.error("receive_failed", error=repr(exc))
            await self.stop.first(asyncio.ensure_future(asyncio.sleep(self.settings.poll_seconds)))
            return []

    async def _hand_back(self, receive: asyncio.Future[list[Message]]) -> None:
        """Exit was asked mid-poll: release at once what an answer already on its way brings
        (rather than leave it invisible for a visibility timeout), then cut the poll short, so
        the stop takes the drain bound and not a 20 s long poll on top (the unit's
        TimeoutStopSec covers grace + drain). What SQS hands out later comes back by itself."""
        try:
            messages = await asyncio.wait_for(receive, HAND_BACK_GRACE_SECONDS)
        except Exception as exc:  # nothing came, or we cannot tell: SQS will redeliver
            log.info("poll_abandoned", error=repr(exc))
            return
        await self.release_unstarted(messages)

    async def release_unstarted(self, messages: list[Message]) -> None:
        """Messages received but not started: visible again at once, for another worker."""
        if messages:
            log.info("releasing_unstarted", messages=len(messages))
            await self.settler.release_now(messages)

    def _start(self, message: Message) -> None:
        assert self.heartbeat
        self.heartbeat.track(message)
        self.intake.received(message.delivery)
        task = asyncio.create_task(self._job(message), name=f"job-{message.id}")
        self.tasks[message.delivery] = (task, message)

    async def _job(self, message: Message) -> None:
        """One message: job → verdict (jobs.py, verdict.py) → settle (settle.py)."""
        try:
            decision = await self._verdict(message)
            self.jobs.progress.settling(message.delivery)  # never cut short from here on
            # Stop extending first: a beat landing after a release would undo it.
            if self.heartbeat:
                self.heartbeat.untrack(message)
            await self.settler.settle(message, decision)
        except Exception:
            # The message reappears after its visibility timeout; the manifest check makes
            # the redelivery cheap if the work itself was done.
            log.exception("settle_failed", message_id=message.id)
        finally:
            if self.heartbeat:
                self.heartbeat.untrack(message)
            self.tasks.pop(message.delivery, None)
            self.jobs.progress.forget(message.delivery)
            self.idle.active(self.clock())
            self.intake.done(message.delivery)
            self.notifier.status(self._status())

    async def _verdict(self, message: Message) -> Decision:
        try:
            return await self.jobs.handle(message)
        except Exception as exc:  # a bug, not the file's fault: let SQS try again later
            log.exception("job_crashed", message_id=message.id)
            return Decision(Verdict.RELEASE, exc)

    async def _idle_confirmed(self) -> bool:
        """The idle rule (idle.py) on a fresh queue reading; then the configured action."""
        now = self.clock()
        if not self.idle.due(now):
            return False
        backlog: int | None = None
        try:
            backlog = await self.queue.backlog()
        except Exception as exc:  # cannot confirm an empty queue: not idle, poll on
            log.warning("idle_check_failed", error=repr(exc))
        if not self.idle.observe(now, backlog):
            return False
        if self.settings.idle_action == "none":
            if not self._idle_logged:
                log.info("idle", action="none", idle_for_s=round(self.idle.idle_for(now), 1))
                self._idle_logged = True
            return False
        return True

    def _status(self) -> str:
        c = self.settler.counts
        return (
            f"{len(self.tasks)} running, {c['processed']} done, "
            f"{c['dead_lettered']} failed, {c['released']} released"
        )

    # -- shutdown --------------------------------------------------------------------------

    def stop_receiving(self) -> None:
        """No new messages from now on: the main loop ends and shutdown drains what runs.
        What the first stop signal does; a hook (an interruption notice) may call it too."""
        if not self.stop.requested.is_set():
            log.info("receiving_stopped")
            self.stop.requested.set()

    async def shutdown(self) -> None:
        self.intake.close()
        self.notifier.stopping(f"draining {len(self.tasks)} jobs")
        await self.drain_with_deadline(self.settings.drain_seconds)
        self.jobs.pool.shutdown(kill=bool(self.tasks))
        if self.heartbeat:
            await self.heartbeat.stop()
        for task in self._background:
            task.cancel()
        await self.shipper.close()
        log.info("stopped", **self.settler.counts)

    async def drain_with_deadline(self, seconds: float) -> None:
        """Let running jobs finish for up to `seconds` (less if a second signal comes; after
        an interruption notice, only those that can finish within what it leaves:
        interruption.py); then end the rest and release their messages at once."""
        log.info("draining", running=len(self.tasks), bound_s=seconds)
        if not self.tasks:
            return
        progress, release = self.jobs.progress, self.settler.release_now
        keep = set(await triage(self.interruption, progress, self.tasks, release, seconds))
        jobs = [(task, message) for task, message in self.tasks.values() if task in keep]
        await self._abandon(await self._drain(jobs, self.interruption.budget(seconds)))

    async def _drain(
        self, jobs: list[tuple[asyncio.Task[None], Message]], seconds: float
    ) -> list[tuple[asyncio.Task[None], Message]]:
        """Wait for the jobs for `seconds`, or until a second signal; the unfinished ones."""
        if not jobs:
            return []
        tasks = [task for task, _ in jobs]
        finished = asyncio.ensure_future(asyncio.wait(tasks))
        forced = asyncio.ensure_future(self.stop.forced.wait())
        await asyncio.wait({finished, forced}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finished.cancel()
        forced.cancel()
        return [(task, message) for task, message in jobs if not task.done()]

    async def _abandon(self, pending: list[tuple[asyncio.Task[None], Message]]) -> None:
        """Jobs past the drain bound: cancel them and hand their messages back at once."""
        if not pending:
            return
        self.jobs.pool.shutdown(kill=True)
        for task, _ in pending:
            task.cancel()
        await asyncio.gather(*(task for task, _ in pending), return_exceptions=True)
        log.warning("releasing_unfinished", messages=len(pending))
        await self.settler.release_now(message for _, message in pending)

    async def act_on_idle(self) -> bool:
        """The idle action; False when `stop` could not be done."""
        if self.settings.idle_action != "stop":
            log.info("idle_exit", action=self.settings.idle_action)
            return True
        return await stop_self(self.clients.ec2, self.retry, await self.instance.get())


async def serve(settings: Settings, stop_signals: Sequence[int] = (), **kwargs: Any) -> ExitReason:
    """Run one worker until it exits; install the signal handlers that ask it to."""
    # Handlers first: a SIGTERM during start-up must stop the daemon cleanly, not kill it.
    loop = asyncio.get_running_loop()
    early = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, early.set)
    if stop_signals:  # received before the loop ran
        early.set()
    try:
        return await _serve(settings, early, **kwargs)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _serve(settings: Settings, early: asyncio.Event, **kwargs: Any) -> ExitReason:
    preflight.check_local(settings, kwargs.get("processors", registry))  # before the region
    retry = kwargs.setdefault("retry", RetryPolicy(settings.max_attempts))
    check = preflight.EarlyQueueCheck(settings, retry)  # while the S3 client is built
    async with check, ClientsContext(settings.max_in_flight, check.start) as clients:
        worker = Worker(settings, clients, **kwargs)
        worker.queue_check = check.task
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_exit)
        if early.is_set():
            worker.request_exit()
        try:
            reason = await worker.run()
            idle = reason in (ExitReason.IDLE, ExitReason.REBALANCE)
            if idle and not await worker.act_on_idle():
                reason = ExitReason.IDLE_STOP_FAILED
        finally:  # until serve() returns, a late signal is noted, never fatal
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, early.set)
    log.info("exit", reason=reason.value)
    return reason


def at_ready() -> None:
    """What `s3worker run` put off until READY=1: the collector (collector.py), aiohttp's CA
    certificates (certs.py)."""
    collector.resume_frozen()
    certs.load_deferred()


def run_daemon(settings: Settings, stop_signals: Sequence[int] = ()) -> int:
    """`stop_signals`: a list the caller's own handlers fill until the loop takes over."""
    logs.configure(settings.log_format)
    try:
        return exit_code(asyncio.run(serve(settings, stop_signals, on_ready=at_ready)))
    finally:
        collector.release()
