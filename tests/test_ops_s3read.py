"""s3worker.ops.s3read: the small reads of the processed bucket, against the moto server over
HTTP (a JSON document or None, a bounded listing that says when it stopped early), and the
s3:// address split (pure)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from s3worker.ops.s3read import get_json, list_objects, split_s3_uri


@pytest.fixture
def bucket(aws: str, name: str) -> tuple[Any, str]:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    return s3, name


def test_a_json_document_is_read_and_a_missing_one_is_none(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    s3.put_object(Bucket=name, Key="in/a.csv/_manifest.json", Body=b'{"rows": 3}')

    assert get_json(s3, name, "in/a.csv/_manifest.json") == {"rows": 3}
    assert get_json(s3, name, "in/none/_manifest.json") is None


def test_a_json_value_that_is_not_an_object_is_wrapped(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    s3.put_object(Bucket=name, Key="list.json", Body=b"[1, 2]")

    assert get_json(s3, name, "list.json") == {"value": [1, 2]}


def test_a_missing_bucket_is_an_error_not_a_missing_document(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    # Both answer 404: a bucket that is not there is a misconfiguration, not "not written yet"
    with pytest.raises(ClientError, match="NoSuchBucket"):
        get_json(s3, f"{name}-missing", "x.json")


def test_a_body_that_is_not_json_is_an_error(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    s3.put_object(Bucket=name, Key="bad.json", Body=b"{not json")

    with pytest.raises(ValueError, match="Expecting"):
        get_json(s3, name, "bad.json")


def test_a_listing_stops_at_its_limit_and_says_so(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    for n in range(5):
        s3.put_object(Bucket=name, Key=f"p/{n}", Body=b"x")
    s3.put_object(Bucket=name, Key="other/9", Body=b"x")

    some, cut = list_objects(s3, name, "p/", 3)
    every, whole = list_objects(s3, name, "p/", 5)  # exactly the limit: nothing left out

    assert ([o["Key"] for o in some], cut) == (["p/0", "p/1", "p/2"], True)
    assert ([o["Key"] for o in every], whole) == ([f"p/{n}" for n in range(5)], False)
    assert list_objects(s3, name, "none/", 10) == ([], False)


def test_a_listing_reads_past_the_first_page(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    for n in range(5):
        s3.put_object(Bucket=name, Key=f"k/{n}", Body=b"")
    # Pages of two keys (S3's are 1,000): the listing must follow the continuation tokens
    pages: list[int] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["MaxKeys"] = 2
        pages.append(1)

    s3.meta.events.register("provide-client-params.s3.ListObjectsV2", small_pages)

    found, cut = list_objects(s3, name, "k/", 10)

    assert ([o["Key"] for o in found], cut) == ([f"k/{n}" for n in range(5)], False)
    assert len(pages) == 3


@pytest.mark.parametrize(
    ("uri", "parts"),
    [
        ("s3://bucket/key/with/slashes.csv", ("bucket", "key/with/slashes.csv")),
        ("s3://bucket/a", ("bucket", "a")),
        ("s3://bucket/", None),  # no key
        ("s3://bucket", None),
        ("s3:///key", None),  # no bucket
        ("bucket/key", None),  # a plain key, not an address
        ("S3://bucket/key", None),
    ],
)
def test_an_s3_address_splits_into_bucket_and_key(uri: str, parts: tuple[str, str] | None) -> None:
    assert split_s3_uri(uri) == parts
