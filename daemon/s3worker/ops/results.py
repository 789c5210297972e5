"""`s3worker results KEY`: the manifest and summary of one input, or why there are none."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from s3worker import exits
from s3worker.ops import OperatorError, fmt
from s3worker.ops.aws import Aws, explained, http_status
from s3worker.ops.s3read import get_json, split_s3_uri
from s3worker.ops.stack import Stack
from s3worker.processors.base import SUMMARY_NAME
from s3worker.storage import Layout

# Exit codes (s3worker/exits.py): processed or skipped 0, failed 1, not processed yet 3.
EXIT_CODES = {"processed": exits.OK, "skipped": exits.OK, "failed": exits.FAILED}


@dataclass
class Outcome:
    key: str
    state: str  # "processed", "skipped" (nothing to process), "failed" or "pending"
    manifest: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    error_report: dict[str, Any] | None = None
    location: str = ""
    raw_object: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.state, exits.PENDING)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


def input_key(arg: str, raw_bucket: str) -> str:
    """A key, or `s3://RAW/KEY` for the stack's raw bucket."""
    parts = split_s3_uri(arg)
    if parts is None:
        return arg
    bucket, key = parts
    if bucket != raw_bucket:
        raise OperatorError(f"{arg} is not in this stack's raw bucket ({raw_bucket})")
    return key


def lookup(aws: Aws, stack: Stack, layout: Layout, key: str) -> Outcome:
    with explained():
        s3, bucket = aws.client("s3"), stack.processed_bucket
        manifest_key = layout.manifest_key(key)
        if manifest := get_json(s3, bucket, manifest_key):
            summary = get_json(s3, bucket, _summary_key(manifest, layout, key))
            where = f"s3://{bucket}/{manifest_key.rsplit('/', 1)[0]}/"
            return Outcome(key, "processed", manifest, summary, location=where)
        error_key = layout.error_key(key)
        if report := get_json(s3, bucket, error_key):
            return Outcome(
                key, "failed", error_report=report, location=f"s3://{bucket}/{error_key}"
            )
        raw = _raw(s3, stack.raw_bucket, key)
        return Outcome(key, "skipped" if is_skipped(key, raw) else "pending", raw_object=raw)


def is_skipped(key: str, raw: dict[str, Any] | None) -> bool:
    """What the daemon acknowledges without work (events.py): folder markers, empty objects."""
    return key.endswith("/") or (raw is not None and raw.get("size") == 0)


def _summary_key(manifest: dict[str, Any], layout: Layout, key: str) -> str:
    """The summary the manifest lists (the processor chose its outputs), else the usual place."""
    for output in manifest.get("outputs", []):
        # `path` is the processor's own name for it; the key carries the input version's tag.
        if output.get("path") == SUMMARY_NAME or str(output.get("key", "")).endswith(
            f"/{SUMMARY_NAME}"
        ):
            return str(output["key"])
    return layout.result_key(key, SUMMARY_NAME)


def _raw(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The raw object's size and time, to tell "still queued" from "never uploaded"."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if http_status(exc) in (403, 404):
            return None
        raise
    return {
        "bucket": bucket, "key": key, "size": head.get("ContentLength"),
        "last_modified": head["LastModified"].isoformat(timespec="seconds"),
    }  # fmt: skip


def render(outcome: Outcome) -> str:
    if outcome.state == "processed" and outcome.manifest is not None:
        return _render_processed(outcome, outcome.manifest)
    if outcome.state == "failed" and outcome.error_report is not None:
        report = outcome.error_report
        error = report.get("error", {})
        return "\n".join([
            f"{outcome.key}: FAILED after {report.get('attempts', '?')} attempt(s), "
            f"at {report.get('at', '?')}",
            f"error   {error.get('class', '?')}: {error.get('message', '')}",
            f"report  {outcome.location}",
            "fix the cause, then: s3worker dlq redrive --stack <stack>",
        ])  # fmt: skip
    raw = outcome.raw_object
    if outcome.state == "skipped":
        return (
            f"{outcome.key}: skipped, nothing to process (the daemon skips empty objects "
            "and folder markers); upload a file with content to process it"
        )
    if raw:
        return (
            f"{outcome.key}: not processed yet (uploaded {raw['last_modified']}, "
            f"{fmt.size(raw['size'])}); see s3worker status for the queue"
        )
    return f"{outcome.key}: not processed yet, and no such object in the raw bucket"


def _render_processed(outcome: Outcome, manifest: dict[str, Any]) -> str:
    inp, proc = manifest.get("input", {}), manifest.get("processor", {})
    worker, timings = manifest.get("worker", {}), manifest.get("timings", {})
    lines = [
        f"{outcome.key}: processed by {proc.get('name', '?')} {proc.get('version', '')}".rstrip(),
        f"input    s3://{inp.get('bucket', '?')}/{inp.get('key', '?')}  {fmt.size(inp.get('size'))}"
        f"  etag {inp.get('etag', '-')}  version {inp.get('version_id') or '-'}",
        f"worker   {worker.get('instance_id') or '-'}  finished {timings.get('finished_at', '-')}",
        f"results  {outcome.location}",
        "",
        fmt.table(
            ["OUTPUT", "BYTES", "ROWS"],
            [
                [o.get("key", ""), o.get("bytes", ""), o.get("rows", "-")]
                for o in manifest.get("outputs", [])
            ],
        ),
    ]
    if outcome.summary is not None:
        lines += ["", "summary.json", json.dumps(outcome.summary, indent=2, ensure_ascii=False)]
    return "\n".join(lines)
