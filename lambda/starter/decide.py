"""Pure: the start decision, from the backlog and the pool's members by state."""

from __future__ import annotations

import math
from dataclasses import dataclass

ACTIVE_STATES = ("pending", "running")
MEMBER_STATES = ("pending", "running", "stopping", "stopped")


@dataclass(frozen=True)
class Backlog:
    """Queue counters plus the objects named by events since they were read (counters lag)."""

    visible: int = 0
    delayed: int = 0  # will become visible without any new event: needs a worker too
    from_events: int = 0

    @property
    def total(self) -> int:
        return self.visible + self.delayed + self.from_events


@dataclass(frozen=True)
class Pool:
    """Instance ids of the pool's members by state (terminated ones are not members).

    `held` are stopped Spot members that an interruption stopped: only EC2 can start them
    again (when capacity returns), so they are members that cannot be started, like `stopping`.
    """

    pending: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    stopping: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()
    held: tuple[str, ...] = ()

    @property
    def active(self) -> int:
        return len(self.pending) + len(self.running)

    @property
    def unstartable(self) -> int:
        return len(self.stopping) + len(self.held)

    @property
    def size(self) -> int:
        return self.active + self.unstartable + len(self.stopped)


@dataclass(frozen=True)
class Decision:
    wanted: int  # workers that should be pending/running
    start: tuple[str, ...]  # stopped members to start
    launch: int  # new instances to launch
    deferred: int  # need only a `stopping` or held member can fill later (the reconciler's job)


def decide(backlog: Backlog, pool: Pool, max_workers: int, files_per_worker: int) -> Decision:
    """How many workers to start now; stopped members first, the pool never above the cap."""
    wanted = min(max_workers, math.ceil(backlog.total / files_per_worker))
    need = max(0, wanted - pool.active)
    startable = max(0, max_workers - pool.active - pool.unstartable)
    start = pool.stopped[: min(need, startable)]
    launch = max(0, min(need - len(start), max_workers - pool.size))
    return Decision(wanted, start, launch, need - len(start) - launch)
