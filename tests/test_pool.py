"""pool.py: processors run in pebble worker processes, each under its own address-space limit;
an overrun or a death ends that one process and is classified, the neighbours run on."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from s3worker.errors import JobTooLargeError, TransientError
from s3worker.pool import ProcessPool

T = TypeVar("T")
GIB = 2**30


# What the worker processes run: module level, so the forkserver's children can import them.
def add(a: int, b: int) -> int:
    return a + b


def address_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_AS)[0]


def hang(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def die(code: int) -> None:
    os._exit(code)


def killed(sig: int) -> None:
    os.kill(os.getpid(), sig)


def pid() -> int:
    return os.getpid()


def with_pool(
    workers: int, scenario: Callable[[ProcessPool], Awaitable[T]], memory: int | None = None
) -> T:
    async def main() -> T:
        pool = ProcessPool(workers, memory)
        try:
            return await scenario(pool)
        finally:
            pool.shutdown(kill=True)

    return asyncio.run(main())


def test_under_a_memory_limit_a_killed_process_looks_like_its_limit() -> None:
    async def scenario(pool: ProcessPool) -> tuple[int, int, int]:
        assert (await pool.run(address_limit), await pool.run(add, 2, 3)) == (8 * GIB, 5)
        for sig in (signal.SIGKILL, signal.SIGABRT):  # the OOM killer; pyarrow's bad_alloc
            with pytest.raises(JobTooLargeError, match=f"ended with signal {int(sig)}"):
                await pool.run(killed, int(sig))
        with pytest.raises(TransientError, match=r"died while processing \(exit code 3\)"):
            await pool.run(die, 3)  # an exit is no sign of memory
        return await pool.run(pid), await pool.run(pid), await pool.run(add, 1, 1)

    first, second, total = with_pool(1, scenario, memory=8 * GIB)
    assert first == second != os.getpid()  # one process, replaced after each death, then kept
    assert total == 2


def test_without_a_memory_limit_a_death_is_transient() -> None:
    async def scenario(pool: ProcessPool) -> int:
        assert await pool.run(address_limit) == resource.RLIM_INFINITY
        with pytest.raises(TransientError, match="exit code -9"):
            await pool.run(killed, int(signal.SIGKILL))
        with pytest.raises(TransientError, match=r"exit code 3\)"):
            await pool.run(die, 3)
        return await pool.run(add, 1, 1)  # a fresh process took its place

    assert with_pool(1, scenario) == 2


def test_an_overrun_ends_only_its_own_process() -> None:
    async def scenario(pool: ProcessPool) -> tuple[Any, str]:
        slow = asyncio.ensure_future(pool.run(hang, 60, limit=0.5))
        neighbour = await pool.run(hang, 1.0)  # runs beside it, finishes after the overrun
        (overrun,) = await asyncio.gather(slow, return_exceptions=True)
        return overrun, neighbour

    overrun, neighbour = with_pool(2, scenario)
    assert isinstance(overrun, TimeoutError)
    assert neighbour == "woke"


def test_a_job_starts_when_a_process_is_free_and_its_limit_counts_from_then() -> None:
    events: list[str] = []

    async def scenario(pool: ProcessPool) -> list[str]:
        async def first() -> str:
            woke = await pool.run(hang, 1.0, on_start=lambda: events.append("first started"))
            events.append("first done")
            return woke

        running = asyncio.ensure_future(first())
        await asyncio.sleep(0)  # `first` takes the only process
        second = pool.run(hang, 0.1, limit=0.9, on_start=lambda: events.append("second started"))
        # One process: `second` waits ~1 s behind `first`, longer than its own 0.9 s limit
        return [await second, await running]

    assert with_pool(1, scenario) == ["woke", "woke"]
    assert events == ["first started", "first done", "second started"]


def test_a_cancelled_job_ends_its_process() -> None:
    async def scenario(pool: ProcessPool) -> int:
        begun = asyncio.Event()
        job = asyncio.ensure_future(pool.run(hang, 60, on_start=begun.set))
        await begun.wait()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        # The only process is free again long before the cancelled job's 60 s
        return await asyncio.wait_for(pool.run(add, 1, 1), 30)

    assert with_pool(1, scenario) == 2


def test_too_large_says_the_limit_and_what_to_change() -> None:
    err = ProcessPool(2, 3 * 2**30).too_large("MemoryError: ")
    assert isinstance(err, JobTooLargeError)
    assert "(3,072 MiB of address space; MemoryError: )" in str(err)
    assert "S3WORKER_CONCURRENCY" in str(err)
    assert "S3WORKER_JOB_MEMORY_MB" in str(err)
    assert "the machine's of address space" in str(ProcessPool(2).too_large("x"))


def test_shutdown_before_any_job_and_twice_is_harmless() -> None:
    async def scenario() -> None:
        pool = ProcessPool(1)
        pool.shutdown()
        # warmed after a shutdown: the processes start again and come up
        await asyncio.wait_for(asyncio.gather(*pool.warm()), 120)
        pool.shutdown()
        pool.shutdown(kill=True)

    asyncio.run(scenario())
