"""`s3worker results KEY`: the manifest and summary of one input, or why there are none."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from s3worker import exits
from s3worker.contract import SUMMARY_NAME, ErrorReport, Layout, Manifest
from s3worker.ops import OperatorError, fmt
from s3worker.ops.aws import Aws, explained, http_status
from s3worker.ops.s3read import get_json, split_s3_uri
from s3worker.ops.stack import Stack

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
    doc = Manifest.parse(manifest)
    # `path` is the processor's own name for it; the key carries the input version's tag.
    if (named := doc.output_named(SUMMARY_NAME)) is not None:
        return named.key
    for output in doc.outputs:
        if output.key.endswith(f"/{SUMMARY_NAME}"):
            return output.key
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
        report = ErrorReport.parse(outcome.error_report)
        return "\n".join([
            f"{outcome.key}: FAILED after {report.attempts or '?'} attempt(s), "
            f"at {report.at or '?'}",
            f"error   {report.error_class or '?'}: {report.error_message}",
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
    doc = Manifest.parse(manifest)
    inp, proc = doc.input, f"{doc.processor_name or '?'} {doc.processor_version}".rstrip()
    lines = [
        f"{outcome.key}: processed by {proc}",
        f"input    s3://{inp.bucket or '?'}/{inp.key or '?'}  {fmt.size(inp.size)}"
        f"  etag {inp.etag or '-'}  version {inp.version_id or '-'}",
        f"worker   {doc.worker.instance_id or '-'}  finished {doc.timings.get('finished_at', '-')}",
        f"results  {outcome.location}",
        "",
        fmt.table(
            ["OUTPUT", "BYTES", "ROWS"],
            [[o.key, _or(o.bytes, ""), _or(o.rows, "-")] for o in doc.outputs],
        ),
    ]
    if outcome.summary is not None:
        lines += ["", "summary.json", json.dumps(outcome.summary, indent=2, ensure_ascii=False)]
    return "\n".join(lines)


def _or(value: int | None, default: str) -> int | str:
    return default if value is None else value
