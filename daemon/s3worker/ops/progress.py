"""A progress bar on stderr with the standard library only.

On a terminal it redraws one line (at most ten times a second); otherwise (a log file, CI) it
prints a plain line every `interval` seconds, so logs stay readable. Thread-safe: upload
threads report bytes through `advance`.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from s3worker.ops.fmt import size

BAR_WIDTH = 24
TTY_REFRESH_SECONDS = 0.1
LOG_INTERVAL_SECONDS = 5.0


class Progress:
    def __init__(
        self,
        files: int,
        total_bytes: int,
        stream: TextIO | None = None,
        interval: float = LOG_INTERVAL_SECONDS,
    ) -> None:
        self.files, self.total_bytes = files, total_bytes
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = TTY_REFRESH_SECONDS if self.tty else interval
        self.done_files = 0
        self.done_bytes = 0
        self.skipped_files = 0
        self._drawn = False
        self.started = time.monotonic()
        self._last_draw = self.started
        self._lock = threading.Lock()

    def advance(self, nbytes: int) -> None:
        """Bytes sent (boto3's transfer callback; it may report a negative amount on a retry)."""
        with self._lock:
            self.done_bytes += nbytes
            self._maybe_draw()

    def skip(self, nbytes: int) -> None:
        """A file that need not be sent (unchanged): it leaves the bar's bytes and throughput."""
        with self._lock:
            self.total_bytes -= nbytes
            self.skipped_files += 1

    def file_done(self) -> None:
        with self._lock:
            self.done_files += 1
            self._maybe_draw()

    def close(self) -> None:
        with self._lock:
            if self.skipped_files == self.files and not self._drawn:
                return  # nothing was sent: the summary line says it all
            self._draw()
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()

    def _maybe_draw(self) -> None:
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        self._drawn = True
        if self.tty:
            self.stream.write("\r" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        fraction = self.done_bytes / self.total_bytes if self.total_bytes else 1.0
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        unchanged = f" ({self.skipped_files} unchanged)" if self.skipped_files else ""
        return (
            f"upload [{bar}] {fraction:4.0%}  {self.done_files}/{self.files} files{unchanged}  "
            f"{size(self.done_bytes)}/{size(self.total_bytes)}  "
            f"{size(self.done_bytes / elapsed)}/s"
        )
