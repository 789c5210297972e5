"""`systemctl stop` ends before systemd's SIGKILL, by construction: the daemon's stop takes at
most the poll grace plus the drain bound (from the env file the user data writes), and the
unit's TimeoutStopSec is above both with room for releasing and shutting the pool down.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from procs import Pipeline, echo_registry
from s3worker.config import Settings
from s3worker.worker import HAND_BACK_GRACE_SECONDS, Worker

from demo.emulator import template_worker_env
from tests.test_systemd_unit import UNIT, directives

# Releasing the unfinished jobs' messages and ending the process pool, after the drain.
STOP_MARGIN_SECONDS = 15


def test_the_units_stop_timeout_covers_the_daemons_whole_stop() -> None:
    env = template_worker_env()
    stack = {
        "S3WORKER_QUEUE_URL": "q",
        "S3WORKER_OUTPUT_BUCKET": "b",
        "S3WORKER_INPUT_BUCKETS": "raw",
    }
    drain = Settings.from_env({**env, **stack})
    timeout_stop = int(directives(UNIT.read_text())["TimeoutStopSec"][0])
    assert "S3WORKER_DRAIN_SECONDS" in env  # the bound is the product's, not a default
    needed = HAND_BACK_GRACE_SECONDS + drain.drain_seconds + STOP_MARGIN_SECONDS
    assert timeout_stop >= needed, (timeout_stop, needed)


def test_an_exit_during_a_long_poll_is_not_held_by_the_poll(
    aws: str, name: str, scratch: Path, tmp_path: Path
) -> None:
    from s3worker.aws import ClientsContext

    # Given an empty queue and a 20 s long poll in flight
    pipeline = Pipeline.create(name)
    settings = Settings.from_env({**pipeline.env(scratch), "S3WORKER_POLL_SECONDS": "20"})

    async def scenario() -> float:
        async with ClientsContext(1) as clients:
            polling = asyncio.Event()
            receive_message = clients.sqs.receive_message

            async def observed(**kwargs: Any) -> Any:
                polling.set()
                return await receive_message(**kwargs)

            clients.sqs.receive_message = observed
            worker = Worker(settings, clients, processors=echo_registry(tmp_path / "r"))
            receive = asyncio.create_task(worker._receive(1))
            await asyncio.wait_for(polling.wait(), 30)  # the poll is under way
            # When the stop is asked
            asked = time.monotonic()
            worker.request_exit()
            assert await receive == []
            return time.monotonic() - asked

    took = asyncio.run(scenario())
    # Then the poll is cut short after the grace, not waited out
    assert took < HAND_BACK_GRACE_SECONDS + 3, took
