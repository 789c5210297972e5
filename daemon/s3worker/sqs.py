"""The work queue: receive, delete and release in batches, heartbeat in-flight messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from s3worker.contract import ATTR_BODY_TRUNCATED
from s3worker.retry import RetryPolicy

log = structlog.get_logger(__name__)

# SQS quotas: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
MAX_BATCH = 10  # messages per ReceiveMessage and entries per *Batch call
MAX_VISIBILITY_SECONDS = 12 * 3600
MAX_ATTRIBUTE_CHARS = 256  # what we keep of an error message in a message attribute
# A message's size counts its body and every attribute's name, type and value. The quota was
# raised from 256 KiB to 1 MiB in 2025; each queue has its own MaximumMessageSize below it.
MAX_MESSAGE_BYTES = 1024 * 1024
STRING_TYPE = "String"
MIN_BODY_BYTES = 128  # a cut body keeps at least this much, attributes are cut shorter first
# Characters SQS accepts in a body or a string attribute (the XML character ranges).
SQS_INVALID = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass
class Message:
    id: str
    receipt_handle: str
    body: str
    receive_count: int = 1

    @property
    def delivery(self) -> str:
        """One delivery of the message. SQS may hand out the same MessageId again while a
        copy is in flight; each copy has its own receipt handle, slot and heartbeat."""
        return self.receipt_handle

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Message:
        count = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        return cls(raw["MessageId"], raw["ReceiptHandle"], raw.get("Body", ""), count)


@dataclass
class QueueInfo:
    visibility_timeout: int
    dlq_arn: str | None
    max_receive_count: int | None


class Queue:
    """One SQS queue, every call through the shared retry policy."""

    def __init__(self, client: Any, url: str, retry: RetryPolicy) -> None:
        self.client = client
        self.url = url
        self.retry = retry

    async def info(self) -> QueueInfo:
        attrs = await self.attributes("VisibilityTimeout", "RedrivePolicy")
        redrive = attrs.get("RedrivePolicy")
        policy: dict[str, Any] = _json(redrive) if redrive else {}
        return QueueInfo(
            visibility_timeout=int(attrs.get("VisibilityTimeout", 30)),
            dlq_arn=policy.get("deadLetterTargetArn"),
            max_receive_count=int(policy["maxReceiveCount"]) if policy else None,
        )

    async def attributes(self, *names: str) -> dict[str, str]:
        resp = await self.retry.call(
            self.client.get_queue_attributes, QueueUrl=self.url, AttributeNames=list(names)
        )
        return dict(resp.get("Attributes", {}))

    async def backlog(self) -> int:
        """Visible plus delayed messages (approximate: SQS counters lag)."""
        attrs = await self.attributes(
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"
        )
        return sum(int(v) for v in attrs.values())

    async def receive(self, max_messages: int, wait_seconds: int) -> list[Message]:
        resp = await self.retry.call(
            self.client.receive_message,
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(MAX_BATCH, max_messages)),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [Message.from_api(m) for m in resp.get("Messages", [])]

    async def delete(self, messages: Iterable[Message]) -> None:
        for chunk in _chunks(list(messages)):
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)
            ]
            resp = await self.retry.call(
                self.client.delete_message_batch, QueueUrl=self.url, Entries=entries
            )
            _log_failures("delete_failed", chunk, resp)

    async def change_visibility(self, messages: Iterable[Message], seconds: int) -> None:
        seconds = max(0, min(MAX_VISIBILITY_SECONDS, seconds))
        for chunk in _chunks(list(messages)):
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                for i, m in enumerate(chunk)
            ]
            resp = await self.retry.call(
                self.client.change_message_visibility_batch, QueueUrl=self.url, Entries=entries
            )
            _log_failures("visibility_failed", chunk, resp)

    async def max_message_bytes(self) -> int:
        attrs = await self.attributes("MaximumMessageSize")
        return min(MAX_MESSAGE_BYTES, int(attrs.get("MaximumMessageSize", MAX_MESSAGE_BYTES)))

    async def send(self, body: str, attributes: dict[str, str], max_bytes: int) -> None:
        body, values = fit_message(body, attributes, max_bytes)
        await self.retry.call(
            self.client.send_message,
            QueueUrl=self.url,
            MessageBody=body,
            MessageAttributes={
                k: {"DataType": STRING_TYPE, "StringValue": v} for k, v in values.items()
            },
        )


def message_bytes(body: str, attributes: dict[str, str]) -> int:
    """A message's size as SQS counts it: body, and each attribute's name, type and value."""
    size = len(body.encode())
    for name, value in attributes.items():
        size += len(name.encode()) + len(STRING_TYPE) + len(value.encode())
    return size


def fit_message(
    body: str, attributes: dict[str, str], max_bytes: int
) -> tuple[str, dict[str, str]]:
    """Attributes cleaned (characters SQS refuses replaced, each cut to MAX_ATTRIBUTE_CHARS),
    then the body cut so that the whole message fits `max_bytes`. A cut body is marked
    (`s3worker-body-truncated`: its full length); the error report keeps it whole."""
    values = {
        k: SQS_INVALID.sub("?", v)[:MAX_ATTRIBUTE_CHARS] or "-" for k, v in attributes.items()
    }
    body = SQS_INVALID.sub("?", body) or "-"
    if message_bytes(body, values) <= max_bytes:
        return body, values
    values[ATTR_BODY_TRUNCATED] = f"{len(body.encode())} bytes"
    while (room := max_bytes - message_bytes("", values)) < MIN_BODY_BYTES:
        longest = max(values, key=lambda k: len(values[k].encode()))
        if len(values[longest]) <= 1:
            break
        values[longest] = values[longest][: len(values[longest]) // 2]
    cut = body.encode()[: max(room, 1)].decode("utf-8", "ignore") or "-"
    return cut, values


async def queue_url_from_arn(client: Any, arn: str, retry: RetryPolicy) -> str:
    """arn:aws:sqs:REGION:ACCOUNT:NAME -> the queue URL."""
    *_, account, name = arn.split(":")
    resp = await retry.call(client.get_queue_url, QueueName=name, QueueOwnerAWSAccountId=account)
    return str(resp["QueueUrl"])


@dataclass
class Heartbeat:
    """Extends the visibility of every tracked message before it lapses."""

    queue: Queue
    visibility_timeout: int
    _messages: dict[str, Message] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    @property
    def interval(self) -> float:
        # Three beats per timeout: one lost or slow call still leaves time for the next.
        return max(0.2, self.visibility_timeout / 3)

    def track(self, message: Message) -> None:
        self._messages[message.delivery] = message

    def untrack(self, message: Message) -> None:
        self._messages.pop(message.delivery, None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self._messages:
                continue
            try:
                # Bounded by the beat interval: a hung call must not hold back the next beat
                # until the messages' visibility has lapsed.
                await asyncio.wait_for(
                    self.queue.change_visibility(
                        list(self._messages.values()), self.visibility_timeout
                    ),
                    self.interval,
                )
            except Exception as exc:  # the next beat tries again; the loop must not die
                log.warning("heartbeat_failed", error=repr(exc), messages=len(self._messages))


# How long a delete waits for company. Jobs finish one by one (a few a second per process),
# rarely together: 20 ms gathered ~1.3 deletes a call, half a second gathers a few files'
# worth. Each call costs SQS a request and the worker ~2.5 ms of CPU (aiobotocore). The wait
# is short beside any visibility timeout (the message is no longer heart-beaten), and the
# message stays held meanwhile (intake.py), so a kill in it costs what a kill after the
# manifest always did: a redelivery that finds the manifest done.
DELETE_LINGER_SECONDS = 0.5


class DeleteBatcher:
    """Gathers the deletes of jobs that finish close together into DeleteMessageBatch calls.

    A delete waits at most `linger` seconds for company; ten waiting go at once.
    """

    def __init__(self, queue: Queue, linger: float = DELETE_LINGER_SECONDS) -> None:
        self.queue = queue
        self.linger = linger
        self._waiting: list[tuple[Message, asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def delete(self, message: Message) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((message, future))
        if len(self._waiting) >= MAX_BATCH:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._flush)
        await future

    def _flush(self) -> None:
        if self._timer:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        if self._waiting:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._flush)
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)  # keep a reference until it is done
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Message, asyncio.Future[None]]]) -> None:
        try:
            await self.queue.delete([m for m, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)


def _chunks(items: list[Message]) -> Iterable[list[Message]]:
    for i in range(0, len(items), MAX_BATCH):
        yield items[i : i + MAX_BATCH]


def _log_failures(event: str, chunk: list[Message], resp: dict[str, Any]) -> None:
    for failed in resp.get("Failed", []):
        message = chunk[int(failed["Id"])]
        log.warning(
            event, message_id=message.id, code=failed.get("Code"), reason=failed.get("Message")
        )


def _json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
