"""Scratch space on the EBS volume: one private directory per job, never named after a key.

Keys may hold `..`, a leading `/`, 255-byte components or 1,024 bytes in all, so local names
are fixed (`input`, `out/`) inside a directory named by a random id; the key stays metadata.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog

from s3worker.errors import TooLargeError, TransientError

log = structlog.get_logger(__name__)

JOB_PREFIX = "job-"
# Room for the input plus outputs of about its size (tables rarely outgrow their source).
SPACE_FACTOR = 2
# Kept free for logs, the manifest and the file system's own needs.
SPACE_MARGIN = 8 * 1024 * 1024


@dataclass(frozen=True)
class JobDir:
    path: Path

    @property
    def input(self) -> Path:
        return self.path / "input"

    @property
    def out(self) -> Path:
        return self.path / "out"


class Scratch:
    """Hands out job directories and accounts for the space each one may need."""

    def __init__(
        self,
        root: Path,
        max_bytes: int | None = None,
        disk_usage: Callable[[Path], shutil._ntuple_diskusage] = shutil.disk_usage,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._disk_usage = disk_usage
        self._reserved = 0
        self._freed = asyncio.Event()

    def wipe(self) -> int:
        """Remove the job directories an earlier run left (a crash or a kill); returns how many.

        Only our own `job-*` directories go: anything else is reported and kept, so a scratch
        directory pointed at the wrong place by mistake loses nothing.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        removed = 0
        for entry in self.root.iterdir():
            if entry.name.startswith(JOB_PREFIX) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
            elif entry.name != "lost+found":  # every fresh ext4/xfs volume has one
                log.warning("scratch_foreign_entry_kept", path=str(entry))
        return removed

    def capacity(self) -> int:
        total = self._disk_usage(self.root).total
        return min(total, self.max_bytes) if self.max_bytes else total

    def available(self) -> int:
        # Conservative: bytes running jobs already wrote count in both `free` and the reservations.
        free = self._disk_usage(self.root).free
        if self.max_bytes:
            free = min(free, self.max_bytes)
        return free - self._reserved - SPACE_MARGIN

    def reserve(self, size: int) -> int:
        """Reserve room for an object of `size` bytes, or say why it cannot be had."""
        need = size * SPACE_FACTOR
        capacity = self.capacity() - SPACE_MARGIN
        if need > capacity:
            limit = "S3WORKER_SCRATCH_MAX_BYTES" if self.max_bytes else "the scratch volume"
            raise TooLargeError(
                f"object of {_mib(size)} needs {_mib(need)} of scratch space but {limit} "
                f"holds {_mib(capacity)}; raise the scratch volume size"
            )
        if need > self.available():
            raise TransientError(
                f"scratch space is busy: {_mib(need)} needed, {_mib(self.available())} free"
            )
        self._reserved += need
        return need

    async def acquire(self, size: int) -> int:
        """Reserve room, waiting while our own running jobs hold it.

        The message stays in flight (heart-beaten) meanwhile: bouncing it back to the queue
        would spend its receive count and could dead-letter a good file. If the room is taken
        by something other than our jobs, waiting cannot help: TransientError.
        """
        while True:
            try:
                return self.reserve(size)
            except TransientError:
                if self._reserved == 0:
                    raise
            self._freed.clear()  # no await since the check: no wake-up can be missed
            await self._freed.wait()

    def release(self, reserved: int) -> None:
        self._reserved -= reserved
        self._freed.set()

    @asynccontextmanager
    async def job(self, size: int) -> AsyncIterator[JobDir]:
        """A private (0700) directory for one job, removed with everything in it afterwards."""
        reserved = await self.acquire(size)
        try:
            path = Path(await asyncio.to_thread(_make_job_dir, self.root))
            try:
                yield JobDir(path)
            finally:
                # A thread, and shielded: a job's outputs can be thousands of files, and a
                # cancelled job must still clean up.
                await asyncio.shield(asyncio.to_thread(shutil.rmtree, path, True))
        finally:
            self.release(reserved)


def _make_job_dir(root: Path) -> str:
    path = tempfile.mkdtemp(prefix=JOB_PREFIX, dir=root)
    os.chmod(path, 0o700)
    return path


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"
