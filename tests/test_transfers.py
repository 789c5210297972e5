"""transfers.py against the emulator over HTTP: ranged parallel downloads pinned to the version
(or the ETag), outputs and multipart parts uploaded concurrently, failures raised as
themselves."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from s3worker import transfers
from s3worker.aws import ClientsContext
from s3worker.errors import SupersededError
from s3worker.events import ObjectRef
from s3worker.retry import RetryPolicy
from s3worker.storage import _classify_read_error
from s3worker.transfers import Transfers, bounded_all

MIB = 2**20


class Recording:
    """An S3 client that records the calls made through it and, for `together`, lets no call
    of that name through until `needed` of them are open at once (a sequential caller never
    gets there: its first call fails after a bound instead)."""

    def __init__(self, s3: Any, together: str = "", needed: int = 2) -> None:
        self.s3 = s3
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.together, self.needed = together, needed
        self._open = 0
        self._enough = asyncio.Event()

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def call(**params: Any) -> Any:
            self.calls.append((name, params))
            if name == self.together:
                await self._meet()
            return await getattr(self.s3, name)(**params)

        return call

    async def _meet(self) -> None:
        self._open += 1
        if self._open >= self.needed:
            self._enough.set()
        try:
            await asyncio.wait_for(self._enough.wait(), 10)
        except TimeoutError:  # not an AWS error: the retry policy must not hide it
            raise AssertionError(f"{self.together}: never {self.needed} at once") from None
        finally:
            self._open -= 1

    def named(self, name: str) -> list[dict[str, Any]]:
        return [params for called, params in self.calls if called == name]


def run_with_s3(
    scenario: Callable[[Any], Awaitable[Any]], together: str = "", needed: int = 2
) -> tuple[Any, Recording]:
    async def main() -> tuple[Any, Recording]:
        async with ClientsContext(4) as clients:
            s3 = Recording(clients.s3, together, needed)
            return await scenario(s3), s3

    return asyncio.run(main())


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfers, "RANGED_THRESHOLD", 2 * MIB)
    monkeypatch.setattr(transfers, "RANGE_BYTES", MIB)


def test_a_large_input_is_read_in_parallel_ranges_of_the_pinned_version(
    aws: str, name: str, tmp_path: Path, small_ranges: None
) -> None:
    # Given a versioned object whose first version was overwritten after the event
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    first = os.urandom(5 * MIB + 123)
    v1 = s3.put_object(Bucket=name, Key="big.csv", Body=first)["VersionId"]
    s3.put_object(Bucket=name, Key="big.csv", Body=os.urandom(5 * MIB + 123))
    ref = ObjectRef(name, "big.csv", len(first), None, v1)
    dest = tmp_path / "input"

    # When it is downloaded
    async def scenario(client: Any) -> int:
        return await Transfers(client, RetryPolicy(), 8).download(ref, dest, _classify_read_error)

    written, client = run_with_s3(scenario, together="get_object", needed=3)

    # Then every range came from the first version, several at once, and the file is whole
    gets = client.named("get_object")
    assert written == len(first)
    assert dest.read_bytes() == first
    assert len(gets) == 6
    assert {g["VersionId"] for g in gets} == {v1}
    assert sorted(g["Range"] for g in gets)[0] == f"bytes=0-{MIB - 1}"


def test_a_ranged_read_of_a_changed_unversioned_object_is_superseded(
    aws: str, name: str, tmp_path: Path, small_ranges: None
) -> None:
    # Given an unversioned object replaced after the event named its ETag
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    etag = s3.put_object(Bucket=name, Key="k", Body=os.urandom(3 * MIB))["ETag"].strip('"')
    s3.put_object(Bucket=name, Key="k", Body=os.urandom(3 * MIB))
    ref = ObjectRef(name, "k", 3 * MIB, etag)

    async def scenario(client: Any) -> int:
        t = Transfers(client, RetryPolicy(), 8)
        return await t.download(ref, tmp_path / "input", _classify_read_error)

    # Then the read says so (If-Match), rather than mixing two versions' bytes
    with pytest.raises(SupersededError):
        run_with_s3(scenario)


def test_a_job_s_outputs_are_uploaded_together(aws: str, name: str, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket=name)
    files = []
    for i in range(5):
        path = tmp_path / f"out-{i}.json"
        path.write_text(f'{{"i": {i}}}')
        files.append((path, f"results/out-{i}.json"))

    async def scenario(client: Any) -> list[int]:
        return await Transfers(client, RetryPolicy(), 8).upload_many(name, files)

    sizes, client = run_with_s3(scenario, together="put_object", needed=5)
    assert sizes == [p.stat().st_size for p, _ in files]
    body = boto3.client("s3").get_object(Bucket=name, Key="results/out-3.json")["Body"].read()
    assert body == b'{"i": 3}'
    assert client.named("put_object")[0]["ContentType"] == "application/json"


def test_multipart_parts_go_in_parallel(
    aws: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfers, "MULTIPART_THRESHOLD", 5 * MIB)
    monkeypatch.setattr(transfers, "PART_BYTES", 5 * MIB)
    boto3.client("s3").create_bucket(Bucket=name)
    path = tmp_path / "big.parquet"
    data = os.urandom(12 * MIB)
    path.write_bytes(data)

    async def scenario(client: Any) -> int:
        return await Transfers(client, RetryPolicy(), 8).upload_file(name, path, "big.parquet")

    size, client = run_with_s3(scenario, together="upload_part", needed=3)
    assert size == len(data)
    assert sorted(p["PartNumber"] for p in client.named("upload_part")) == [1, 2, 3]
    assert boto3.client("s3").get_object(Bucket=name, Key="big.parquet")["Body"].read() == data


def test_bounded_all_keeps_order_and_its_bound() -> None:
    open_now, most = 0, 0

    async def job(i: int) -> int:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        await asyncio.sleep(0)
        open_now -= 1
        return i

    calls = [lambda i=i: job(i) for i in range(10)]
    assert asyncio.run(bounded_all(calls, 3)) == list(range(10))
    assert most == 3


def test_bounded_all_raises_the_failure_itself_and_cancels_the_rest() -> None:
    cancelled = []

    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def fails() -> None:
        raise SupersededError("newer version")

    with pytest.raises(SupersededError):
        asyncio.run(bounded_all([hangs, fails], 2))
    assert cancelled == [True]


def test_small_outputs_are_read_together_within_a_bound(tmp_path: Path) -> None:
    sizes = [10, 300, 20, 40, 30]  # bytes; SMALL_BYTES 100, READ_AHEAD_BYTES 70 below
    paths = []
    for i, size in enumerate(sizes):
        paths.append(tmp_path / f"out-{i}")
        paths[-1].write_bytes(bytes([i]) * size)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transfers, "SMALL_BYTES", 100)
        patch.setattr(transfers, "READ_AHEAD_BYTES", 70)
        read = transfers._read_small(paths)
    # the 300-byte one is too large to read ahead; the last no longer fits (10 + 20 + 40 = 70)
    assert read == [bytes([0]) * 10, None, bytes([2]) * 20, bytes([3]) * 40, None]


def test_outputs_read_ahead_or_not_arrive_whole(
    aws: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfers, "SMALL_BYTES", 1000)
    monkeypatch.setattr(transfers, "READ_AHEAD_BYTES", 1500)
    boto3.client("s3").create_bucket(Bucket=name)
    files = []
    for i, size in enumerate([900, 5000, 900, 10]):
        path = tmp_path / f"out-{i}.parquet"
        path.write_bytes(os.urandom(size))
        files.append((path, f"results/out-{i}.parquet"))

    async def scenario(client: Any) -> list[int]:
        return await Transfers(client, RetryPolicy(), 8).upload_many(name, files)

    sizes, _ = run_with_s3(scenario, together="put_object", needed=4)
    assert sizes == [900, 5000, 900, 10]
    s3 = boto3.client("s3")
    for path, key in files:
        assert s3.get_object(Bucket=name, Key=key)["Body"].read() == path.read_bytes()
