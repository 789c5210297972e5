"""S3 transfers of a job's bytes, concurrent where S3's latency would otherwise add up.

- A large input is read with ranged GETs in parallel, each pinned to the version the event
  named (VersionId, else If-Match its ETag), each written at its offset and retried on its own
  (a reset costs one range, not the file); a small one in one GET.
- A job's outputs are uploaded several at a time; a large output's multipart parts too.
- Every call goes through the one retry policy (retry.py). All transfers of the worker share
  one bound on the requests open at once (`connections`, the S3 client's pool), so many jobs
  in flight queue for a connection here instead of in the HTTP pool, where the wait would
  count against the connect timeout.

Hand-written rather than boto3's TransferManager or s3transfer: those are synchronous (threads)
and aiobotocore has no equivalent; this is the part of it the daemon needs, on the event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from s3worker.errors import TransientError
from s3worker.events import ObjectRef
from s3worker.retry import RetryPolicy

T = TypeVar("T")
CHUNK_BYTES = 1024 * 1024
# Inputs from this size are read in ranges of RANGE_BYTES (the multipart part size).
RANGED_THRESHOLD = 32 * 1024 * 1024
RANGE_BYTES = 16 * 1024 * 1024
# Multipart above this size; parts of PART_BYTES (S3 needs >= 5 MiB for all but the last).
MULTIPART_THRESHOLD = 64 * 1024 * 1024
PART_BYTES = 16 * 1024 * 1024
# Per job: objects uploaded at once; per object: parts or ranges in flight at once.
OBJECTS_AT_ONCE = 8
PARTS_AT_ONCE = 8
# Parts held in memory at once across the worker (8 x 16 MiB): an upload part is read whole
# before it is sent; a range is written as it arrives (CHUNK_BYTES at a time).
PART_BUFFERS = 8
# A job's outputs up to SMALL_BYTES each are read together before their upload, up to this
# much in all; the others are read (and sized) each when its upload starts.
SMALL_BYTES = 256 * 1024
READ_AHEAD_BYTES = 4 * 1024 * 1024

ReadError = Callable[[ObjectRef, ClientError], Exception | None]


async def bounded_all(calls: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run the calls, at most `limit` at a time; their results in order. On the first failure
    the others are cancelled and that failure is raised as itself (not an ExceptionGroup: the
    verdict rule classifies the real error)."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(call)) for call in calls]
    except BaseExceptionGroup as group_error:
        raise _first_leaf(group_error) from None
    return [task.result() for task in tasks]


def _first_leaf(error: BaseExceptionGroup[BaseException]) -> BaseException:
    first = error.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def pin(ref: ObjectRef) -> dict[str, str]:
    """Read exactly the version the event announced: by version id, else by ETag."""
    if ref.version_id:
        return {"VersionId": ref.version_id}
    if ref.etag:
        return {"IfMatch": f'"{ref.etag}"'}
    return {}


class Transfers:
    def __init__(self, s3: Any, retry: RetryPolicy, connections: int) -> None:
        self.s3 = s3
        self.retry = retry
        self._open = asyncio.Semaphore(connections)
        self._buffers = asyncio.Semaphore(PART_BUFFERS)

    async def call(self, fn: Callable[..., Awaitable[T]], **params: Any) -> T:
        """One S3 request under the shared bound, retried by the policy."""
        async with self._open:
            return await self.retry.call(fn, **params)

    # -- download ------------------------------------------------------------------------

    async def download(self, ref: ObjectRef, dest: Path, classify: ReadError) -> int:
        """The pinned object version to `dest`; returns the bytes written."""
        size = ref.size or 0
        pinned = pin(ref)
        if size < RANGED_THRESHOLD or not pinned:
            async with self._open:
                return await self.retry.call(self._get_range, ref, dest, None, classify)
        await asyncio.to_thread(_allocate, dest, size)
        ranges = [(start, min(size, start + RANGE_BYTES)) for start in range(0, size, RANGE_BYTES)]
        calls = [lambda r=r: self.call(self._get_range, ref=ref, dest=dest, span=r,
                                       classify=classify) for r in ranges]  # fmt: skip
        return sum(await bounded_all(calls, PARTS_AT_ONCE))

    async def _get_range(
        self, ref: ObjectRef, dest: Path, span: tuple[int, int] | None, classify: ReadError
    ) -> int:
        """One GET (of bytes [start, end) when `span`), written in place; retried as a whole."""
        extra = {"Range": f"bytes={span[0]}-{span[1] - 1}"} if span else {}
        try:
            resp = await self.s3.get_object(Bucket=ref.bucket, Key=ref.key, **pin(ref), **extra)
        except ClientError as exc:
            raise classify(ref, exc) or exc from exc
        offset = span[0] if span else 0
        fd = await asyncio.to_thread(
            os.open, dest, os.O_WRONLY | os.O_CREAT | (0 if span else os.O_TRUNC), 0o600
        )
        try:
            async with resp["Body"] as body:
                while chunk := await body.read(CHUNK_BYTES):
                    await asyncio.to_thread(os.pwrite, fd, chunk, offset)
                    offset += len(chunk)
        finally:
            os.close(fd)
        written = offset - (span[0] if span else 0)
        if span and written != span[1] - span[0]:
            raise TransientError(f"range {span} of s3://{ref.bucket}/{ref.key}: {written} bytes")
        return written

    # -- upload --------------------------------------------------------------------------

    async def upload_many(self, bucket: str, files: list[tuple[Path, str]]) -> list[int]:
        """(path, key) pairs uploaded several at a time; their sizes, in order. The small
        files are read first, together, in one trip to a thread (a small job's dozen outputs
        would otherwise take two trips each), up to READ_AHEAD_BYTES in all."""
        read = await asyncio.to_thread(_read_small, [path for path, _ in files])
        pending = zip(files, read, strict=True)
        calls = [lambda p=p, k=k, r=r: self.upload_file(bucket, p, k, r) for (p, k), r in pending]
        return await bounded_all(calls, OBJECTS_AT_ONCE)

    async def upload_file(
        self, bucket: str, path: Path, key: str, read: bytes | None = None
    ) -> int:
        """`read`: the file's bytes, when the caller has read them already."""
        if read is not None:
            data, size = read, len(read)
        else:
            size = (await asyncio.to_thread(path.stat)).st_size
            if size >= MULTIPART_THRESHOLD:
                await self._multipart(bucket, path, key, size)
                return size
            data = await asyncio.to_thread(path.read_bytes)
        await self.call(
            self.s3.put_object, Bucket=bucket, Key=key, Body=data, ContentType=content_type(key)
        )
        return size

    async def _multipart(self, bucket: str, path: Path, key: str, size: int) -> None:
        where = {"Bucket": bucket, "Key": key}
        upload = await self.call(
            self.s3.create_multipart_upload, **where, ContentType=content_type(key)
        )
        upload_id = upload["UploadId"]
        try:
            starts = range(0, size, PART_BYTES)
            calls = [lambda n=n, s=s: self._part(path, where, upload_id, n, s)
                     for n, s in enumerate(starts, 1)]  # fmt: skip
            parts = await bounded_all(calls, PARTS_AT_ONCE)
            await self.call(
                self.s3.complete_multipart_upload, **where, UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )  # fmt: skip
        except BaseException:
            await self.s3.abort_multipart_upload(**where, UploadId=upload_id)
            raise

    async def _part(
        self, path: Path, where: dict[str, str], upload_id: str, number: int, start: int
    ) -> dict[str, Any]:
        async with self._buffers:  # read only when it can be held and sent
            data = await asyncio.to_thread(_read_at, path, start, PART_BYTES)
            part = await self.call(
                self.s3.upload_part, **where, UploadId=upload_id, PartNumber=number, Body=data
            )
        return {"PartNumber": number, "ETag": part["ETag"]}


def _read_small(paths: list[Path]) -> list[bytes | None]:
    """The bytes of each file up to SMALL_BYTES, in order, while they fit in READ_AHEAD_BYTES
    together; None for the others."""
    read: list[bytes | None] = []
    budget = READ_AHEAD_BYTES
    for path in paths:
        size = path.stat().st_size
        if size > SMALL_BYTES or size > budget:
            read.append(None)
            continue
        data = path.read_bytes()
        budget -= len(data)
        read.append(data)
    return read


def _allocate(path: Path, size: int) -> None:
    with path.open("wb") as f:
        f.truncate(size)


def _read_at(path: Path, start: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(start)
        return f.read(length)


def content_type(key: str) -> str:
    if key.endswith(".json"):
        return "application/json"
    if key.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    return "application/octet-stream"
