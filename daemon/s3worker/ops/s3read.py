"""Small reads of the processed bucket shared by status, dlq and results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from s3worker.ops.aws import error_code, http_status

MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# Also a 404, but the bucket is not there: a misconfiguration, never "not written yet".
NO_BUCKET = "NoSuchBucket"


def get_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The JSON document at s3://bucket/key, or None when there is none."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = error_code(exc)
        if code in MISSING_CODES or (http_status(exc) == 404 and code != NO_BUCKET):
            return None
        raise
    doc = json.loads(body)
    return doc if isinstance(doc, dict) else {"value": doc}


def list_objects(
    s3: Any, bucket: str, prefix: str, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` objects under prefix; True when the listing stopped early."""
    found: list[dict[str, Any]] = []
    for obj in _objects(s3, bucket, prefix):
        if len(found) >= limit:
            return found, True
        found.append(obj)
    return found, False


def _objects(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def split_s3_uri(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket and key else None
