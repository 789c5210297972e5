"""The results contract: where results go, what a manifest and an error report say, the S3
metadata on a manifest and the attributes of a dead-lettered message.

The daemon writes these; the duplicate check, the operator CLI and the demo read them back.
Each document has one `render` (to the JSON written) and one `parse` (from what was read);
`parse` accepts documents of earlier daemons (no `contract` field, fields missing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from s3worker.errors import KeyTooLongError

CONTRACT_VERSION = 1
# S3 limits: https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html
MAX_KEY_BYTES = 1024
MANIFEST_NAME = "_manifest.json"
SUMMARY_NAME = "summary.json"  # every processor's summary, beside its outputs
ERRORS_DIR = "_errors"
TABLES_DIR = "_tables"  # the BI tables' index of current outputs (tables.py writes it)

# User metadata on the manifest object (S3 sends it back as `x-amz-meta-NAME`).
META_SOURCE_ETAG = "source-etag"
META_SOURCE_VERSION_ID = "source-version-id"

# Message attributes of a dead-lettered message. Those under ERROR_ATTRIBUTE_PREFIX describe
# the last failure and are dropped when the message is sent back to the work queue.
ATTR_ERROR_CLASS = "s3worker-error-class"
ATTR_ERROR = "s3worker-error"
ATTR_ERROR_REPORT = "s3worker-error-report"
ATTR_SOURCE_MESSAGE_ID = "s3worker-source-message-id"
ATTR_ATTEMPTS = "s3worker-attempts"
ATTR_BODY_TRUNCATED = "s3worker-body-truncated"
ERROR_ATTRIBUTE_PREFIX = "s3worker-error"


@dataclass(frozen=True)
class Layout:
    """Pure: where the results of an input go in the processed bucket.

    `per_bucket`: results under `BUCKET/KEY/` rather than `KEY/`, for a daemon that accepts
    events of several input buckets (the same key in two of them must not share results).
    """

    prefix: str = ""
    per_bucket: bool = False

    def _join(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def source(self, bucket: str, key: str) -> str:
        """The path an input's results are named after."""
        return f"{bucket}/{key}" if self.per_bucket else key

    def result_key(self, key: str, name: str) -> str:
        result = self._join(key, name)
        size = len(result.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY_BYTES:
            raise KeyTooLongError(
                f"result key for {key[:60]!r}… would be {size} bytes; S3 allows "
                f"{MAX_KEY_BYTES}: shorten the input's key"
            )
        return result

    def output_key(self, key: str, rel: str, tag: str) -> str:
        """An output's key: its name carries the input version's tag (`part-0.<tag>.parquet`),
        so two versions of one input never write the same object (see `publish`)."""
        folder, _, name = rel.rpartition("/")
        stem, dot, ext = name.partition(".")
        tagged = f"{stem}.{tag}{dot}{ext}" if dot else f"{name}.{tag}"
        return self.result_key(key, f"{folder}/{tagged}" if folder else tagged)

    def results_prefix(self, key: str) -> str:
        return self._join(key) + "/"

    def manifest_key(self, key: str) -> str:
        return self.result_key(key, MANIFEST_NAME)

    def errors_root(self) -> str:
        return self._join(ERRORS_DIR) + "/"

    def error_key(self, key: str) -> str:
        """`_errors/KEY.json`, or a hash of the key when that would be too long for S3."""
        plain = self._join(ERRORS_DIR, f"{key}.json")
        raw = plain.encode("utf-8", "surrogatepass")
        if len(raw) <= MAX_KEY_BYTES and raw == plain.encode("utf-8", "replace"):
            return plain
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self._join(ERRORS_DIR, "_long-keys", f"{digest}.json")

    def event_error_key(self, message_id: str) -> str:
        return self._join(ERRORS_DIR, "_events", f"{message_id}.json")


def source_metadata(etag: str | None, version_id: str | None) -> dict[str, str]:
    """The manifest object's metadata: the input version it is the result of."""
    return {META_SOURCE_ETAG: etag or "", META_SOURCE_VERSION_ID: version_id or ""}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class InputDoc:
    """The input object version a document is about."""

    bucket: str = ""
    key: str = ""
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None

    def render(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket, "key": self.key, "size": self.size,
            "etag": self.etag, "version_id": self.version_id,
        }  # fmt: skip

    @classmethod
    def parse(cls, doc: Any) -> InputDoc:
        d = _mapping(doc)
        return cls(
            str(d.get("bucket", "")), str(d.get("key", "")), d.get("size"),
            d.get("etag"), d.get("version_id"),
        )  # fmt: skip


@dataclass(frozen=True)
class WorkerDoc:
    """Who wrote a document."""

    instance_id: str | None = None
    hostname: str = ""
    pid: int | None = None
    s3worker_version: str = ""

    def render(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id, "hostname": self.hostname, "pid": self.pid,
            "s3worker_version": self.s3worker_version,
        }  # fmt: skip

    @classmethod
    def parse(cls, doc: Any) -> WorkerDoc:
        d = _mapping(doc)
        return cls(
            d.get("instance_id"), str(d.get("hostname", "")), d.get("pid"),
            str(d.get("s3worker_version", "")),
        )  # fmt: skip


@dataclass(frozen=True)
class OutputDoc:
    """One result object: its key, the processor's own name for it, size and rows."""

    key: str
    path: str = ""
    bytes: int | None = None
    rows: int | None = None

    def render(self) -> dict[str, Any]:
        return {"key": self.key, "path": self.path, "bytes": self.bytes, "rows": self.rows}


@dataclass(frozen=True)
class Manifest:
    """`KEY/_manifest.json`, written last: its presence means the input version is done."""

    input: InputDoc
    processor_name: str = ""
    processor_version: str = ""
    outputs: tuple[OutputDoc, ...] = ()
    timings: Mapping[str, Any] = field(default_factory=dict)
    worker: WorkerDoc = field(default_factory=WorkerDoc)
    message_id: str = ""
    receive_count: int | None = None
    replaced_outputs: tuple[str, ...] = ()
    contract: int = CONTRACT_VERSION

    @property
    def output_keys(self) -> tuple[str, ...]:
        return tuple(o.key for o in self.outputs)

    def output_named(self, path: str) -> OutputDoc | None:
        """The output the processor called `path` (its key carries the version tag)."""
        return next((o for o in self.outputs if o.path == path), None)

    def render(self) -> dict[str, Any]:
        return {
            "input": self.input.render(),
            "processor": {"name": self.processor_name, "version": self.processor_version},
            "outputs": [o.render() for o in self.outputs],
            "timings": dict(self.timings),
            "worker": self.worker.render(),
            "message": {"id": self.message_id, "receive_count": self.receive_count},
            "replaced_outputs": list(self.replaced_outputs),
            "contract": self.contract,
        }

    @classmethod
    def parse(cls, doc: Any) -> Manifest:
        d = _mapping(doc)
        proc, message = _mapping(d.get("processor")), _mapping(d.get("message"))
        outputs = tuple(
            OutputDoc(str(o["key"]), str(o.get("path", "")), o.get("bytes"), o.get("rows"))
            for o in d.get("outputs", [])
            if isinstance(o, Mapping) and "key" in o
        )
        return cls(
            input=InputDoc.parse(d.get("input")),
            processor_name=str(proc.get("name", "")),
            processor_version=str(proc.get("version", "")),
            outputs=outputs,
            timings=dict(_mapping(d.get("timings"))),
            worker=WorkerDoc.parse(d.get("worker")),
            message_id=str(message.get("id", "")),
            receive_count=message.get("receive_count"),
            replaced_outputs=tuple(str(k) for k in d.get("replaced_outputs", [])),
            contract=int(d.get("contract", 0)),  # 0: written before the contract was versioned
        )


@dataclass(frozen=True)
class ErrorReport:
    """`_errors/KEY.json` (or `_errors/_events/MESSAGE_ID.json`): why a message was
    dead-lettered. `input` is None for a message that named no usable object."""

    error_class: str
    error_message: str
    attempts: int | None
    message_id: str
    message_body: str
    worker: WorkerDoc
    at: str
    kind: str = ""
    input: InputDoc | None = None
    contract: int = CONTRACT_VERSION

    def render(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"input": self.input.render()} if self.input else {}
        return {
            **doc,
            "error": {"class": self.error_class, "message": self.error_message},
            "attempts": self.attempts,
            "message": {"id": self.message_id, "body": self.message_body},
            "worker": self.worker.render(),
            "at": self.at,
            "kind": self.kind,
            "contract": self.contract,
        }

    @classmethod
    def parse(cls, doc: Any) -> ErrorReport:
        d = _mapping(doc)
        error, message = _mapping(d.get("error")), _mapping(d.get("message"))
        return cls(
            error_class=str(error.get("class", "")),
            error_message=str(error.get("message", "")),
            attempts=d.get("attempts"),
            message_id=str(message.get("id", "")),
            message_body=str(message.get("body", "")),
            worker=WorkerDoc.parse(d.get("worker")),
            at=str(d.get("at", "")),
            kind=str(d.get("kind", "")),
            input=InputDoc.parse(d["input"]) if isinstance(d.get("input"), Mapping) else None,
            contract=int(d.get("contract", 0)),
        )


@dataclass(frozen=True)
class DeadLetterNote:
    """The attributes the daemon puts on a message it sends to the DLQ."""

    error_class: str = ""
    error: str = ""
    report: str = ""  # s3://BUCKET/KEY of the error report
    source_message_id: str = ""
    attempts: str = ""

    def render(self) -> dict[str, str]:
        return {
            ATTR_ERROR_CLASS: self.error_class, ATTR_ERROR: self.error,
            ATTR_ERROR_REPORT: self.report, ATTR_SOURCE_MESSAGE_ID: self.source_message_id,
            ATTR_ATTEMPTS: self.attempts,
        }  # fmt: skip

    @classmethod
    def parse(cls, attributes: Mapping[str, str]) -> DeadLetterNote:
        a = attributes
        return cls(
            a.get(ATTR_ERROR_CLASS, ""), a.get(ATTR_ERROR, ""), a.get(ATTR_ERROR_REPORT, ""),
            a.get(ATTR_SOURCE_MESSAGE_ID, ""), a.get(ATTR_ATTEMPTS, ""),
        )  # fmt: skip


def untag(rel: str) -> str:
    """The processor's name for an output from its key's relative part: drops the version
    tag that `Layout.output_key` put after the file name's stem."""
    folder, _, name = rel.rpartition("/")
    parts = name.split(".")
    plain = ".".join([parts[0], *parts[2:]]) if len(parts) > 2 else parts[0]
    return f"{folder}/{plain}" if folder else plain
