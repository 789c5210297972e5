"""`s3worker upload`: a batch of files to the raw bucket, concurrently, skipping unchanged ones.

"Unchanged" is decided by content, not by time: every object this command uploads carries
its SHA-256 in the user metadata `s3worker-sha256` (works for single-part and multipart
uploads alike, and for any bucket encryption). An object without it (uploaded by
`aws s3 cp`, say) is still recognised when it is single-part and its ETag is the file's
MD5, which holds for SSE-S3 buckets like the stack's raw bucket; anything else is uploaded
again, once, and carries the hash from then on.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from s3worker.ops import OperatorError
from s3worker.ops.aws import explain_client_error, http_status
from s3worker.ops.progress import Progress

HASH_METADATA = "s3worker-sha256"
READ_BYTES = 1024 * 1024
# Parts of 16 MiB above 64 MiB, as the daemon writes its own outputs.
TRANSFER = TransferConfig(
    multipart_threshold=64 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024, max_concurrency=4
)


@dataclass(frozen=True)
class LocalFile:
    path: Path
    key: str
    size: int


@dataclass
class UploadReport:
    bucket: str
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    uploaded_bytes: int = 0
    skipped_bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket, "uploaded": self.uploaded, "skipped": self.skipped,
            "failed": self.failed, "uploaded_bytes": self.uploaded_bytes,
            "skipped_bytes": self.skipped_bytes, "seconds": round(self.seconds, 3),
        }  # fmt: skip

    def summary(self) -> str:
        from s3worker.ops.fmt import size

        lines = [
            f"uploaded {len(self.uploaded)} file(s) ({size(self.uploaded_bytes)}), "
            f"skipped {len(self.skipped)} unchanged ({size(self.skipped_bytes)}), "
            f"{len(self.failed)} failed, in {self.seconds:.1f}s to s3://{self.bucket}/"
        ]
        lines += [f"  failed: {key}: {why}" for key, why in sorted(self.failed.items())]
        return "\n".join(lines)


def normalise_prefix(prefix: str) -> str:
    """A key prefix is a folder: `incoming` and `incoming/` both mean `incoming/`."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def plan(paths: Sequence[Path], prefix: str = "") -> list[LocalFile]:
    """Files to upload: a file keeps its name; a directory's files their path relative to it."""
    prefix = normalise_prefix(prefix)
    files: dict[str, LocalFile] = {}
    for root in paths:
        for path, rel in _walk(root):
            key = prefix + rel
            if key in files and files[key].path != path:
                raise OperatorError(f"{path} and {files[key].path} would both be s3 key {key}")
            files[key] = LocalFile(path, key, path.stat().st_size)
    return sorted(files.values(), key=lambda f: f.key)


def _walk(root: Path) -> Iterable[tuple[Path, str]]:
    if root.is_file():
        yield root, root.name
    elif root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file():
                yield path, path.relative_to(root).as_posix()
    else:
        raise OperatorError(f"{root}: no such file or directory")


def digests(path: Path) -> tuple[str, str]:
    """(sha256, md5) hex digests in one read."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(READ_BYTES):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def is_unchanged(head: dict[str, Any], size: int, sha256: str, md5: str) -> bool:
    """Pure: does the object S3 describes hold exactly this content?"""
    if int(head.get("ContentLength", -1)) != size:
        return False
    stored = head.get("Metadata", {}).get(HASH_METADATA)
    if stored:
        return bool(stored == sha256)
    etag = str(head.get("ETag", "")).strip('"')
    return "-" not in etag and etag == md5  # single-part ETag = MD5 (not for SSE-KMS)


class Uploader:
    def __init__(self, s3: Any, bucket: str, progress: Progress | None = None) -> None:
        self.s3, self.bucket, self.progress = s3, bucket, progress

    def run(self, files: Sequence[LocalFile], concurrency: int) -> UploadReport:
        if concurrency < 1:
            raise OperatorError(f"--concurrency must be at least 1, got {concurrency}")
        report = UploadReport(self.bucket)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for file, outcome in zip(files, pool.map(self._one, files), strict=True):
                _record(report, file, outcome)
        report.seconds = time.monotonic() - started
        return report

    def _one(self, file: LocalFile) -> str:
        """ "uploaded", "skipped", or the reason it failed."""
        try:
            sha256, md5 = digests(file.path)
            head = self._head(file.key)
            if head is not None and is_unchanged(head, file.size, sha256, md5):
                if self.progress:
                    self.progress.skip(file.size)
                return "skipped"
            self.s3.upload_file(
                str(file.path), self.bucket, file.key,
                ExtraArgs={"Metadata": {HASH_METADATA: sha256}},
                Callback=self._advance, Config=TRANSFER,
            )  # fmt: skip
            return "uploaded"
        except ClientError as exc:
            return explain_client_error(exc)
        except (S3UploadFailedError, BotoCoreError, OSError) as exc:
            return str(exc)
        finally:
            if self.progress:
                self.progress.file_done()

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if http_status(exc) == 404:
                return None
            raise
        return head

    def _advance(self, nbytes: int) -> None:
        if self.progress:
            self.progress.advance(nbytes)


def _record(report: UploadReport, file: LocalFile, outcome: str) -> None:
    if outcome == "uploaded":
        report.uploaded.append(file.key)
        report.uploaded_bytes += file.size
    elif outcome == "skipped":
        report.skipped.append(file.key)
        report.skipped_bytes += file.size
    else:
        report.failed[file.key] = outcome
