"""S3 I/O: download pinned to the event's version, results, manifests and error reports."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from s3worker.errors import (
    KeyTooLongError,
    ObjectGoneError,
    PermanentError,
    SupersededError,
    TransientError,
)
from s3worker.events import ObjectRef
from s3worker.retry import RetryPolicy, error_code, http_status

# S3 limits: https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html
MAX_KEY_BYTES = 1024
MANIFEST_NAME = "_manifest.json"
ERRORS_DIR = "_errors"
CHUNK_BYTES = 1024 * 1024
# Multipart above this size; parts of PART_BYTES (S3 needs >= 5 MiB for all but the last).
MULTIPART_THRESHOLD = 64 * 1024 * 1024
PART_BYTES = 16 * 1024 * 1024
MAX_DELETE_KEYS = 1000  # per DeleteObjects call
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404"})
SUPERSEDED_CODES = frozenset({"PreconditionFailed", "412"})


@dataclass(frozen=True)
class Layout:
    """Pure: where the results of an input key go in the processed bucket."""

    prefix: str = ""

    def _join(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def result_key(self, key: str, name: str) -> str:
        result = self._join(key, name)
        if len(result.encode()) > MAX_KEY_BYTES:
            raise KeyTooLongError(
                f"result key for {key[:60]!r}… would be {len(result.encode())} bytes; "
                f"S3 allows {MAX_KEY_BYTES}"
            )
        return result

    def manifest_key(self, key: str) -> str:
        return self.result_key(key, MANIFEST_NAME)

    def error_key(self, key: str) -> str:
        """`_errors/KEY.json`, or a hash of the key when that would be too long for S3."""
        plain = self._join(ERRORS_DIR, f"{key}.json")
        if len(plain.encode()) <= MAX_KEY_BYTES:
            return plain
        return self._join(
            ERRORS_DIR, "_long-keys", f"{hashlib.sha256(key.encode()).hexdigest()}.json"
        )

    def event_error_key(self, message_id: str) -> str:
        return self._join(ERRORS_DIR, "_events", f"{message_id}.json")


@dataclass(frozen=True)
class Previous:
    """The results already in the processed bucket for an input key."""

    done: bool
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Output:
    key: str
    bytes: int
    path: str


class Storage:
    def __init__(self, s3: Any, retry: RetryPolicy, bucket: str, layout: Layout) -> None:
        self.s3 = s3
        self.retry = retry
        self.bucket = bucket
        self.layout = layout

    async def resolve(self, ref: ObjectRef) -> ObjectRef:
        """Fill in size and ETag from S3 when the event did not carry them."""
        if ref.size is not None and (ref.etag or ref.version_id):
            return ref
        params = _pin(ref)
        head = await self._read_call(
            ref, self.s3.head_object, Bucket=ref.bucket, Key=ref.key, **params
        )
        return ObjectRef(
            bucket=ref.bucket,
            key=ref.key,
            size=int(head["ContentLength"]),
            etag=ref.etag or str(head.get("ETag", "")).strip('"') or None,
            version_id=ref.version_id or head.get("VersionId"),
            sequencer=ref.sequencer,
        )

    async def ensure_current(self, ref: ObjectRef) -> None:
        """Raise SupersededError when a newer version of the key exists (versioned buckets).

        Events can arrive late or out of order (a release, a retry): results of an older
        version must never replace those of a newer one.
        """
        if not ref.version_id:
            return  # unversioned: the download's If-Match ETag does the same job
        try:
            head = await self.retry.call(self.s3.head_object, Bucket=ref.bucket, Key=ref.key)
        except ClientError as exc:
            if http_status(exc) in (403, 404):
                return  # deleted since (or not listable): the pinned download decides
            raise
        current = head.get("VersionId")
        if current and current != ref.version_id:
            raise SupersededError(
                f"s3://{ref.bucket}/{ref.key} version {ref.version_id} was replaced by {current}"
            )

    async def previous_results(self, ref: ObjectRef) -> Previous:
        """What the key's current manifest says: done for this version, and its output keys."""
        try:
            resp = await self.retry.call(
                self.s3.get_object, Bucket=self.bucket, Key=self.layout.manifest_key(ref.key)
            )
            async with resp["Body"] as body:
                manifest = json.loads(await body.read())
        except ClientError as exc:
            if http_status(exc) == 404 or error_code(exc) in GONE_CODES:
                return Previous(done=False, outputs=())
            raise
        source = manifest.get("input", {})
        if ref.version_id:
            done = source.get("version_id") == ref.version_id
        else:
            done = bool(ref.etag) and source.get("etag") == ref.etag
        outputs = tuple(o["key"] for o in manifest.get("outputs", []) if "key" in o)
        return Previous(done=done, outputs=outputs)

    async def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), MAX_DELETE_KEYS):
            batch = [{"Key": k} for k in keys[i : i + MAX_DELETE_KEYS]]
            resp = await self.retry.call(
                self.s3.delete_objects, Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if resp.get("Errors"):
                raise TransientError(f"could not delete stale results: {resp['Errors'][:3]}")

    async def download(self, ref: ObjectRef, dest: Path) -> int:
        """Stream the pinned object version to `dest`; returns the bytes written."""
        return await self.retry.call(self._download_once, ref, dest)

    async def _download_once(self, ref: ObjectRef, dest: Path) -> int:
        # Retried as a whole by `download`: a reset mid-stream restarts the file from byte 0.
        try:
            resp = await self.s3.get_object(Bucket=ref.bucket, Key=ref.key, **_pin(ref))
        except ClientError as exc:
            raise _classify_read_error(ref, exc) or exc from exc
        written = 0
        with dest.open("wb") as f:
            async with resp["Body"] as body:
                while chunk := await body.read(CHUNK_BYTES):
                    await asyncio.to_thread(f.write, chunk)
                    written += len(chunk)
        return written

    async def _read_call(self, ref: ObjectRef, fn: Any, **params: Any) -> Any:
        try:
            return await self.retry.call(fn, **params)
        except ClientError as exc:
            raise _classify_read_error(ref, exc) or exc from exc

    async def upload_outputs(self, out_dir: Path, key: str) -> list[Output]:
        files = await asyncio.to_thread(_files_under, out_dir)
        outputs = []
        for path in files:
            rel = path.relative_to(out_dir).as_posix()
            target = self.layout.result_key(key, rel)
            size = await self.upload_file(path, target)
            outputs.append(Output(key=target, bytes=size, path=rel))
        return outputs

    async def upload_file(self, path: Path, key: str) -> int:
        size = (await asyncio.to_thread(path.stat)).st_size
        if size >= MULTIPART_THRESHOLD:
            await self._multipart(path, key)
        else:
            data = await asyncio.to_thread(path.read_bytes)
            await self.retry.call(
                self.s3.put_object, Bucket=self.bucket, Key=key, Body=data,
                ContentType=_content_type(key),
            )  # fmt: skip
        return size

    async def _multipart(self, path: Path, key: str) -> None:
        upload = await self.retry.call(
            self.s3.create_multipart_upload, Bucket=self.bucket, Key=key,
            ContentType=_content_type(key),
        )  # fmt: skip
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            with path.open("rb") as f:
                while data := await asyncio.to_thread(f.read, PART_BYTES):
                    number = len(parts) + 1
                    part = await self.retry.call(
                        self.s3.upload_part, Bucket=self.bucket, Key=key, UploadId=upload_id,
                        PartNumber=number, Body=data,
                    )  # fmt: skip
                    parts.append({"PartNumber": number, "ETag": part["ETag"]})
            await self.retry.call(
                self.s3.complete_multipart_upload, Bucket=self.bucket, Key=key,
                UploadId=upload_id, MultipartUpload={"Parts": parts},
            )  # fmt: skip
        except BaseException:
            await self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    async def put_json(self, key: str, doc: dict[str, Any], metadata: dict[str, str]) -> None:
        body = json.dumps(doc, indent=2, default=str, ensure_ascii=False).encode()
        await self.retry.call(
            self.s3.put_object, Bucket=self.bucket, Key=key, Body=body,
            ContentType="application/json", Metadata=metadata,
        )  # fmt: skip


def _pin(ref: ObjectRef) -> dict[str, str]:
    """Read exactly the version the event announced: by version id, else by ETag."""
    if ref.version_id:
        return {"VersionId": ref.version_id}
    if ref.etag:
        return {"IfMatch": f'"{ref.etag}"'}
    return {}


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


def _content_type(key: str) -> str:
    if key.endswith(".json"):
        return "application/json"
    if key.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    return "application/octet-stream"
