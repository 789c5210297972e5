"""Stop requests: the first SIGTERM/SIGINT asks for a graceful stop, the second forces one.

Graceful: stop receiving, let running jobs finish within the drain bound, release the rest.
Forced (a second signal, e.g. Ctrl-C twice): the drain is cut short, unfinished messages are
released at once, and the process exits non-zero; if that release itself hangs, the process
ends anyway after FORCE_GRACE_SECONDS.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import structlog

from s3worker import exits

log = structlog.get_logger(__name__)

FORCE_GRACE_SECONDS = 10.0


def hard_exit(code: int) -> None:
    """End the process now, whatever the event loop is doing."""
    log.error("forced_exit", code=code, detail="release did not finish in time")
    sys.stdout.flush()
    os._exit(code)


class StopRequest:
    def __init__(self, on_overrun: Callable[[int], None] = hard_exit) -> None:
        self.requested = asyncio.Event()
        self.forced = asyncio.Event()
        self._on_overrun = on_overrun

    def request(self) -> None:
        """Called by the signal handlers: the first call asks, the second forces."""
        if not self.requested.is_set():
            log.info("exit_requested")
            self.requested.set()
        elif not self.forced.is_set():
            log.warning("exit_forced", grace_s=FORCE_GRACE_SECONDS)
            self.forced.set()
            loop = asyncio.get_running_loop()
            loop.call_later(FORCE_GRACE_SECONDS, self._on_overrun, exits.INTERRUPTED)

    async def first(
        self, what: asyncio.Future[Any] | asyncio.Event, turn: float | None = None
    ) -> bool:
        """Wait for `what` or an exit request; True when `what` finished first. `turn`: give
        up after that long (only for an Event: a future would be left running)."""
        fut = asyncio.ensure_future(what.wait()) if isinstance(what, asyncio.Event) else what
        stop = asyncio.ensure_future(self.requested.wait())
        await asyncio.wait({fut, stop}, timeout=turn, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if isinstance(what, asyncio.Event) and not fut.done():
            fut.cancel()
        return fut.done() and not fut.cancelled()
