"""Pure: what invoked the function, as typed, frozen events.

EventBridge "Object Created" (`aws.s3`), S3 notifications (`Records[]`, if S3 is wired straight
to the function), the reconciler schedule (`aws.events` "Scheduled Event"), CloudFormation
custom-resource requests, and anything else (ignored). Objects that are no work are skipped by
the daemon's own rules (`s3worker.skiprules`), so a folder marker or an empty file does not start
a worker that would only idle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from s3worker.skiprules import Skipped, is_test_event, not_a_creation, object_skip_reason


@dataclass(frozen=True)
class ObjectsCreated:
    """EventBridge "Object Created" or an S3 notification: keys that are work, and the skips."""

    keys: tuple[str, ...]
    skipped: tuple[Skipped, ...] = ()

    @property
    def count(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class Scheduled:
    """The reconciler's tick: observe afresh."""


@dataclass(frozen=True)
class CustomResource:
    """A CloudFormation custom-resource request (`Custom::WorkerPoolCleanup`)."""

    request_type: str
    request: dict[str, Any]


@dataclass(frozen=True)
class Ignored:
    """Anything this function does not handle."""

    reason: str
    keys: tuple[str, ...] = ()


Event = ObjectsCreated | Scheduled | CustomResource | Ignored


def parse_event(event: Any) -> Event:
    if not isinstance(event, dict):
        return Ignored(f"event is a {type(event).__name__}, not an object")
    if "RequestType" in event and "ResponseURL" in event:
        return CustomResource(str(event["RequestType"]), event)
    source, detail_type = event.get("source"), event.get("detail-type")
    if source == "aws.events" and detail_type == "Scheduled Event":
        return Scheduled()
    if source == "aws.s3" and isinstance(detail_type, str):
        return _eventbridge(detail_type, event.get("detail"))
    if isinstance(event.get("Records"), list) and not is_test_event(event):
        return _records(event["Records"])
    reason = "s3:TestEvent" if is_test_event(event) else "not an event this function handles"
    return Ignored(reason, tuple(sorted(map(str, event)))[:10])


def _eventbridge(detail_type: str, detail: Any) -> Event:
    obj = detail.get("object") if isinstance(detail, dict) else None
    key = str(obj.get("key", "")) if isinstance(obj, dict) else ""  # not URL-encoded here
    if reason := not_a_creation(detail_type, eventbridge=True):
        return Ignored(reason, (key,) if key else ())
    return _created([(key, obj.get("size") if isinstance(obj, dict) else None)])


def _records(records: list[Any]) -> Event:
    created: list[tuple[str, Any]] = []
    skipped: list[Skipped] = []
    for record in records:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            continue
        obj = (record.get("s3") or {}).get("object") or {}
        key = unquote_plus(str(obj.get("key", "")))  # notification keys are URL-encoded
        if reason := not_a_creation(str(record.get("eventName", "")), eventbridge=False):
            skipped.append(Skipped(reason, key or None))
        else:
            created.append((key, obj.get("size")))
    if not created:
        return Ignored("no object created", tuple(s.reason for s in skipped))
    event = _created(created)
    return ObjectsCreated(event.keys, (*skipped, *event.skipped))


def _created(objects: list[tuple[str, Any]]) -> ObjectsCreated:
    keys: list[str] = []
    skipped: list[Skipped] = []
    for key, size in objects:
        # The size S3 put in its own event (the Lambda may not read the bucket to check it).
        if reason := object_skip_reason(key, _size(size)):
            skipped.append(Skipped(reason, key))
        else:
            keys.append(key)
    return ObjectsCreated(tuple(keys), tuple(skipped))


def _size(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError, OverflowError):
        return None  # unknown: counted, the worker decides
