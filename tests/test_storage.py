from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import boto3
import pytest
import s3worker.storage as storage_module
from s3worker.aws import ClientsContext
from s3worker.contract import MAX_KEY_BYTES, Layout
from s3worker.errors import KeyTooLongError, ObjectGoneError, SupersededError
from s3worker.events import ObjectRef
from s3worker.retry import RetryPolicy
from s3worker.storage import Fetched, Storage
from tenacity import wait_none


def test_results_follow_the_contract_paths():
    assert Layout("").manifest_key("a/b.csv") == "a/b.csv/_manifest.json"
    assert Layout("results").result_key("a/b.csv", "summary.json") == "results/a/b.csv/summary.json"
    assert Layout("results").error_key("a/b.csv") == "results/_errors/a/b.csv.json"


def test_result_keys_over_the_s3_limit_are_refused():
    key = "k/" + "z" * 1010
    with pytest.raises(KeyTooLongError, match=r"S3 allows 1024"):
        Layout("").manifest_key(key)


def test_error_key_falls_back_to_a_hash_when_too_long():
    key = "k/" + "z" * 1020
    report = Layout("").error_key(key)
    assert report.startswith("_errors/_long-keys/")
    assert len(report.encode()) <= MAX_KEY_BYTES
    assert report == Layout("").error_key(key)  # stable


# -- Storage.fetch: the check that the event's version is current, and a small body with it --


def fetch(ref: ObjectRef, calls: list[tuple[str, dict[str, Any]]]) -> Fetched:
    """`Storage.fetch(ref)` against the emulator; each S3 call it made appended to `calls`."""

    async def main() -> Fetched:
        async with ClientsContext(1) as clients:
            clients.s3.meta.events.register(
                "before-parameter-build.s3.*",
                lambda model, params, **_: calls.append((model.name, dict(params))),
            )
            storage = Storage(clients.s3, RetryPolicy(3, wait_none()), "unused", Layout())
            return await storage.fetch(ref)

    return asyncio.run(main())


def put(bucket: str, key: str, body: bytes) -> ObjectRef:
    resp = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return ObjectRef(bucket, key, len(body), resp["ETag"].strip('"'), resp.get("VersionId"))


def versioned_bucket(name: str) -> str:
    boto3.client("s3").create_bucket(Bucket=name)
    boto3.client("s3").put_bucket_versioning(
        Bucket=name, VersioningConfiguration={"Status": "Enabled"}
    )
    return name


def test_a_small_object_is_checked_and_read_in_one_get(aws: str, name: str) -> None:
    # Given a small object whose event names its version and size
    ref = put(versioned_bucket(name), "in/a.csv", b"a,b\n1,2\n")
    calls: list[tuple[str, dict[str, Any]]] = []
    # When it is fetched
    got = fetch(ref, calls)
    # Then one GET (not a HEAD and a GET) brought S3's size and version, and the bytes
    assert [op for op, _ in calls] == ["GetObject"]
    assert (got.body, got.ref.size, got.ref.version_id) == (b"a,b\n1,2\n", 8, ref.version_id)


def test_a_large_object_is_checked_with_a_head_and_read_later(
    aws: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage_module, "WHOLE_GET_BYTES", 4)
    ref = put(versioned_bucket(name), "in/a.csv", b"a,b\n1,2\n")
    calls: list[tuple[str, dict[str, Any]]] = []
    got = fetch(ref, calls)
    assert [op for op, _ in calls] == ["HeadObject"]  # its size decides its scratch space
    assert (got.body, got.ref.size) == (None, 8)


def test_an_event_that_understates_the_size_gets_no_body(
    aws: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an event that says 3 bytes for an object above the one-GET size
    monkeypatch.setattr(storage_module, "WHOLE_GET_BYTES", 6)
    ref = replace(put(versioned_bucket(name), "in/a.csv", b"a,b\n1,2\n"), size=3)
    calls: list[tuple[str, dict[str, Any]]] = []
    got = fetch(ref, calls)
    # Then that GET served as the HEAD: S3's size, the body left for the download
    assert [op for op, _ in calls] == ["GetObject"]
    assert (got.body, got.ref.size) == (None, 8)


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
def test_an_overwritten_object_is_superseded_in_that_one_get(
    aws: str, name: str, versioned: bool
) -> None:
    bucket = versioned_bucket(name) if versioned else name
    if not versioned:
        boto3.client("s3").create_bucket(Bucket=bucket)
    old = put(bucket, "in/a.csv", b"one\n")
    put(bucket, "in/a.csv", b"two\n")
    calls: list[tuple[str, dict[str, Any]]] = []
    with pytest.raises(SupersededError):
        fetch(old, calls)
    assert [op for op, _ in calls] == ["GetObject"]


def test_a_deleted_key_still_gives_the_events_version(aws: str, name: str) -> None:
    # Given a key deleted after its upload (a delete marker on top of the event's version)
    ref = put(versioned_bucket(name), "in/a.csv", b"kept\n")
    boto3.client("s3").delete_object(Bucket=ref.bucket, Key=ref.key)
    calls: list[tuple[str, dict[str, Any]]] = []
    got = fetch(ref, calls)
    # Then the version the event named is read, by its id
    assert [(op, p.get("VersionId")) for op, p in calls] == [
        ("GetObject", None),
        ("GetObject", ref.version_id),
    ]
    assert got.body == b"kept\n"


def test_a_version_that_is_gone_is_a_permanent_error(aws: str, name: str) -> None:
    ref = put(versioned_bucket(name), "in/a.csv", b"gone\n")
    boto3.client("s3").delete_object(Bucket=ref.bucket, Key=ref.key, VersionId=ref.version_id)
    with pytest.raises(ObjectGoneError):
        fetch(ref, [])
