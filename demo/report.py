"""The demo's closing table: per input, what ran, what it found, where the results are."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from s3worker.contract import ErrorReport, Layout, Manifest

Json = dict[str, Any]


def _appointments(s: Json) -> str:
    c = s.get("conflicts", {})
    return (
        f"{c.get('professional', 0)} professional + {c.get('patient', 0)} patient double bookings, "
        f"no-show rate {s.get('no_show_rate', 0):.1%}"
    )


def _sensors(s: Json) -> str:
    reasons = ", ".join(f"{v} {k}" for k, v in s.get("anomalies_by_reason", {}).items())
    return f"{s.get('anomalies', 0)} anomalies ({reasons}) on {s.get('devices', 0)} devices"


def _sales(s: Json) -> str:
    top = next(iter(s.get("top_products", {})), "-")
    return f"revenue {s.get('revenue', 0):,.2f}, {s.get('tickets', 0)} tickets, top {top}"


def _applogs(s: Json) -> str:
    latency = f", p95 {s['latency_p95_ms']:.0f} ms" if s.get("latency_p95_ms") else ""
    return f"{s.get('requests', 0)} requests, error rate {s.get('error_rate', 0):.1%}{latency}"


def _fields(s: Json) -> str:
    return ", ".join(sorted(s))[:60]


FINDINGS: dict[str, Callable[[Json], str]] = {
    "appointments": _appointments,
    "sensors": _sensors,
    "sales": _sales,
    "applogs": _applogs,
}
ROW_FIELDS = ("bookings", "readings", "lines", "requests")


def _get(s3: Any, bucket: str, key: str) -> Json | None:
    try:
        doc: Json = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None
    return doc


def row_for(s3: Any, bucket: str, key: str) -> list[str]:
    """[input, processor, counts, findings]; a failure's findings is its whole error line."""
    layout = Layout()  # the demo's stack writes results without a prefix
    doc = _get(s3, bucket, layout.manifest_key(key))
    if doc is None:
        found = _get(s3, bucket, layout.error_key(key))
        if found is None:
            return [key, "-", "", "not processed"]
        report = ErrorReport.parse(found)
        return [key, "FAILED", "", f"{report.error_class}: {report.error_message}",
                f"report: s3worker results {key}"]  # fmt: skip
    # The manifest names the summary: output file names carry the input version's tag.
    manifest = Manifest.parse(doc)
    named = manifest.output_named("summary.json")
    summary = _get(s3, bucket, named.key if named else f"{key}/summary.json") or {}
    name = manifest.processor_name
    rows = next((summary[f] for f in ROW_FIELDS if f in summary), None)
    counts = f"{rows:,} rows, {summary.get('rejected_rows', 0):,} rejected" if rows else ""
    return [key, name, counts, FINDINGS.get(name, _fields)(summary)]


def print_results(outputs: dict[str, str], keys: list[str], journals: list[Path]) -> None:
    """One block per input, fitted to 100 columns: what ran and what it found."""
    s3 = boto3.client("s3")
    bucket = outputs["ProcessedBucketName"]
    rows = [row_for(s3, bucket, key) for key in keys]
    width = max(len(r[0]) for r in rows)
    for key, processor, counts, findings, *more in rows:
        print(f"  {key:<{width}}  {processor:<12}  {counts}".rstrip())
        for line in textwrap.wrap(findings, 92) + more:
            print(f"      {line}")
    print(f"\n  results: s3://{bucket}/<input>/ (`s3worker results <input>`)")
    jobs = [json.loads(line) for j in journals if j.exists() for line in j.read_text().splitlines()
            if line.startswith("{") and '"event": "job"' in line]  # fmt: skip
    if jobs:
        slowest = max(jobs, key=lambda j: j.get("duration_s", 0))
        print(f"  {len(jobs)} canonical job log lines; slowest: {slowest['key']} "
              f"{slowest.get('duration_s')} s ({slowest.get('outcome')})")  # fmt: skip


def write_report(outputs: dict[str, str], workdir: Path) -> None:
    """The results as `s3worker report` draws them: one page of charts, opened offline."""
    import os

    from s3worker.ops.report import from_bucket, write

    bucket, out = outputs["ProcessedBucketName"], workdir / "report.html"
    results = from_bucket(boto3.client("s3"), bucket, Layout())
    size = write(results, out, f"s3://{bucket}/")
    print(f"  report: {os.path.relpath(out)} ({size / 1e6:.1f} MB, charts of {len(results)} "
          "inputs; opens offline)")  # fmt: skip


# The closing question, in the SQL Athena runs on the stack's Glue tables (`s3worker query`).
QUERY = (
    "SELECT COUNT(*) AS days, ROUND(SUM(revenue), 2) AS revenue, SUM(tickets) AS tickets "
    "FROM sales_daily"
)


def print_query(stack_name: str, region: str, planted_revenue: float) -> None:
    """The query's answer, and whether it is the revenue planted in the sales sample."""
    from s3worker.ops.aws import Aws
    from s3worker.ops.query import run
    from s3worker.ops.show import render
    from s3worker.ops.stack import load_stack

    aws = Aws(region=region)
    stack = load_stack(aws, stack_name)
    answer = run(aws, stack.processed_bucket, stack.layout(), QUERY, scan=100_000)
    print("\n" + textwrap.fill(f's3worker query "{QUERY}"', 98, initial_indent="  ",
                               subsequent_indent=" " * 18))  # fmt: skip
    for line in render(answer, 5, "query").splitlines():
        print(f"    {line}".rstrip())
    found = answer.column("revenue")[0].as_py() or 0.0
    verdict = "equals" if round(found, 2) == round(planted_revenue, 2) else "DIFFERS from"
    print(f"  revenue {found:,.2f} {verdict} the total planted in the sales sample "
          f"({planted_revenue:,.2f}, step 3)")  # fmt: skip


# What a sample generator's truth holds: items planted (counted), or expected totals.
PLANTED_LABELS = {
    "professional": "professional double bookings",
    "patient": "patient double bookings",
    "zscore": "spikes",
    "out_of_range": "out-of-range readings",
    "flatline": "flatlines",
    "gap": "gaps",
    "malformed": "malformed rows",
}
EXPECTED_TOTALS = {"revenue": "revenue", "requests": "requests", "status_5xx": "5xx responses"}


def planted_text(truth: Any) -> str:
    parts = []
    for kind, items in truth.planted.items():
        if kind in EXPECTED_TOTALS:
            parts.append(f"{EXPECTED_TOTALS[kind]} {items[0]:,} (expected)")
        else:
            parts.append(f"{len(items)} {PLANTED_LABELS.get(kind, kind.replace('_', ' '))}")
    if truth.broken_lines:
        parts.append(f"{truth.broken_lines} unparseable line(s)")
    return ", ".join(parts)


def describe_actions(result: Json) -> str:
    """The start Lambda's answer, in words: `started i-1, launched i-2`."""
    return ", ".join(
        f"{verb} {' '.join(map(str, result[verb]))}"
        for verb in ("started", "launched", "deferred")
        if result.get(verb)
    )


def print_keep_instructions(endpoint: str, stack: str, keys: list[str]) -> None:
    exports = (
        f"export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=demo "
        f"AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 S3WORKER_STACK={stack}"
    )
    print("\nThe stack stays up (--keep) until Ctrl-C. In another terminal, from this directory:")
    for line in (
        exports,
        ".venv/bin/s3worker status",
        f".venv/bin/s3worker results {keys[0]}",
        ".venv/bin/s3worker dlq list",
        '.venv/bin/s3worker query "SELECT dt, revenue FROM sales_daily ORDER BY dt"',
        ".venv/bin/s3worker upload .demo/batch --prefix again/   # the Lambda starts a worker",
    ):
        print(f"  {line}")
    print("Each instance the start Lambda starts is booted here, as in step 6.", flush=True)
