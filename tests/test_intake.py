"""The intake rule (intake.py): pure, no emulator."""

from __future__ import annotations

import asyncio

from s3worker.intake import AHEAD_PER_PROCESS, Intake
from s3worker.sqs import MAX_BATCH


def test_room_is_what_waits_for_the_processes_until_the_held_bound():
    # Given two processes and room for sixteen held messages
    intake = Intake(max_held=16, processes=2)
    # Then an idle worker asks for what may wait ahead of its processes, not for sixteen
    assert intake.room() == 2 * AHEAD_PER_PROCESS
    for d in ("a", "b", "c", "d"):
        intake.received(d)
    assert intake.room() == 0
    # When each process takes a file, two more may be received
    intake.processing("a")
    assert intake.changed.is_set()
    intake.processing("b")
    assert intake.room() == 2


def test_while_every_process_has_a_file_ahead_room_gathers_for_one_receive():
    # Given three processes, each with files ahead of it (six ahead: the bound)
    intake = Intake(max_held=32, processes=3)
    for d in "abcdef":
        intake.received(d)
    # When processes take files one by one, each still having one waiting
    intake.processing("a")
    intake.processing("b")
    # Then nothing is received for each place freed alone
    assert intake.room() == 0
    # When a place for each process has freed up, they are asked for in one receive
    intake.processing("c")
    assert intake.room() == 3
    # And once fewer files are ahead than processes, whatever room there is is asked for
    intake.processing("d")
    intake.processing("e")
    assert intake.room() == 5


def test_files_past_processing_count_only_against_the_held_bound():
    # Given one process, room for three held, and two files processed, now uploading
    intake = Intake(max_held=3, processes=1)
    for d in ("a", "b"):
        intake.received(d)
        intake.processing(d)
    # Then one more may come (held bound), though nothing waits for the process
    assert intake.room() == 1
    intake.received("c")
    assert intake.room() == 0
    # When one is settled, its place is free again
    intake.changed.clear()
    intake.done("a")
    assert (intake.held, intake.ahead, intake.room()) == (2, 1, 1)
    assert intake.changed.is_set()


def test_a_message_settled_without_processing_frees_both_bounds():
    # Given a file acknowledged before it reached a process (a duplicate, a skipped object)
    intake = Intake(max_held=2, processes=1)
    intake.received("dup")
    intake.received("other")
    assert intake.room() == 0
    intake.done("dup")
    intake.processing("dup")  # a late callback for it changes nothing
    # Then it counts nowhere
    assert (intake.held, intake.ahead, intake.room()) == (1, 1, 1)


def test_room_never_exceeds_one_receive():
    intake = Intake(max_held=100, processes=40)
    assert intake.room() == MAX_BATCH


def test_no_room_until_the_worker_processes_are_up():
    async def scenario() -> tuple[int, int]:
        # Given a worker whose processes are still starting
        intake = Intake(max_held=8, processes=2)
        up: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        intake.open_after([up], bound=600)
        closed = intake.room()
        # When they are up
        up.set_result(None)
        await asyncio.wait_for(intake.changed.wait(), 30)
        return closed, intake.room()

    # Then nothing was received before, and the usual room after
    assert asyncio.run(scenario()) == (0, 2 * AHEAD_PER_PROCESS)


def test_intake_opens_after_its_bound_when_the_processes_never_come_up():
    async def scenario() -> int:
        intake = Intake(max_held=8, processes=1)
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        intake.open_after([never], bound=0.01)
        await asyncio.wait_for(intake.changed.wait(), 30)
        never.cancel()
        return intake.room()

    assert asyncio.run(scenario()) == AHEAD_PER_PROCESS
