from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from s3worker.errors import TooLargeError, TransientError
from s3worker.scratch import Scratch

MiB = 1024 * 1024


def usage(total: int, free: int):
    return lambda _path: shutil._ntuple_diskusage(total, total - free, free)


def test_job_dirs_are_private_and_removed(tmp_path: Path):
    async def use() -> Path:
        async with Scratch(tmp_path).job(10) as job:
            assert job.path.parent == tmp_path
            assert job.path.stat().st_mode & 0o777 == 0o700
            job.input.write_bytes(b"x")
        return job.path

    assert not asyncio.run(use()).exists()


def test_a_job_waits_for_room_our_other_jobs_hold(tmp_path: Path):
    scratch = Scratch(tmp_path, disk_usage=usage(1000 * MiB, 1000 * MiB))

    async def scenario() -> list[str]:
        order: list[str] = []
        held = scratch.reserve(400 * MiB)  # a running job holds 800 MiB
        waiter = asyncio.create_task(scratch.acquire(200 * MiB))
        await asyncio.sleep(0)  # let it try, and wait
        order.append("waiting" if not waiter.done() else "did not wait")
        scratch.release(held)  # the running job ends
        await waiter
        order.append("got room")
        return order

    assert asyncio.run(scenario()) == ["waiting", "got room"]


def test_wipe_removes_leftovers_of_a_crash_and_nothing_else(tmp_path: Path):
    # Given a job directory left by a kill, and files that are not ours
    (tmp_path / "job-old").mkdir()
    (tmp_path / "job-old" / "input").write_bytes(b"x")
    (tmp_path / "precious.txt").write_bytes(b"keep me")
    (tmp_path / "lost+found").mkdir()
    # When the daemon starts, Then only its own leftovers go
    assert Scratch(tmp_path).wipe() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lost+found", "precious.txt"]


def test_object_that_can_never_fit_is_permanent(tmp_path: Path):
    scratch = Scratch(tmp_path, disk_usage=usage(100 * MiB, 100 * MiB))
    with pytest.raises(TooLargeError, match=r"needs 120\.0 MiB.*the scratch volume"):
        scratch.reserve(60 * MiB)


def test_object_that_fits_later_is_transient(tmp_path: Path):
    scratch = Scratch(tmp_path, disk_usage=usage(1000 * MiB, 1000 * MiB))
    held = scratch.reserve(400 * MiB)  # another job holds 800 MiB
    with pytest.raises(TransientError, match="busy"):
        scratch.reserve(200 * MiB)
    scratch._reserved -= held
    assert scratch.reserve(200 * MiB) == 400 * MiB


def test_max_bytes_caps_the_capacity(tmp_path: Path):
    scratch = Scratch(tmp_path, max_bytes=16 * MiB, disk_usage=usage(10**12, 10**12))
    with pytest.raises(TooLargeError, match="S3WORKER_SCRATCH_MAX_BYTES"):
        scratch.reserve(12 * MiB)
