"""settle.py against the emulator's SQS over HTTP: one call per verdict, and what each leaves
on the work queue and the DLQ."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import boto3
import pytest
from s3worker.aws import ClientsContext
from s3worker.contract import DeadLetterNote
from s3worker.errors import BadDataError, TransientError
from s3worker.retry import RetryPolicy
from s3worker.settle import RELEASE_MAX_SECONDS, Settler, release_delay
from s3worker.sqs import Message, Queue
from s3worker.verdict import Decision, Verdict


def test_release_delay_doubles_per_receive_up_to_its_cap() -> None:
    assert [release_delay(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert release_delay(30) == RELEASE_MAX_SECONDS


def queues(name: str, visibility: int = 30) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    redrive = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": 5})
    attrs = {"RedrivePolicy": redrive, "VisibilityTimeout": str(visibility)}
    work = sqs.create_queue(QueueName=f"{name}-work", Attributes=attrs)
    sqs.send_message(QueueUrl=work["QueueUrl"], MessageBody='{"a": 1}')
    return work["QueueUrl"], dlq


def counts(url: str) -> tuple[int, int]:
    """(visible, in flight) on the queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)
    return int(attrs["Attributes"][names[0]]), int(attrs["Attributes"][names[1]])


def settle_one(work: str, act: Callable[[Settler, Message], Awaitable[Any]]) -> Settler:
    """Receive the queue's message and hand it to `act` with a Settler bound to the DLQ."""

    async def main() -> Settler:
        async with ClientsContext(1) as clients:
            queue = Queue(clients.sqs, work, RetryPolicy())
            settler = Settler(queue, "processed")
            info = await queue.info()
            await settler.connect_dlq(None, info.dlq_arn, RetryPolicy())
            (message,) = await queue.receive(1, 1)
            await act(settler, message)
            return settler

    return asyncio.run(main())


def test_ack_deletes(aws: str, name: str) -> None:
    work, dlq = queues(name)
    settler = settle_one(work, lambda s, m: s.settle(m, Decision(Verdict.ACK)))
    assert counts(work) == (0, 0)
    assert counts(dlq) == (0, 0)
    assert settler.counts["processed"] == 1


def test_dead_letter_sends_the_body_with_its_error_then_deletes(aws: str, name: str) -> None:
    work, dlq = queues(name)
    error = BadDataError("line 3: no date")
    decision = Decision(Verdict.DEAD_LETTER, error, "_errors/in.csv.json")
    settler = settle_one(work, lambda s, m: s.settle(m, decision))
    assert counts(work) == (0, 0)
    got = boto3.client("sqs").receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])
    (sent,) = got["Messages"]
    note = DeadLetterNote.parse({k: v["StringValue"] for k, v in sent["MessageAttributes"].items()})
    assert sent["Body"] == '{"a": 1}'
    assert (note.error_class, note.error) == ("BadDataError", "line 3: no date")
    assert note.report == "s3://processed/_errors/in.csv.json"
    assert note.attempts == "1"
    assert settler.counts["dead_lettered"] == 1


# A queue that would show a received message again at once (visibility 0), then one that would
# hide it for 5 minutes: each call must have changed what the queue shows.
@pytest.mark.parametrize(
    ("now", "visibility", "expected"), [(False, 0, (0, 1)), (True, 300, (1, 0))]
)
def test_release_hides_it_for_the_backoff_and_release_now_does_not(
    aws: str, name: str, now: bool, visibility: int, expected: tuple[int, int]
) -> None:
    work, _ = queues(name, visibility)
    decision = Decision(Verdict.RELEASE, TransientError("throttled"))

    async def act(settler: Settler, message: Message) -> None:
        await (settler.release_now([message]) if now else settler.settle(message, decision))

    settle_one(work, act)
    # Released with its backoff (10 s on a first receive): hidden; released now: visible
    assert counts(work) == expected
