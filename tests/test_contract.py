"""The results contract (contract.py): pinned names and layouts, one render and one parse each.

The literal names below are the contract readers outside this repository rely on (BI jobs
reading `_manifest.json`, alarms on DLQ attributes): a rename must fail here first.
"""

from __future__ import annotations

import json
from typing import Any

from s3worker.contract import (
    ATTR_ATTEMPTS,
    ATTR_BODY_TRUNCATED,
    ATTR_ERROR,
    ATTR_ERROR_CLASS,
    ATTR_ERROR_REPORT,
    ATTR_SOURCE_MESSAGE_ID,
    CONTRACT_VERSION,
    ERROR_ATTRIBUTE_PREFIX,
    DeadLetterNote,
    ErrorReport,
    InputDoc,
    Layout,
    Manifest,
    OutputDoc,
    WorkerDoc,
    source_metadata,
)

WORKER = WorkerDoc("i-0abc", "ip-10-0-0-1", 4242, "1.2.3")
SOURCE = InputDoc("raw", "sales/day.csv", 120, "e-tag", "v-1")


def a_manifest() -> Manifest:
    return Manifest(
        input=SOURCE,
        processor_name="sales",
        processor_version="2.0",
        outputs=(
            OutputDoc("sales/day.csv/summary.t.json", "summary.json", 80, None),
            OutputDoc("sales/day.csv/daily/part-0.t.parquet", "daily/part-0.parquet", 900, 7),
        ),
        timings={"started_at": "2026-01-01T00:00:00.000+00:00", "process_s": 0.25},
        worker=WORKER,
        message_id="m-1",
        receive_count=2,
        replaced_outputs=("sales/day.csv/summary.old.json",),
    )


def test_layout_paths_are_the_documented_ones():
    # Given the default layout and one with a prefix
    plain, prefixed = Layout(), Layout("results")
    # Then results, reports and event reports sit where DESIGN.md says
    assert plain.manifest_key("a/b.csv") == "a/b.csv/_manifest.json"
    assert prefixed.error_key("a/b.csv") == "results/_errors/a/b.csv.json"
    assert prefixed.event_error_key("m-1") == "results/_errors/_events/m-1.json"
    assert prefixed.errors_root() == "results/_errors/"
    assert plain.errors_root() == "_errors/"
    assert Layout(per_bucket=True).source("raw", "k") == "raw/k"


def test_manifest_renders_the_documented_fields_in_order():
    # When a manifest is rendered
    doc = a_manifest().render()
    # Then its fields and their order are those earlier daemons wrote, plus the version
    assert list(doc) == [
        "input", "processor", "outputs", "timings", "worker", "message",
        "replaced_outputs", "contract",
    ]  # fmt: skip
    assert doc["input"] == {
        "bucket": "raw", "key": "sales/day.csv", "size": 120, "etag": "e-tag", "version_id": "v-1"
    }  # fmt: skip
    assert doc["processor"] == {"name": "sales", "version": "2.0"}
    assert doc["outputs"][1] == {
        "key": "sales/day.csv/daily/part-0.t.parquet", "path": "daily/part-0.parquet",
        "bytes": 900, "rows": 7,
    }  # fmt: skip
    assert doc["worker"] == {
        "instance_id": "i-0abc", "hostname": "ip-10-0-0-1", "pid": 4242, "s3worker_version": "1.2.3"
    }  # fmt: skip
    assert doc["message"] == {"id": "m-1", "receive_count": 2}
    assert doc["contract"] == CONTRACT_VERSION == 1


def test_manifest_parse_inverts_render_through_json():
    manifest = a_manifest()
    assert Manifest.parse(json.loads(json.dumps(manifest.render()))) == manifest


def test_manifest_parse_accepts_a_document_of_an_earlier_daemon():
    # Given a manifest written before the contract was versioned (no `contract`, no paths)
    legacy: dict[str, Any] = {
        "input": {"bucket": "raw", "key": "k", "size": 3, "etag": "e", "version_id": None},
        "processor": {"name": "echo", "version": "1.0"},
        "outputs": [{"key": "k/out.json", "bytes": 3}, {"no-key": True}],
    }
    # When it is parsed
    manifest = Manifest.parse(legacy)
    # Then what it says is read, what it lacks is empty, and its version reads 0
    assert manifest.input == InputDoc("raw", "k", 3, "e", None)
    assert manifest.output_keys == ("k/out.json",)
    assert manifest.replaced_outputs == ()
    assert manifest.contract == 0
    assert Manifest.parse(None).output_keys == ()


def test_output_named_finds_the_processors_own_name():
    manifest = a_manifest()
    named = manifest.output_named("summary.json")
    assert named is not None
    assert named.key == "sales/day.csv/summary.t.json"
    assert manifest.output_named("missing.json") is None


def test_error_report_renders_input_first_and_parses_back():
    # Given a report about an object, and one about a message that named none
    report = ErrorReport(
        "BadDataError", "bad row", 1, "m-1", "{}", WORKER, "t", "permanent", input=SOURCE
    )
    event = ErrorReport("BadEventError", "not json", 3, "m-2", "x", WORKER, "t", "permanent")
    # Then the object's report starts with its input; the event's has none
    assert list(report.render()) == [
        "input", "error", "attempts", "message", "worker", "at", "kind", "contract",
    ]  # fmt: skip
    assert report.render()["error"] == {"class": "BadDataError", "message": "bad row"}
    assert report.render()["message"] == {"id": "m-1", "body": "{}"}
    assert "input" not in event.render()
    # And both parse back to what was rendered
    for doc in (report, event):
        assert ErrorReport.parse(json.loads(json.dumps(doc.render()))) == doc


def test_dead_letter_attribute_names_are_pinned():
    note = DeadLetterNote("BadDataError", "bad row", "s3://p/_errors/k.json", "m-1", "2")
    assert note.render() == {
        "s3worker-error-class": "BadDataError",
        "s3worker-error": "bad row",
        "s3worker-error-report": "s3://p/_errors/k.json",
        "s3worker-source-message-id": "m-1",
        "s3worker-attempts": "2",
    }
    assert DeadLetterNote.parse(note.render()) == note
    assert DeadLetterNote.parse({}) == DeadLetterNote()
    assert tuple(note.render())[:3] == (ATTR_ERROR_CLASS, ATTR_ERROR, ATTR_ERROR_REPORT)
    assert tuple(note.render())[3:] == (ATTR_SOURCE_MESSAGE_ID, ATTR_ATTEMPTS)
    assert ATTR_BODY_TRUNCATED == "s3worker-body-truncated"
    # The failure's own attributes are the ones a redrive drops
    assert {a for a in note.render() if a.startswith(ERROR_ATTRIBUTE_PREFIX)} == {
        ATTR_ERROR_CLASS, ATTR_ERROR, ATTR_ERROR_REPORT,
    }  # fmt: skip


def test_source_metadata_names_the_input_version():
    assert source_metadata("e", None) == {"source-etag": "e", "source-version-id": ""}
    assert source_metadata(None, "v") == {"source-etag": "", "source-version-id": "v"}
