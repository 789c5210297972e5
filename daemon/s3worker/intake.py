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

A message is received only when both have room, so it starts its checks and download at once.
Scratch space is reserved per file before its download (scratch.py): a file waiting for room
counts as ahead, so intake stops while the scratch volume is full.
"""

from __future__ import annotations

import asyncio

from s3worker.sqs import MAX_BATCH

# Files not yet processing, per process: one ready when the process frees up, one downloading.
AHEAD_PER_PROCESS = 2


class Intake:
    """Which held messages are in which phase; `room()` is how many to receive now."""

    def __init__(self, max_held: int, processes: int) -> None:
        self.max_held = max_held
        self.max_ahead = AHEAD_PER_PROCESS * processes
        self._held: set[str] = set()
        self._ahead: set[str] = set()
        self.changed = asyncio.Event()  # set whenever room may have grown

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def ahead(self) -> int:
        return len(self._ahead)

    def room(self) -> int:
        """Messages to ask for now: what both bounds allow, at most one ReceiveMessage's worth."""
        free = min(self.max_held - len(self._held), self.max_ahead - len(self._ahead))
        return max(0, min(MAX_BATCH, free))

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
