"""What each held message's file is doing now, and how long this worker's files took: what the
interruption drain rule (interruption.py) needs to tell a file that can finish from one that
cannot. Fed by the job runner at two points: its processor starts, its processor is done."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from s3worker.interruption import Running

# Seconds per byte of the last files of each processor: recent enough to follow the data.
RATE_HISTORY = 50


@dataclass
class _State:
    processor: str
    size: int
    started: float
    processed: bool = False


class Progress:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._jobs: dict[str, _State] = {}
        self._rates: dict[str, deque[float]] = {}

    def starter(self, delivery: str, processor: str, size: int) -> Callable[[], None]:
        """The callback the process pool calls once a process runs the file."""

        def started() -> None:
            self._jobs[delivery] = _State(processor, size, self.clock())

        return started

    def processed(self, delivery: str) -> None:
        """The processor returned: learn its pace; only uploads are left."""
        state = self._jobs.get(delivery)
        if state is None:
            return
        state.processed = True
        if state.size > 0:
            rates = self._rates.setdefault(state.processor, deque(maxlen=RATE_HISTORY))
            rates.append((self.clock() - state.started) / state.size)

    def settling(self, delivery: str) -> None:
        """The message's files are all handled: only its verdict is left to send."""
        self._jobs[delivery] = _State("", 0, self.clock(), processed=True)

    def forget(self, delivery: str) -> None:
        self._jobs.pop(delivery, None)

    def running(self, deliveries: list[str]) -> list[Running]:
        """The drain rule's view of `deliveries` (every held message)."""
        return [self._view(d) for d in deliveries]

    def _view(self, delivery: str) -> Running:
        state = self._jobs.get(delivery)
        if state is None:
            return Running(delivery, None, None)
        # Imported here: only a drain asks, and statistics (fractions, decimal) costs about
        # 3 % of the daemon's imports before READY=1.
        import statistics

        rates = self._rates.get(state.processor)
        expected = statistics.median(rates) * state.size if rates else None
        return Running(delivery, state.started, expected, state.processed)
