"""Pure: which announced S3 objects are not work. The daemon and the start Lambda both apply it.

Standard library only and no import from the rest of the package: `lambda/build.py` copies this
file into the Lambda's deployment zip, where the daemon's package is not installed.

What is skipped, each with the reason both sides log:
- `s3:TestEvent`: S3 sends it when a notification is configured; it names no object;
- events that are not a creation (`ObjectRemoved:*`, EventBridge "Object Deleted", ...);
- folder markers (a key ending in `/`: the console's "Create folder" writes one);
- zero-byte objects. Which size is trusted is the caller's choice: the daemon asks S3 (a queue
  message can be written by anyone allowed to send to the queue), the Lambda, which may not
  read the bucket, takes the size from the event S3 itself delivered through EventBridge.
"""

from __future__ import annotations

from dataclasses import dataclass

TEST_EVENT = "s3:TestEvent"
EVENTBRIDGE_CREATED = "Object Created"
NOTIFICATION_CREATED_PREFIX = "ObjectCreated:"

FOLDER_MARKER = "folder marker"
ZERO_BYTES = "zero-byte object"


@dataclass(frozen=True)
class Skipped:
    """Something announced that is deliberately not processed (nor counted as work), and why."""

    reason: str
    key: str | None = None


def is_test_event(doc: dict[str, object]) -> bool:
    return doc.get("Event") == TEST_EVENT


def not_a_creation(name: str, *, eventbridge: bool) -> str | None:
    """The skip reason for an event that announces no new object; None for a creation.

    `name` is the EventBridge `detail-type` or the notification record's `eventName`.
    """
    created = (
        name == EVENTBRIDGE_CREATED if eventbridge else name.startswith(NOTIFICATION_CREATED_PREFIX)
    )
    return None if created else f"event {name} is not a creation"


def object_skip_reason(key: str, size: int | None) -> str | None:
    """The skip reason for a created object that is no work; None when it must be processed.

    `size` is the size the caller trusts (None: not known yet, so not skipped for it).
    """
    if key.endswith("/"):
        return FOLDER_MARKER
    if size == 0:
        return ZERO_BYTES
    return None
