"""Pure: an SQS message body -> the S3 objects it announces.

Understood shapes: S3 notifications (`Records[]`, keys URL-encoded with `+` for space),
EventBridge "Object Created" (`detail`, keys not encoded), and either of them inside an SNS
envelope (SNS without raw delivery wraps the body in `Message`). What is skipped is decided
by `skiprules` (shared with the start Lambda): `s3:TestEvent`, deletes and folder markers here,
each with a reason; zero-byte objects later, by the size S3 reports, not the event's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from s3worker.errors import BadEventError
from s3worker.skiprules import (
    TEST_EVENT,
    Skipped,
    is_test_event,
    not_a_creation,
    object_skip_reason,
)

# S3 puts one record in a notification; a message naming more was built by hand. Each record
# is a download and a process run within one visibility heartbeat: bound the work one message
# can ask for (10,000 records once ran 175 s).
MAX_RECORDS = 100


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object version to process."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    # When S3 said the object was created (the event's time): not part of what it names.
    event_time: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ParsedMessage:
    objects: tuple[ObjectRef, ...]
    skipped: tuple[Skipped, ...]


def parse_body(body: str) -> ParsedMessage:
    """Parse an SQS body. Raises BadEventError for anything not understood."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise BadEventError(f"message body is not JSON: {exc}") from None
    except RecursionError:
        raise BadEventError("message body is JSON nested too deeply to be an event") from None
    return parse_document(doc)


def parse_document(doc: Any, depth: int = 0) -> ParsedMessage:
    if not isinstance(doc, dict):
        raise BadEventError(f"event is a JSON {type(doc).__name__}, expected an object")
    if doc.get("Type") == "Notification" and "Message" in doc and depth == 0:
        return _parse_sns(doc)
    if is_test_event(doc):
        return ParsedMessage((), (Skipped(TEST_EVENT),))
    if "Records" in doc:
        return _parse_records(doc["Records"])
    if "detail-type" in doc and "detail" in doc:
        return _parse_eventbridge(doc)
    raise BadEventError(f"unknown event shape with keys {sorted(doc)[:8]}")


def _parse_sns(doc: dict[str, Any]) -> ParsedMessage:
    message = doc["Message"]
    try:
        inner = json.loads(message) if isinstance(message, str) else message
    except json.JSONDecodeError as exc:
        raise BadEventError(f"SNS Message is not JSON: {exc}") from None
    return parse_document(inner, depth=1)


def _parse_records(records: Any) -> ParsedMessage:
    if not isinstance(records, list):
        raise BadEventError("Records is not a list")
    if len(records) > MAX_RECORDS:
        raise BadEventError(
            f"message has {len(records)} Records; at most {MAX_RECORDS} are accepted in one "
            "message: send one event per object"
        )
    objects: list[ObjectRef] = []
    skipped: list[Skipped] = []
    for record in records:
        result = _parse_record(record)
        if isinstance(result, ObjectRef):
            objects.append(result)
        else:
            skipped.append(result)
    return ParsedMessage(tuple(objects), tuple(skipped))


def _parse_record(record: Any) -> ObjectRef | Skipped:
    try:
        name = str(record["eventName"])
        s3 = record["s3"]
        bucket = str(s3["bucket"]["name"])
        obj = s3["object"]
        # Notification keys are URL-encoded, with '+' for a space.
        key = unquote_plus(str(obj["key"]))
    except (KeyError, TypeError) as exc:
        raise BadEventError(f"S3 record lacks {exc}") from None
    if reason := not_a_creation(name, eventbridge=False):
        return Skipped(reason, key)
    return _object_or_skip(
        bucket, key, obj.get("size"), obj.get("eTag"), obj.get("versionId"), obj.get("sequencer"),
        record.get("eventTime"),
    )  # fmt: skip


def _parse_eventbridge(doc: dict[str, Any]) -> ParsedMessage:
    detail_type = doc["detail-type"]
    detail = doc["detail"]
    try:
        bucket = str(detail["bucket"]["name"])
        obj = detail["object"]
        key = str(obj["key"])  # EventBridge keys are not URL-encoded.
    except (KeyError, TypeError) as exc:
        raise BadEventError(f"EventBridge detail lacks {exc}") from None
    if reason := not_a_creation(str(detail_type), eventbridge=True):
        return ParsedMessage((), (Skipped(reason, key),))
    result = _object_or_skip(
        bucket,
        key,
        obj.get("size"),
        obj.get("etag") or obj.get("eTag"),  # AWS says etag; some emulators say eTag
        obj.get("version-id"),
        obj.get("sequencer"),
        doc.get("time"),
    )
    if isinstance(result, Skipped):
        return ParsedMessage((), (result,))
    return ParsedMessage((result,), ())


def _object_or_skip(
    bucket: str,
    key: str,
    size: Any,
    etag: Any,
    version_id: Any,
    sequencer: Any,
    event_time: Any = None,
) -> ObjectRef | Skipped:
    if not bucket or not key:
        raise BadEventError("event names an empty bucket or key")
    for what, text in (("bucket", bucket), ("key", key)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # S3 names are UTF-8: a lone surrogate (from a JSON `\ud800` escape) names nothing.
            raise BadEventError(
                f"event's object {what} {_printable(text)} is not valid UTF-8"
            ) from None
    # The event's size is not trusted (None): the daemon skips zero-byte objects by S3's size.
    if reason := object_skip_reason(key, None):
        return Skipped(reason, key)
    return ObjectRef(
        bucket=bucket,
        key=key,
        size=_size(size),
        etag=str(etag).strip('"') if etag else None,
        version_id=str(version_id) if version_id and version_id != "null" else None,
        sequencer=str(sequencer) if sequencer else None,
        event_time=str(event_time) if event_time else None,
    )


def _size(value: Any) -> int | None:
    if value is None:
        return None
    try:
        size = int(value)
    except (TypeError, ValueError, OverflowError):  # 1e400 parses as inf
        raise BadEventError(f"object size {value!r} is not an integer") from None
    if size < 0:
        raise BadEventError(f"object size {size} is negative")
    return size


def _printable(text: str, limit: int = 120) -> str:
    """`text` for a message: lone surrogates and controls escaped, cut to `limit` characters."""
    shown = text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")
    return repr(shown) + ("…" if len(text) > limit else "")
