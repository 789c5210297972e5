"""Scratch space on the EBS volume: one private directory per job, never named after a key.

Keys may hold `..`, a leading `/`, 255-byte components or 1,024 bytes in all, so local names
are fixed (`input`, `out/`) inside a directory named by a random id; the key stays metadata.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

    @contextmanager
    def job(self, size: int) -> Iterator[JobDir]:
        """A private (0700) directory for one job, removed with everything in it afterwards."""
        reserved = self.reserve(size)
        path = Path(tempfile.mkdtemp(prefix=JOB_PREFIX, dir=self.root))
        try:
            os.chmod(path, 0o700)
            yield JobDir(path)
        finally:
            shutil.rmtree(path, ignore_errors=True)
            self._reserved -= reserved


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"
