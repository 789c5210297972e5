"""How many messages the worker may receive now: intake sized by what is scarce.

A held message is in one of three phases: *ahead* of the processes (its checks, scratch
reservation and download, then waiting for a process), *processing* (one of the
`concurrency` worker processes: the CPU) or *after* (its uploads, manifest and verdict).
Only processing needs a process; the other phases mostly wait on S3 and SQS, so the worker
holds more messages than it has processes, and the S3 round trips of some files overlap the
processing of others. Two bounds:

- `held`: messages held at once, in any phase (S3WORKER_MAX_IN_FLIGHT); what transfers may
  overlap, and what a SIGKILL costs at most: each held message spends a receive.
- `ahead`: messages not yet processing, at most AHEAD_PER_PROCESS per process: enough to
  have a file downloaded when a process frees up, never a pile of received, unstarted
  messages waiting for the CPU (each one would spend a receive on a kill for nothing, and
  sit in scratch space).

While every process has a file ahead of it, intake waits until room for one file per process
has gathered, then receives them in one call: a process taking a file frees one place, and a
receive per file would cost SQS (and moto, in the benchmarks) a call per file that one receive
of several saves; a process freed meanwhile still finds a file ahead of it.

A message is received only when both have room, so it starts its checks and download at once;
and none before the worker processes are up (each imports pandas and pyarrow: seconds on a
busy machine), so a daemon killed during its start-up has cost no message a receive.
Scratch space is reserved per file before its download (scratch.py): a file waiting for room
counts as ahead, so intake stops while the scratch volume is full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from s3worker.sqs import MAX_BATCH

# Files not yet processing, per process: one ready when the process frees up, one downloading.
AHEAD_PER_PROCESS = 2


class Intake:
    """Which held messages are in which phase; `room()` is how many to receive now."""

    def __init__(self, max_held: int, processes: int) -> None:
        self.max_held = max_held
        self.processes = processes
        self.max_ahead = AHEAD_PER_PROCESS * processes
        self._held: set[str] = set()
        self._ahead: set[str] = set()
        self.changed = asyncio.Event()  # set whenever room may have grown
        self._waiting: asyncio.Task[Any] | None = None  # for the worker processes to be up

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def ahead(self) -> int:
        return len(self._ahead)

    def room(self) -> int:
        """Messages to ask for now: what both bounds allow, at most one ReceiveMessage's worth;
        none while every process has a file ahead of it and fewer than `processes` would come
        (one receive for each file a process takes costs a call that a fuller one saves)."""
        if self._waiting is not None:
            return 0
        free = min(self.max_held - len(self._held), self.max_ahead - len(self._ahead))
        if len(self._ahead) >= self.processes and free < self.processes:
            return 0
        return max(0, min(MAX_BATCH, free))

    def open_after(self, started: Sequence[asyncio.Future[Any]], bound: float) -> None:
        """No room until every future in `started` is done (the worker processes are up), or
        for `bound` seconds at most: a pool that cannot start says so on the first job."""
        for future in started:  # a process that failed to start fails the first job instead
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._waiting = asyncio.ensure_future(asyncio.wait(started, timeout=bound))
        self._waiting.add_done_callback(self._open)

    def _open(self, _: asyncio.Future[Any]) -> None:
        self._waiting = None
        self.changed.set()

    def close(self) -> None:
        """The worker is stopping: stop waiting for the processes."""
        if self._waiting is not None:
            self._waiting.cancel()

    def received(self, delivery: str) -> None:
        self._held.add(delivery)
        self._ahead.add(delivery)

    def processing(self, delivery: str) -> None:
        """A process has taken the message's file: it is no longer ahead."""
        if delivery in self._ahead:
            self._ahead.discard(delivery)
            self.changed.set()

    def done(self, delivery: str) -> None:
        """Settled (or given up): the message is no longer held."""
        self._held.discard(delivery)
        self._ahead.discard(delivery)
        self.changed.set()
