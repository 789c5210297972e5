"""The process pool that runs processors: pandas is CPU-bound and must not starve the loop."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import structlog

from s3worker.errors import TransientError

log = structlog.get_logger(__name__)
T = TypeVar("T")


def warm_up() -> None:
    """Import the heavy libraries once per worker process, before the first file arrives."""
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401


class ProcessPool:
    """A lazily created pool, rebuilt when a worker process dies (e.g. killed for memory)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._free = asyncio.Semaphore(workers)

    def _get(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # forkserver: children are forked from a clean single-threaded server, never from
            # this process with its event loop and client threads.
            ctx = multiprocessing.get_context("forkserver")
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        return self._executor

    def warm(self) -> None:
        executor = self._get()
        for _ in range(self.workers):
            executor.submit(warm_up)

    async def run(self, fn: Callable[..., T], *args: Any, limit: float | None = None) -> T:
        """Run `fn(*args)` in a worker process; `limit` (seconds) counts from when a process is free
        for it, so time spent waiting behind other files never counts against a file.
        On timeout the pool is restarted (the only way to stop the call) and TimeoutError
        is raised."""
        async with self._free:  # submit only when a process can start it now
            while True:
                executor = self._get()
                future = executor.submit(functools.partial(fn, *args))
                try:
                    return await asyncio.wait_for(self._result(executor, future), limit)
                except TimeoutError:
                    self.restart()
                    raise
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if future.cancelled() and task is not None and not task.cancelling():
                        continue  # not started when the pool was restarted: to the new one
                    raise

    async def _result(self, executor: ProcessPoolExecutor, future: Future[T]) -> T:
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            log.error("worker_process_died", error=repr(exc))
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            raise TransientError(f"a worker process died while processing: {exc}") from exc

    def restart(self) -> None:
        """End every worker process now (a job overran); the next job gets a fresh pool.

        Jobs running beside it fail with a dead pool and go back to the queue; jobs still
        waiting for a process move to the new pool.
        """
        self.shutdown(kill=True)

    def shutdown(self, kill: bool = False) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if kill:
            # Jobs past the drain bound: their messages are released, their processes ended.
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
        executor.shutdown(wait=not kill, cancel_futures=True)
