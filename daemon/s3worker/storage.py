"""S3 I/O: download pinned to the event's version, results, manifests and error reports.
The bytes themselves move through transfers.py (ranged GETs, concurrent uploads)."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from s3worker.contract import Layout, Manifest
from s3worker.errors import (
    ObjectGoneError,
    PermanentError,
    SupersededError,
    TransientError,
)
from s3worker.events import ObjectRef
from s3worker.retry import RetryPolicy, error_code, http_status
from s3worker.transfers import Transfers, pin

# S3 requests of transfers open at once, when the caller does not say (the client's pool).
DEFAULT_CONNECTIONS = 16
MAX_DELETE_KEYS = 1000  # per DeleteObjects call
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404"})
SUPERSEDED_CODES = frozenset({"PreconditionFailed", "412"})
# Inputs the event says are smaller than this are checked and read in one GET (the body stays
# in memory while its job runs: at most this per held message, 16 MiB on 2 cores by default).
WHOLE_GET_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Previous:
    """The key's current manifest: whether it is of this version, its outputs, its ETag."""

    done: bool
    outputs: tuple[str, ...]
    etag: str | None = None  # None: no manifest yet
    replaced: tuple[str, ...] = ()  # outputs of the version before, which it removed
    processor: str = ""  # the processor that wrote it


@dataclass(frozen=True)
class Fetched:
    """The event's object as S3 holds it now; `body`: all of it, when it came with the check."""

    ref: ObjectRef
    body: bytes | None = None


@dataclass(frozen=True)
class Output:
    key: str
    bytes: int
    path: str


class Storage:
    def __init__(
        self,
        s3: Any,
        retry: RetryPolicy,
        bucket: str,
        layout: Layout,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        self.s3 = s3
        self.retry = retry
        self.bucket = bucket
        self.layout = layout
        self.transfers = Transfers(s3, retry, connections)

    async def current(self, ref: ObjectRef) -> ObjectRef:
        """The event's object as S3 holds it now (a HEAD): its real size, ETag and version id.

        Raises SupersededError when the key now holds another version (a newer upload): events
        arrive late and out of order, and results of an older version must never replace those
        of a newer one. The size is S3's, never the event's (which may lie).
        """
        return _as_held(ref, await self._read_current(ref, self.s3.head_object))

    async def fetch(self, ref: ObjectRef) -> Fetched:
        """`current(ref)`, and the object's bytes with it when it is small: an event that says
        the object is below WHOLE_GET_BYTES is checked with one GET instead of a HEAD and then
        a GET; the bytes are those of the version the check accepted (one answer). When S3's
        size is larger after all, the body is left unread: that GET served as the HEAD."""
        if ref.size is None or ref.size >= WHOLE_GET_BYTES:
            return Fetched(await self.current(ref))
        return await self.retry.call(self._fetch_small, ref)

    async def _fetch_small(self, ref: ObjectRef) -> Fetched:
        """One GET and the read of its body; retried as a whole (a reset mid-body too)."""
        resp = await self._read_current(ref, self.s3.get_object, retried=False)
        async with resp["Body"] as body:
            held = _as_held(ref, resp)  # SupersededError before a byte is read
            if held.size is None or held.size >= WHOLE_GET_BYTES:
                return Fetched(held)
            return Fetched(held, await body.read())

    async def _read_current(self, ref: ObjectRef, fn: Any, retried: bool = True) -> Any:
        """HEAD or GET of the key's current version; a deleted key (a delete marker) falls
        back to the event's version, which may still be there."""
        call = self.retry.call if retried else _once
        try:
            return await call(fn, Bucket=ref.bucket, Key=ref.key)
        except ClientError as exc:
            if not ref.version_id or http_status(exc) not in (403, 404):
                raise _classify_read_error(ref, exc) or exc from exc
        try:
            return await call(fn, Bucket=ref.bucket, Key=ref.key, **pin(ref))
        except ClientError as exc:
            raise _classify_read_error(ref, exc) or exc from exc

    async def previous_results(self, ref: ObjectRef) -> Previous:
        """What the key's current manifest says: done for this version, and its output keys."""
        key = self.layout.manifest_key(self.layout.source(ref.bucket, ref.key))
        try:
            resp = await self.retry.call(self.s3.get_object, Bucket=self.bucket, Key=key)
            async with resp["Body"] as body:
                manifest = Manifest.parse(json.loads(await body.read()))
        except ClientError as exc:
            if http_status(exc) == 404 or error_code(exc) in GONE_CODES:
                return Previous(done=False, outputs=())
            raise
        if ref.version_id:
            done = manifest.input.version_id == ref.version_id
        else:
            done = bool(ref.etag) and manifest.input.etag == ref.etag
        etag = str(resp.get("ETag", "")).strip('"')
        return Previous(
            done, manifest.output_keys, etag, manifest.replaced_outputs, manifest.processor_name
        )

    async def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            resp = await self.retry.call(
                self.s3.list_objects_v2, Bucket=self.bucket, Prefix=prefix, **token
            )
            keys += [str(o["Key"]) for o in resp.get("Contents", [])]
            if not resp.get("IsTruncated"):
                return keys
            token = {"ContinuationToken": resp["NextContinuationToken"]}

    async def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), MAX_DELETE_KEYS):
            batch = [{"Key": k} for k in keys[i : i + MAX_DELETE_KEYS]]
            resp = await self.retry.call(
                self.s3.delete_objects, Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if resp.get("Errors"):
                raise TransientError(f"could not delete stale results: {resp['Errors'][:3]}")

    async def download(self, source: Fetched, dest: Path) -> int:
        """The pinned object version to `dest`: the bytes `fetch` brought, else read now
        (ranged GETs in parallel when it is large); returns the bytes written."""
        if source.body is not None:
            await asyncio.to_thread(_write_private, dest, source.body)
            return len(source.body)
        return await self.transfers.download(source.ref, dest, _classify_read_error)

    async def upload_outputs(self, out_dir: Path, key: str, tag: str) -> list[Output]:
        """Every file under `out_dir`, several at a time, under the results of `key`."""
        files = await asyncio.to_thread(_files_under, out_dir)
        rels = [path.relative_to(out_dir).as_posix() for path in files]
        targets = [self.layout.output_key(key, rel, tag) for rel in rels]
        sizes = await self.transfers.upload_many(
            self.bucket, list(zip(files, targets, strict=True))
        )
        return [
            Output(key=t, bytes=n, path=r) for t, n, r in zip(targets, sizes, rels, strict=True)
        ]

    async def put_json(
        self, key: str, doc: dict[str, Any], metadata: dict[str, str], **condition: str
    ) -> None:
        """Write a JSON document; `condition`: `IfMatch=ETAG` or `IfNoneMatch="*"`."""
        # ASCII escapes: a report can quote text that is not valid UTF-8 (a lone surrogate).
        body = json.dumps(doc, indent=2, default=str).encode()
        await self.retry.call(
            self.s3.put_object, Bucket=self.bucket, Key=key, Body=body,
            ContentType="application/json", Metadata=metadata, **condition,
        )  # fmt: skip


def _as_held(ref: ObjectRef, head: dict[str, Any]) -> ObjectRef:
    """`ref` as a HEAD's (or GET's) answer describes the object; SupersededError when that is
    another version than the event's."""
    version, etag = head.get("VersionId"), str(head.get("ETag", "")).strip('"') or None
    if ref.version_id and version and version != ref.version_id:
        raise SupersededError(
            f"s3://{ref.bucket}/{ref.key} version {ref.version_id} was replaced by {version}"
        )
    if not ref.version_id and ref.etag and etag and etag != ref.etag:
        raise SupersededError(
            f"s3://{ref.bucket}/{ref.key} changed since the event (ETag {ref.etag} is now {etag})"
        )
    return ObjectRef(
        bucket=ref.bucket,
        key=ref.key,
        size=int(head["ContentLength"]),
        etag=ref.etag or etag,
        version_id=ref.version_id or (version if version != "null" else None),
        sequencer=ref.sequencer,
    )


async def _once(fn: Any, **params: Any) -> Any:
    return await fn(**params)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _classify_read_error(ref: ObjectRef, exc: ClientError) -> Exception | None:
    """The permanent error a failed read means, or None when it is not one of ours."""
    code, status = error_code(exc), http_status(exc)
    where = f"s3://{ref.bucket}/{ref.key}" + (
        f" version {ref.version_id}" if ref.version_id else ""
    )
    if code in GONE_CODES or status == 404:
        return ObjectGoneError(f"{where} no longer exists ({code or status})")
    if code in SUPERSEDED_CODES or status == 412:
        return SupersededError(
            f"{where} changed since the event (ETag {ref.etag} no longer matches)"
        )
    if code in ("AccessDenied", "403") or status == 403:
        return PermanentError(f"access denied reading {where}: check the worker role's policy")
    if code == "InvalidObjectState":
        return PermanentError(f"{where} is archived ({code}); restore it first")
    return None


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())
