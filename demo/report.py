"""The demo's closing table: per input, what ran, what it found, where the results are."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

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
    manifest = _get(s3, bucket, f"{key}/_manifest.json")
    if manifest is None:
        report = _get(s3, bucket, f"_errors/{key}.json")
        if report is None:
            return [key, "-", "-", "-", "not processed", "-"]
        error = report["error"]
        return [key, "-", "-", "-", f"FAILED {error['class']}: {error['message'][:60]}",
                f"s3://{bucket}/_errors/{key}.json"]  # fmt: skip
    # The manifest names the summary: output file names carry the input version's tag.
    summary_key = next(
        (o["key"] for o in manifest["outputs"] if o.get("path") == "summary.json"),
        f"{key}/summary.json",
    )
    summary = _get(s3, bucket, summary_key) or {}
    name = manifest["processor"]["name"]
    rows = next((summary[f] for f in ROW_FIELDS if f in summary), "-")
    findings = FINDINGS.get(name, _fields)(summary)
    return [key, name, str(rows), str(summary.get("rejected_rows", 0)), findings,
            f"s3://{bucket}/{key}/"]  # fmt: skip


def print_results(outputs: dict[str, str], keys: list[str], journals: list[Path]) -> None:
    s3 = boto3.client("s3")
    bucket = outputs["ProcessedBucketName"]
    header = ["input", "processor", "rows", "rejected", "findings", "results"]
    rows = [header] + [row_for(s3, bucket, key) for key in keys]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for n, row in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]]
        print("  " + "  ".join(cells))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths) + "  " + "-" * 7)
    jobs = [json.loads(line) for j in journals if j.exists() for line in j.read_text().splitlines()
            if line.startswith("{") and '"event": "job"' in line]  # fmt: skip
    if jobs:
        slowest = max(jobs, key=lambda j: j.get("duration_s", 0))
        print(f"\n  {len(jobs)} canonical job log lines; slowest: {slowest['key']} "
              f"{slowest.get('duration_s')} s ({slowest.get('outcome')})")  # fmt: skip
