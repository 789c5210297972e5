"""`s3worker status`: queue depths, oldest message age, workers, recent results and errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from s3worker.contract import MANIFEST_NAME, ErrorReport, Layout, Manifest
from s3worker.ops import fmt
from s3worker.ops.aws import Aws, explained
from s3worker.ops.s3read import get_json, list_objects
from s3worker.ops.stack import Stack

DEPTH_ATTRIBUTES = {
    "visible": "ApproximateNumberOfMessages",
    "delayed": "ApproximateNumberOfMessagesDelayed",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
}
# SQS publishes ApproximateAgeOfOldestMessage to CloudWatch once a minute, for active queues.
AGE_WINDOW = timedelta(minutes=15)
AGE_PERIOD_SECONDS = 60


@dataclass
class QueueStatus:
    visible: int
    delayed: int
    in_flight: int
    oldest_age_seconds: float | None = None
    oldest_age_source: str = ""


@dataclass
class Worker:
    id: str
    state: str
    type: str
    launched: str | None
    uptime_seconds: float | None
    state_reason: str = ""


@dataclass
class Status:
    stack: str
    region: str
    queue: QueueStatus
    dead_letter: QueueStatus
    workers: list[Worker]
    recent_results: list[dict[str, Any]] = field(default_factory=list)
    recent_errors: list[dict[str, Any]] = field(default_factory=list)
    listing_truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect(
    aws: Aws, stack: Stack, layout: Layout, limit: int, scan: int, now: datetime | None = None
) -> Status:
    now = now or datetime.now(UTC)
    with explained():
        sqs, s3 = aws.client("sqs"), aws.client("s3")
        queue = queue_status(sqs, stack.work_queue_url)
        queue.oldest_age_seconds, queue.oldest_age_source = oldest_age(
            aws, stack.work_queue_url, now
        )
        status = Status(
            stack.name, aws.region, queue, queue_status(sqs, stack.dlq_url),
            workers(aws.client("ec2"), stack.pool_tag, now),
        )  # fmt: skip
        recent_results(s3, stack.processed_bucket, layout, limit, scan, status)
        recent_errors(s3, stack.processed_bucket, layout, limit, scan, status)
    return status


def queue_status(sqs: Any, url: str) -> QueueStatus:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES.values()))
    values = attrs.get("Attributes", {})
    depth = {k: int(values.get(v, 0)) for k, v in DEPTH_ATTRIBUTES.items()}
    return QueueStatus(depth["visible"], depth["delayed"], depth["in_flight"])


def oldest_age(aws: Aws, queue_url: str, now: datetime) -> tuple[float | None, str]:
    """The latest ApproximateAgeOfOldestMessage from CloudWatch, and where it came from.

    SQS itself only gives this figure through CloudWatch (peeking at messages would count as
    a receive and push them towards the DLQ), so without data the age is unknown, not 0.
    The window ends a period after now so the current, still-open minute counts too."""
    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    try:
        points = aws.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": name}],
            StartTime=now - AGE_WINDOW, EndTime=now + timedelta(seconds=AGE_PERIOD_SECONDS),
            Period=AGE_PERIOD_SECONDS,
            Statistics=["Maximum"],
        )["Datapoints"]  # fmt: skip
    except (ClientError, BotoCoreError) as exc:
        return None, f"unknown (CloudWatch: {exc})"
    if not points:
        return None, "unknown (no CloudWatch datapoints in the last 15 minutes)"
    latest = max(points, key=lambda p: p["Timestamp"])
    return float(latest["Maximum"]), f"CloudWatch, {latest['Timestamp']:%H:%M} UTC"


def workers(ec2: Any, pool_tag: tuple[str, str], now: datetime) -> list[Worker]:
    key, value = pool_tag
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": f"tag:{key}", "Values": [value]}]
    )
    found = [
        _worker(i, now)
        for page in pages
        for reservation in page.get("Reservations", [])
        for i in reservation.get("Instances", [])
        if i["State"]["Name"] != "terminated"
    ]
    return sorted(found, key=lambda w: (w.state != "running", w.id))


def _worker(instance: dict[str, Any], now: datetime) -> Worker:
    state = instance["State"]["Name"]
    # LaunchTime is the last start for an EBS-backed instance, so it measures this run.
    launched: datetime | None = instance.get("LaunchTime")
    up = (now - launched).total_seconds() if launched and state in ("pending", "running") else None
    return Worker(
        instance["InstanceId"], state, instance.get("InstanceType", ""),
        launched.isoformat(timespec="seconds") if launched else None, up,
        instance.get("StateTransitionReason", ""),
    )  # fmt: skip


def recent_results(
    s3: Any, bucket: str, layout: Layout, limit: int, scan: int, status: Status
) -> None:
    base = f"{layout.prefix}/" if layout.prefix else ""
    objects, truncated = list_objects(s3, bucket, base, scan)
    status.listing_truncated |= truncated
    errors_root = layout.errors_root()
    manifests = [
        o for o in objects
        if o["Key"].endswith(f"/{MANIFEST_NAME}") and not o["Key"].startswith(errors_root)
    ]  # fmt: skip
    for obj in _latest(manifests, limit):
        doc = Manifest.parse(get_json(s3, bucket, obj["Key"]))
        status.recent_results.append(
            {
                "at": obj["LastModified"].isoformat(timespec="seconds"),
                "key": doc.input.key or obj["Key"],
                "processor": doc.processor_name,
                "rows": sum(o.rows or 0 for o in doc.outputs),
                "manifest": f"s3://{bucket}/{obj['Key']}",
            }
        )


def recent_errors(
    s3: Any, bucket: str, layout: Layout, limit: int, scan: int, status: Status
) -> None:
    root = layout.errors_root()
    objects, truncated = list_objects(s3, bucket, root, scan)
    status.listing_truncated |= truncated
    for obj in _latest(objects, limit):
        report = ErrorReport.parse(get_json(s3, bucket, obj["Key"]))
        key = report.input.key if report.input else ""
        status.recent_errors.append(
            {
                "at": obj["LastModified"].isoformat(timespec="seconds"),
                "key": key or f"(message {report.message_id or '?'})",
                "class": report.error_class,
                "message": report.error_message,
                "report": f"s3://{bucket}/{obj['Key']}",
            }
        )


def _latest(objects: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    return sorted(objects, key=lambda o: o["LastModified"], reverse=True)[:limit]


def render(status: Status) -> str:
    q, d = status.queue, status.dead_letter
    lines = [
        f"stack {status.stack} ({status.region})",
        f"work queue   visible {q.visible}  delayed {q.delayed}  in flight {q.in_flight}  "
        f"oldest {fmt.duration(q.oldest_age_seconds)} [{q.oldest_age_source}]",
        f"dead-letter  visible {d.visible}  delayed {d.delayed}  in flight {d.in_flight}",
        "",
        f"workers ({len(status.workers)})",
        fmt.table(
            ["ID", "STATE", "TYPE", "LAUNCHED", "UPTIME"],
            [
                [w.id, w.state, w.type, w.launched or "-", fmt.duration(w.uptime_seconds)]
                for w in status.workers
            ],
        ),
        "",
        f"recent results ({len(status.recent_results)})",
        fmt.table(
            ["WHEN", "INPUT", "PROCESSOR", "ROWS"],
            [[r["at"], r["key"], r["processor"], r["rows"]] for r in status.recent_results],
        ),
        "",
        f"recent errors ({len(status.recent_errors)})",
        fmt.table(
            ["WHEN", "INPUT", "ERROR"],
            [
                [e["at"], e["key"], fmt.clip(f"{e['class']}: {e['message']}", 80)]
                for e in status.recent_errors
            ],
        ),
    ]
    if status.listing_truncated:
        lines.append("(the processed bucket is large: only part of it was scanned; see --scan)")
    return "\n".join(lines)
