"""lambda/starter/events.py: the start Lambda's typed events (pure), and the skip rules it shares
with the daemon (daemon/s3worker/skiprules.py): the same objects are no work on both sides."""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from s3worker import events as daemon_events

from demo.emulator import load_start_worker

EVENTS = Path(__file__).resolve().parent / "events"
sw = load_start_worker()
ev = importlib.import_module("starter.events")  # from the zip load_start_worker put on the path


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"lambda_{name}.json").read_text())


def eventbridge_created(key: str, size: int | None) -> dict[str, Any]:
    doc = event("eventbridge_object_created")
    doc["detail"]["object"]["key"] = key
    if size is None:
        del doc["detail"]["object"]["size"]
    else:
        doc["detail"]["object"]["size"] = size
    return doc


def test_object_created_names_its_key() -> None:
    parsed = sw.parse_event(event("eventbridge_object_created"))

    assert parsed == ev.ObjectsCreated(("sales/2021-11-12 store 7.csv",))
    assert parsed.count == 1


def test_s3_notification_counts_created_records_and_decodes_their_keys() -> None:
    parsed = sw.parse_event(event("s3_notification"))

    assert parsed.keys == ("sensors/line 1.csv", "sensors/line 2.csv")  # '+' is a space there
    assert parsed.skipped == (
        ev.Skipped("event ObjectRemoved:Delete is not a creation", "sensors/old.csv"),
    )


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("scheduled", "Scheduled"),
        ("s3_test_event", "Ignored"),
        ("eventbridge_object_deleted", "Ignored"),
        ("cfn_create", "CustomResource"),
        ("cfn_delete", "CustomResource"),
    ],
)
def test_other_fixtures_parse_to_their_type(fixture: str, kind: str) -> None:
    assert type(sw.parse_event(event(fixture))).__name__ == kind


def test_custom_resource_keeps_the_request() -> None:
    parsed = sw.parse_event(event("cfn_delete"))

    assert parsed.request_type == "Delete"
    assert parsed.request == event("cfn_delete")


@pytest.mark.parametrize(
    "payload", [None, [], "text", {"Records": "x"}, {"source": "aws.ec2"}, {"Records": []}]
)
def test_anything_else_is_ignored(payload: Any) -> None:
    assert isinstance(sw.parse_event(payload), ev.Ignored)


@pytest.mark.parametrize(
    ("key", "size", "reason"),
    [
        ("incoming/", 0, "folder marker"),  # the console's "Create folder"
        ("incoming/", None, "folder marker"),
        ("sales/empty.csv", 0, "zero-byte object"),
    ],
)
def test_objects_that_are_no_work_start_nothing(key: str, size: int | None, reason: str) -> None:
    parsed = sw.parse_event(eventbridge_created(key, size))

    assert parsed == ev.ObjectsCreated((), (ev.Skipped(reason, key),))


def test_a_size_the_event_does_not_give_counts_the_object() -> None:
    assert sw.parse_event(eventbridge_created("sales/a.csv", None)).keys == ("sales/a.csv",)


def test_a_notification_with_a_folder_marker_counts_only_the_file() -> None:
    doc = event("s3_notification")
    marker = copy.deepcopy(doc["Records"][0])
    marker["s3"]["object"].update(key="sensors/", size=0)
    doc["Records"].append(marker)

    parsed = sw.parse_event(doc)

    assert parsed.count == 2
    assert ev.Skipped("folder marker", "sensors/") in parsed.skipped


@pytest.mark.parametrize(
    ("key", "size"),
    [("a/", 0), ("a/", 10), ("a.csv", 0), ("a.csv", 1), ("a b/c.csv", 7)],
)
def test_the_lambda_skips_what_the_daemon_skips(key: str, size: int) -> None:
    # Given the same EventBridge event on both sides (the daemon gets it from the queue)
    doc = eventbridge_created(key, size)
    daemon = daemon_events.parse_document(copy.deepcopy(doc))
    lambda_side = sw.parse_event(doc)
    # Then a folder marker is skipped by both at parse time; a zero-byte object by the Lambda
    # from the event's size, by the daemon from S3's size (the rule is the same function)
    daemon_skips = {s.reason for s in daemon.skipped}
    assert ("folder marker" in daemon_skips) == key.endswith("/")
    assert lambda_side.count == (0 if key.endswith("/") or size == 0 else 1)


def test_both_sides_import_one_rules_module() -> None:
    from s3worker import skiprules

    assert ev.object_skip_reason is skiprules.object_skip_reason
    assert daemon_events.object_skip_reason is skiprules.object_skip_reason


# --- the EventBridge rule keeps the same objects out of the queue ------------------------------


def rule_pattern(bucket: str) -> Any:
    from cfnlint.decode import cfn_yaml
    from moto.events.models import EventPattern

    from demo.emulator import TEMPLATE

    template = cfn_yaml.load(str(TEMPLATE))
    pattern = template["Resources"]["ObjectCreatedRule"]["Properties"]["EventPattern"]
    text = json.dumps(pattern).replace('{"Ref": "RawBucket"}', json.dumps(bucket))
    return EventPattern.load(text)  # moto's matcher: what the embedded EventBridge delivers


@pytest.mark.parametrize(
    ("key", "size"),
    [("a.csv", 5), ("a/", 0), ("a/", 5), ("a.csv", 0), ("a.csv", None), ("a b/c.csv", 1)],
)
def test_the_rule_delivers_exactly_what_the_skip_rules_count(key: str, size: int | None) -> None:
    # Given the Object Created event S3 sends for this object
    doc = eventbridge_created(key, size)
    doc["detail"]["bucket"]["name"] = "raw"
    # Then the rule delivers it (to the queue and the Lambda) iff the Lambda counts it as work
    assert rule_pattern("raw").matches_event(doc) == (sw.parse_event(doc).count == 1)
