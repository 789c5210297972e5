"""`s3worker dlq list|redrive`: what failed and why, and sending it back after a fix."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from s3worker.contract import ERROR_ATTRIBUTE_PREFIX, DeadLetterNote, ErrorReport, Layout
from s3worker.errors import BadEventError
from s3worker.events import parse_body
from s3worker.ops import OperatorError, fmt
from s3worker.ops.aws import Aws, error_code, explained, http_status
from s3worker.ops.s3read import get_json, split_s3_uri
from s3worker.ops.stack import Stack

# SQS limits: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
BATCH = 10
# Long enough to read the whole queue without seeing a message twice; they are released at
# once afterwards, and come back by themselves after this if the command is killed.
PEEK_VISIBILITY_SECONDS = 60
RECEIVE_WAIT_SECONDS = 1
# How StartMessageMoveTask fails where it does not exist (older endpoints, emulators): then the
# messages are moved by hand. Any other failure (access denied...) is reported as it is.
UNSUPPORTED_CODES = frozenset(
    {"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "InvalidAction",
     "UnknownOperationException", "NotImplemented", "InternalFailure", "InternalError"}
)  # fmt: skip
TASK_DONE = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
TASK_POLL_SECONDS = 2.0


@dataclass
class DeadLetter:
    message_id: str
    keys: list[str]
    error_class: str
    error_message: str
    error_source: str  # "attributes", "report" or "none"
    report: str | None
    receives: int
    age_seconds: float | None
    body: str = field(repr=False)


# --- peeking -----------------------------------------------------------------------------


def peek(sqs: Any, url: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` messages, without consuming them.

    SQS has no "peek": each message is received with a short visibility timeout (so the loop
    sees each once) and made visible again right away with ChangeMessageVisibility 0. The
    receive adds 1 to the message's ApproximateReceiveCount; the DLQ has no redrive policy of
    its own, so that moves nothing."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    try:
        while len(seen) < limit:
            batch = _receive(sqs, url, min(BATCH, limit - len(seen)), PEEK_VISIBILITY_SECONDS)
            if not batch:
                break
            for m in batch:
                seen.setdefault(m["MessageId"], m)
                handles.append(m["ReceiptHandle"])
    finally:
        release(sqs, url, handles)
    return list(seen.values())


def _receive(sqs: Any, url: str, count: int, visibility: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=count, VisibilityTimeout=visibility,
        WaitTimeSeconds=RECEIVE_WAIT_SECONDS, AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])  # fmt: skip
    return messages


def release(sqs: Any, url: str, handles: list[str]) -> None:
    """Make received messages visible again at once."""
    for start in range(0, len(handles), BATCH):
        entries = [
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
            for i, h in enumerate(handles[start : start + BATCH])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


# --- list --------------------------------------------------------------------------------


def list_dead_letters(
    aws: Aws, stack: Stack, layout: Layout, limit: int, now: datetime | None = None
) -> list[DeadLetter]:
    now = now or datetime.now(UTC)
    with explained():
        s3 = aws.client("s3")
        messages = peek(aws.client("sqs"), stack.dlq_url, limit)
        return [describe(m, s3, stack.processed_bucket, layout, now) for m in messages]


def describe(
    message: dict[str, Any], s3: Any, bucket: str, layout: Layout, now: datetime
) -> DeadLetter:
    attrs = {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}
    sysattrs = message.get("Attributes", {})
    keys, parse_error = _keys(message["Body"])
    note = DeadLetterNote.parse(attrs)
    letter = DeadLetter(
        message_id=message["MessageId"], keys=keys, error_class="", error_message="",
        error_source="none", report=note.report or None,
        # Minus this listing's own receive.
        receives=max(0, int(sysattrs.get("ApproximateReceiveCount", 1)) - 1),
        age_seconds=_age(sysattrs.get("SentTimestamp"), now), body=message["Body"],
    )  # fmt: skip
    if note.error_class:
        letter.error_class, letter.error_message = note.error_class, note.error
        letter.error_source = "attributes"
        return letter
    _from_report(letter, s3, bucket, layout, parse_error)
    return letter


def _from_report(
    letter: DeadLetter, s3: Any, bucket: str, layout: Layout, parse_error: str | None
) -> None:
    """No attributes: the message exceeded maxReceiveCount. Look for a report all the same."""
    candidates = [split_s3_uri(letter.report)] if letter.report else []
    candidates += [(bucket, layout.error_key(k)) for k in letter.keys]
    candidates.append((bucket, layout.event_error_key(letter.message_id)))
    for where in candidates:
        if where and (doc := get_json(s3, *where)):
            report = ErrorReport.parse(doc)
            letter.error_class, letter.error_message = report.error_class, report.error_message
            letter.error_source, letter.report = "report", f"s3://{where[0]}/{where[1]}"
            return
    letter.error_class = "BadEvent" if parse_error else "MaxReceiveCountExceeded"
    letter.error_message = parse_error or (
        "no error report: the workers released it until the queue's maxReceiveCount "
        "(transient errors or crashes; see the worker logs)"
    )


def _keys(body: str) -> tuple[list[str], str | None]:
    try:
        parsed = parse_body(body)
    except BadEventError as exc:
        return [], str(exc)
    return [o.key for o in parsed.objects] + [s.key for s in parsed.skipped if s.key], None


def _age(sent_ms: str | None, now: datetime) -> float | None:
    if not sent_ms:
        return None
    return max(0.0, now.timestamp() - int(sent_ms) / 1000)


def render_list(letters: list[DeadLetter]) -> str:
    if not letters:
        return "the dead-letter queue is empty"
    rows = [
        [d.message_id, ", ".join(d.keys) or "-",
         fmt.clip(f"{d.error_class}: {d.error_message}", 90), d.receives,
         fmt.duration(d.age_seconds)]
        for d in letters
    ]  # fmt: skip
    body = fmt.table(["MESSAGE", "INPUT", "ERROR", "RECEIVES", "AGE"], rows)
    return f"{body}\n{len(letters)} message(s); none consumed (peeked, then made visible again)"


def as_dicts(letters: list[DeadLetter]) -> list[dict[str, Any]]:
    return [asdict(d) for d in letters]


# --- redrive -----------------------------------------------------------------------------


@dataclass
class RedriveResult:
    method: str  # "move-task", "receive-send-delete" or "dry-run"
    moved: int = 0
    failed: int = 0
    status: str = ""
    detail: str = ""


def redrive(
    aws: Aws, stack: Stack, dry_run: bool, limit: int, wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveResult:  # fmt: skip
    with explained():
        if dry_run:
            found = peek(aws.client("sqs"), stack.dlq_url, limit)
            return RedriveResult("dry-run", status="not moved", moved=len(found))
        task = _start_move_task(aws, stack)
        if task is None:
            return move_by_hand(aws.client("sqs"), stack.dlq_url, stack.work_queue_url, limit)
        return _wait_for_task(aws.client("sqs"), stack.dlq_arn, task, wait_seconds, sleep)


def _start_move_task(aws: Aws, stack: Stack) -> str | None:
    """The task handle, or None when this endpoint has no StartMessageMoveTask."""
    try:
        resp = aws.single_try_client("sqs").start_message_move_task(
            SourceArn=stack.dlq_arn, DestinationArn=stack.work_queue_arn
        )
    except ClientError as exc:
        if error_code(exc) in UNSUPPORTED_CODES or http_status(exc) in (500, 501):
            return None
        raise
    except BotoCoreError:  # e.g. an emulator that does not speak the JSON protocol for it
        return None
    return str(resp["TaskHandle"])


def _wait_for_task(
    sqs: Any, source_arn: str, handle: str, wait_seconds: float, sleep: Callable[[float], None]
) -> RedriveResult:
    deadline = time.monotonic() + wait_seconds
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10)["Results"]
        task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {})
        status = str(task.get("Status", "UNKNOWN"))
        moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        if status in TASK_DONE or time.monotonic() >= deadline:
            return RedriveResult(
                "move-task", moved=moved, status=status,
                detail=task.get("FailureReason", "") or f"task {handle}",
            )  # fmt: skip
        sleep(TASK_POLL_SECONDS)


def move_by_hand(sqs: Any, source: str, destination: str, limit: int) -> RedriveResult:
    """Receive → send → delete, deleting only what the destination accepted.

    A crash between the send and the delete leaves a copy in both queues: the daemon treats a
    repeated input as already done, so that costs a receive, not a second result."""
    result = RedriveResult("receive-send-delete", status="COMPLETED")
    while result.moved < limit:
        batch = _receive(sqs, source, min(BATCH, limit - result.moved), PEEK_VISIBILITY_SECONDS)
        if not batch:
            break
        sent = sqs.send_message_batch(
            QueueUrl=destination, Entries=[_resend(m, i) for i, m in enumerate(batch)]
        )
        ok = {int(e["Id"]) for e in sent.get("Successful", [])}
        _delete(sqs, source, [batch[i] for i in sorted(ok)])
        result.moved += len(ok)
        if failed := [m for i, m in enumerate(batch) if i not in ok]:
            release(sqs, source, [m["ReceiptHandle"] for m in failed])
            result.failed += len(failed)
            result.status = "FAILED"
            result.detail = "; ".join(
                f"{e.get('Code')}: {e.get('Message')}" for e in sent.get("Failed", [])
            )
            break  # the same messages would fail again: stop and say so
    return result


def _resend(message: dict[str, Any], index: int) -> dict[str, Any]:
    """The same body; the attributes the daemon added about the last failure are dropped."""
    attrs = {
        k: {f: v for f, v in a.items() if f in ("DataType", "StringValue", "BinaryValue")}
        for k, a in message.get("MessageAttributes", {}).items()
        if not k.startswith(ERROR_ATTRIBUTE_PREFIX)
    }
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    if attrs:
        entry["MessageAttributes"] = attrs
    return entry


def _delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    if not messages:
        return
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    resp = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    if resp.get("Failed"):
        raise OperatorError(
            f"{len(resp['Failed'])} message(s) were sent to the work queue but could not be "
            "deleted from the DLQ; they will be processed once and stay in the DLQ: "
            + "; ".join(str(f.get("Message")) for f in resp["Failed"])
        )


def render_redrive(result: RedriveResult) -> str:
    if result.method == "dry-run":
        return f"dry run: {result.moved} message(s) would be sent back to the work queue"
    line = (
        f"moved {result.moved} message(s) back to the work queue ({result.method}, {result.status})"
    )
    if result.failed:
        line += f"; {result.failed} could not be sent"
    if result.detail and result.status != "COMPLETED":
        line += f": {result.detail}"
    return line
