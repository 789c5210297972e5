"""skiprules.py: which announced objects are no work (pure; the daemon and the Lambda share it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from s3worker import skiprules
from s3worker.skiprules import (
    FOLDER_MARKER,
    ZERO_BYTES,
    Skipped,
    is_test_event,
    not_a_creation,
    object_skip_reason,
)


def test_only_s3s_test_event_is_a_test_event() -> None:
    assert is_test_event({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert not is_test_event({"Event": "s3:ObjectCreated:Put"})
    assert not is_test_event({"Records": []})


@pytest.mark.parametrize(
    ("name", "eventbridge"),
    [
        ("Object Created", True),
        ("ObjectCreated:Put", False),
        ("ObjectCreated:CompleteMultipartUpload", False),
        ("ObjectCreated:Copy", False),
    ],
)
def test_creations_are_work(name: str, eventbridge: bool) -> None:
    assert not_a_creation(name, eventbridge=eventbridge) is None


@pytest.mark.parametrize(
    ("name", "eventbridge"),
    [
        ("Object Deleted", True),
        ("Object Restore Completed", True),
        ("ObjectCreated:Put", True),  # a notification's name in an EventBridge detail-type
        ("Object Created", False),  # and the other way round
        ("ObjectRemoved:Delete", False),
        ("ObjectRestore:Completed", False),
    ],
)
def test_anything_else_is_skipped_with_its_name_in_the_reason(name: str, eventbridge: bool) -> None:
    assert not_a_creation(name, eventbridge=eventbridge) == f"event {name} is not a creation"


@pytest.mark.parametrize(
    ("key", "size", "reason"),
    [
        ("incoming/", 0, FOLDER_MARKER),
        ("incoming/", None, FOLDER_MARKER),  # a marker whatever its size
        ("incoming/", 12, FOLDER_MARKER),
        ("incoming/empty.csv", 0, ZERO_BYTES),
        ("incoming/a.csv", 1, None),
        ("incoming/a.csv", None, None),  # size not known yet: not skipped for it
        ("a/ b", 5, None),
    ],
)
def test_folder_markers_and_empty_objects_are_no_work(
    key: str, size: int | None, reason: str | None
) -> None:
    assert object_skip_reason(key, size) == reason


def test_a_skip_carries_its_reason_and_maybe_its_key() -> None:
    skipped = Skipped(ZERO_BYTES, "incoming/empty.csv")
    assert (skipped.reason, skipped.key) == ("zero-byte object", "incoming/empty.csv")
    assert Skipped("s3:TestEvent").key is None
    with pytest.raises(AttributeError):
        skipped.reason = "x"  # type: ignore[misc]  # frozen: both sides log what was decided


def test_the_module_imports_only_the_standard_library() -> None:
    # lambda/build.py copies the file alone into the Lambda's zip
    tree = ast.parse(Path(skiprules.__file__).read_text())
    imported = {
        (n.module or "").split(".")[0] if isinstance(n, ast.ImportFrom) else a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    assert imported <= {"__future__", "dataclasses"}
