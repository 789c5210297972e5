"""Pure: SQS bodies of every shape -> object references, keys decoded only where encoded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from s3worker.errors import BadEventError
from s3worker.events import ObjectRef, parse_body

EVENTS = Path(__file__).parent / "events"


def parse(name: str):
    return parse_body((EVENTS / name).read_text())


def test_s3_notification_with_several_records_decodes_keys():
    parsed = parse("s3_notification_put.json")
    assert [o.key for o in parsed.objects] == [
        "uploads/my file.csv",
        "uploads/a+b.csv",
        "uploads/100%.csv",
        "relatório/março/dados ü.csv",
        "deep/a/b/c.json",
    ]
    first = parsed.objects[0]
    assert first == ObjectRef(
        bucket="raw-bucket",
        key="uploads/my file.csv",
        size=1234,
        etag="0123456789abcdef0123456789abcdef",
        version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        sequencer="0055AED6DCD90281E5",
    )
    assert parsed.objects[1].version_id is None


def test_eventbridge_keys_are_taken_literally():
    (obj,) = parse("eventbridge_object_created.json").objects
    # '+' and '%20' are part of the real key here: EventBridge does not encode keys.
    assert obj.key == "relatório/março/dados ü+a%20b.csv"
    assert obj.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert obj.size == 2048


@pytest.mark.parametrize(
    ("fixture", "key"),
    [
        ("sns_s3_notification.json", "via sns/report 1.csv"),
        ("sns_raw_s3_notification.json", "via sns raw/report 2.csv"),
        ("sns_eventbridge.json", "via sns/eventbridge ü.csv"),
    ],
)
def test_sns_envelopes_raw_or_not(fixture: str, key: str):
    assert [o.key for o in parse(fixture).objects] == [key]


@pytest.mark.parametrize(
    ("fixture", "reasons"),
    [
        ("s3_test_event.json", ["s3:TestEvent"]),
        ("sns_s3_test_event.json", ["s3:TestEvent"]),
        ("s3_notification_delete.json", ["event ObjectRemoved:Delete is not a creation"]),
        ("eventbridge_object_deleted.json", ["event Object Deleted is not a creation"]),
    ],
)
def test_skipped_events_say_why(fixture: str, reasons: list[str]):
    parsed = parse(fixture)
    assert parsed.objects == ()
    assert [s.reason for s in parsed.skipped] == reasons


def test_a_zero_size_in_the_event_is_not_trusted():
    # The daemon skips zero-byte objects by the size S3 reports: an event's size may lie
    parsed = parse("s3_notification_folder_marker.json")
    assert [s.reason for s in parsed.skipped] == ["folder marker"]
    assert [o.size for o in parsed.objects] == [0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON list"),
        ('{"hello": "world"}', "unknown event shape"),
        ('{"Records": {"a": 1}}', "Records is not a list"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "S3 record lacks"),
        ('{"detail-type": "Object Created", "detail": {}}', "EventBridge detail lacks"),
        ('{"Type": "Notification", "Message": "{oops"}', "SNS Message is not JSON"),
    ],
)
def test_malformed_bodies_raise_a_clear_error(body: str, message: str):
    with pytest.raises(BadEventError, match=message):
        parse_body(body)


def test_bad_size_is_rejected():
    doc = json.loads((EVENTS / "eventbridge_object_created.json").read_text())
    doc["detail"]["object"]["size"] = "big"
    with pytest.raises(BadEventError, match="size"):
        parse_body(json.dumps(doc))
