"""Stop requests: the first signal asks for a graceful stop, the second forces one."""

from __future__ import annotations

import asyncio

import pytest
from s3worker import exits, stopping
from s3worker.stopping import StopRequest


def test_the_first_request_asks_for_a_graceful_stop_and_arms_nothing() -> None:
    overruns: list[int] = []

    async def scenario() -> StopRequest:
        stop = StopRequest(on_overrun=overruns.append)
        stop.request()
        for _ in range(3):  # a zero grace would have fired by now
            await asyncio.sleep(0)
        return stop

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stopping, "FORCE_GRACE_SECONDS", 0)
        stop = asyncio.run(scenario())
    assert stop.requested.is_set()
    assert not stop.forced.is_set()
    assert overruns == []


def test_the_second_forces_and_a_hung_release_ends_with_the_interrupted_code() -> None:
    fired = asyncio.Event()
    overruns: list[int] = []

    def overrun(code: int) -> None:
        overruns.append(code)
        fired.set()

    async def scenario() -> StopRequest:
        stop = StopRequest(on_overrun=overrun)
        stop.request()
        stop.request()
        stop.request()  # a third signal arms nothing more
        await asyncio.wait_for(fired.wait(), timeout=10)  # the "release" never finishes
        return stop

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stopping, "FORCE_GRACE_SECONDS", 0)
        stop = asyncio.run(scenario())
    assert stop.forced.is_set()
    assert overruns == [exits.INTERRUPTED]
