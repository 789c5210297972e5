"""The process pool that runs processors: pandas is CPU-bound and must not starve the loop.

pebble's ProcessPool, not concurrent.futures': when one worker process dies (its memory limit,
a crash) or overruns its time, pebble fails that one task and replaces that one process; a
concurrent.futures pool breaks as a whole and takes every job running beside it down.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from s3worker.errors import JobTooLargeError, TransientError

if TYPE_CHECKING:  # imported with the first pool: after READY=1, not before
    from pebble import ProcessExpired
    from pebble import ProcessPool as PebblePool

log = structlog.get_logger(__name__)
T = TypeVar("T")

# How a process that ran out of its address space usually ends: C++ code (pyarrow) aborts on
# an uncaught std::bad_alloc; the kernel's OOM killer sends SIGKILL.
OUT_OF_MEMORY_SIGNALS = (signal.SIGABRT, signal.SIGKILL)


def start_worker(memory_bytes: int | None) -> None:
    """Each worker process: bound its address space, then import the heavy libraries once,
    before the first file arrives."""
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def _noop() -> None:
    """A task that makes a worker process start (and run `start_worker`)."""


class ProcessPool:
    """Worker processes, each under its own memory limit; one job's death is its own."""

    def __init__(self, workers: int, memory_bytes: int | None = None) -> None:
        self.workers = workers
        self.memory_bytes = memory_bytes
        self._pool: PebblePool | None = None
        self._free = asyncio.Semaphore(workers)

    def _get(self) -> PebblePool:
        if self._pool is None:
            from pebble import ProcessPool as PebblePool

            # forkserver: children are forked from a clean single-threaded server, never from
            # this process with its event loop and client threads.
            self._pool = PebblePool(
                max_workers=self.workers,
                initializer=start_worker,
                initargs=(self.memory_bytes,),
                context=multiprocessing.get_context("forkserver"),
            )
        return self._pool

    def warm(self) -> list[asyncio.Future[None]]:
        """Start the worker processes now; a future per process, done once it is up (its
        heavy imports done)."""
        pool = self._get()
        return [asyncio.wrap_future(pool.schedule(_noop)) for _ in range(self.workers)]

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        limit: float | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> T:
        """Run `fn(*args)` in a worker process. `limit` (seconds) counts from when a process is
        free for it, so time spent waiting behind other files never counts against a file; past
        it only that process is ended and TimeoutError raised. A process that dies raises
        JobTooLargeError when it looks like its memory limit, else TransientError.
        `on_start`: called when a process is free for it (the file's processing begins)."""
        from pebble import ProcessExpired

        async with self._free:  # submit only when a process can start it now
            if on_start is not None:
                on_start()
            future = self._get().schedule(fn, args=args, timeout=limit)
            try:
                return await asyncio.wrap_future(future)
            except ProcessExpired as exc:
                raise self._died(exc) from exc
            except asyncio.CancelledError:
                future.cancel()  # type: ignore[no-untyped-call]  # pebble ends the process running it
                raise

    def _died(self, exc: ProcessExpired) -> Exception:
        code = exc.exitcode
        log.error("worker_process_died", exit_code=code, memory_limit=self.memory_bytes)
        if self.memory_bytes and code in tuple(-s for s in OUT_OF_MEMORY_SIGNALS):
            return self.too_large(f"the worker process ended with signal {-code}")
        return TransientError(f"the worker process died while processing (exit code {code})")

    def too_large(self, detail: str) -> JobTooLargeError:
        limit = f"{self.memory_bytes / 2**20:,.0f} MiB" if self.memory_bytes else "the machine's"
        return JobTooLargeError(
            f"the file needs more memory than one job may use ({limit} of address space; "
            f"{detail}): use an instance type with more memory, or lower S3WORKER_CONCURRENCY "
            "(or raise S3WORKER_JOB_MEMORY_MB)"
        )

    def shutdown(self, kill: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:
            # Jobs past the drain bound: their messages are released, their processes ended.
            pool.stop()  # type: ignore[no-untyped-call]
        else:
            pool.close()  # type: ignore[no-untyped-call]
        pool.join()
