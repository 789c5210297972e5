"""sqs.py: messages fitted to SQS's limits (pure), and the queue's calls, the heartbeat and the
delete batcher against the emulator's SQS over HTTP (fakes only where a failure is the point)."""

from __future__ import annotations

import asyncio
import json
import selectors
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import boto3
import pytest
from procs import Pipeline
from s3worker.aws import client_config
from s3worker.contract import ATTR_BODY_TRUNCATED
from s3worker.retry import RetryPolicy
from s3worker.sqs import (
    DELETE_LINGER_SECONDS,
    MAX_VISIBILITY_SECONDS,
    DeleteBatcher,
    Heartbeat,
    Message,
    Queue,
    fit_message,
    message_bytes,
    queue_url_from_arn,
)
from tenacity import wait_none

from demo.emulator import REGION

T = TypeVar("T")
NO_WAIT = RetryPolicy(3, wait_none())


# -- messages and their size, pure ------------------------------------------------------------


def test_a_message_from_the_api_keeps_its_receive_count_and_is_delivered_per_handle() -> None:
    raw = {
        "MessageId": "m1", "ReceiptHandle": "h1", "Body": "{}",
        "Attributes": {"ApproximateReceiveCount": "4"},
    }  # fmt: skip
    message = Message.from_api(raw)
    assert (message.id, message.body, message.receive_count) == ("m1", "{}", 4)
    assert message.delivery == "h1"
    bare = Message.from_api({"MessageId": "m2", "ReceiptHandle": "h2"})
    assert (bare.body, bare.receive_count) == ("", 1)


def test_message_bytes_counts_the_body_and_each_attributes_name_type_and_value() -> None:
    assert message_bytes("é", {}) == 2
    assert message_bytes("ab", {"k": "vv"}) == 2 + 1 + len("String") + 2


def test_a_message_that_fits_exactly_is_sent_whole() -> None:
    attrs = {"s3worker-error": "boom"}
    body = "x" * (1024 - message_bytes("", attrs))
    assert fit_message(body, attrs, 1024) == (body, attrs)


def test_a_message_one_byte_over_is_cut_to_fit_with_its_attributes_counted() -> None:
    attrs = {"s3worker-error": "e" * 300, "s3worker-error-class": "BadEventError"}
    body = "é" * 600  # 1,200 bytes: the cut must not split a character either
    cut, values = fit_message(body, attrs, 1024)
    assert message_bytes(cut, values) <= 1024
    assert values["s3worker-body-truncated"] == "1200 bytes"
    assert len(values["s3worker-error"]) <= 256
    assert body.startswith(cut)


def test_characters_sqs_refuses_are_replaced_in_attributes() -> None:
    _, values = fit_message("{}", {"s3worker-error": "key a\ud800b\x00c"}, 1024)
    assert values["s3worker-error"] == "key a?b?c"


def test_empty_values_become_a_dash_as_sqs_refuses_empty_strings() -> None:
    assert fit_message("", {"a": ""}, 1024) == ("-", {"a": "-"})


def test_attributes_are_halved_when_they_would_leave_the_body_too_little_room() -> None:
    attrs = {"s3worker-error": "e" * 250, "s3worker-error-class": "c" * 200}
    cut, values = fit_message("b" * 1000, attrs, 500)
    assert message_bytes(cut, values) <= 500
    assert len(cut.encode()) >= 128  # MIN_BODY_BYTES: the body keeps enough to be read
    assert values[ATTR_BODY_TRUNCATED] == "1000 bytes"
    assert len(values["s3worker-error"]) < 250


# -- the queue, against the emulator ----------------------------------------------------------


def with_queue(url: str, scenario: Callable[[Queue], Awaitable[T]], *hooks: Any) -> T:
    async def main() -> T:
        from aiobotocore.session import get_session

        async with get_session().create_client(
            "sqs", region_name=REGION, config=client_config()
        ) as sqs:
            for event, hook in hooks:
                sqs.meta.events.register(event, hook)
            return await scenario(Queue(sqs, url, NO_WAIT))

    return asyncio.run(main())


def recording(op: str, into: list[Any], pick: Callable[[dict[str, Any]], Any]) -> Any:
    """A hook (event, handler) that appends `pick(params)` of each `op` call to `into`."""
    return f"provide-client-params.sqs.{op}", lambda params, **_: into.append(pick(params))


def counts(url: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)
    return int(attrs["Attributes"][names[0]]), int(attrs["Attributes"][names[1]])


def test_info_reads_the_visibility_timeout_and_the_redrive_policy(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name, visibility_timeout=45, max_receive=3)
    info = with_queue(pipeline.queue_url, lambda q: q.info())
    dlq_arn = boto3.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.dlq_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert (info.visibility_timeout, info.dlq_arn, info.max_receive_count) == (45, dlq_arn, 3)
    # A queue without a redrive policy has no DLQ and no receive limit
    bare = with_queue(pipeline.dlq_url, lambda q: q.info())
    assert (bare.dlq_arn, bare.max_receive_count) == (None, None)
    # And the DLQ's URL comes back from its ARN
    url = with_queue(pipeline.queue_url, lambda q: queue_url_from_arn(q.client, dlq_arn, NO_WAIT))
    assert url.rstrip("/").endswith(f"/{name}-dlq")


def test_receive_asks_for_one_to_ten_and_counts_receives(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    for i in range(12):
        pipeline.send({"n": i})
    asked: list[int] = []
    hook = recording("ReceiveMessage", asked, lambda params: params["MaxNumberOfMessages"])

    async def scenario(queue: Queue) -> tuple[int, list[Message]]:
        backlog = await queue.backlog()
        first = await queue.receive(0, 0) + await queue.receive(50, 0)
        return backlog, first

    backlog, got = with_queue(pipeline.queue_url, scenario, hook)
    assert backlog == 12
    assert asked == [1, 10]  # never 0 (SQS refuses it), never above its maximum of 10
    assert len(got) >= 2
    assert {json.loads(m.body)["n"] for m in got} <= set(range(12))
    assert all(m.receive_count == 1 for m in got)


def test_delete_and_release_go_in_batches_of_ten(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name, visibility_timeout=300)
    for i in range(13):
        pipeline.send({"n": i})
    sizes: list[tuple[str, int]] = []

    def hook(op: str) -> Any:
        return recording(op, sizes, lambda params: (op, len(params["Entries"])))

    async def scenario(queue: Queue) -> None:
        held: list[Message] = []
        while len(held) < 13:
            held += await queue.receive(10, 0)
        await queue.change_visibility(held[:11], 0)  # released: visible again at once
        await queue.delete(held[11:])

    with_queue(
        pipeline.queue_url, scenario,
        hook("ChangeMessageVisibilityBatch"), hook("DeleteMessageBatch"),
    )  # fmt: skip
    assert sizes == [
        ("ChangeMessageVisibilityBatch", 10), ("ChangeMessageVisibilityBatch", 1),
        ("DeleteMessageBatch", 2),
    ]  # fmt: skip
    assert counts(pipeline.queue_url) == (11, 0)


def test_visibility_is_clamped_to_what_sqs_accepts() -> None:
    # SQS itself refuses 12 h once any time has passed since the receive: a client that records
    asked: list[int] = []

    class Client:
        async def change_message_visibility_batch(self, **params: Any) -> dict[str, Any]:
            asked.extend(e["VisibilityTimeout"] for e in params["Entries"])
            return {}

    async def scenario() -> None:
        queue = Queue(Client(), "https://q", NO_WAIT)
        message = Message("m", "h", "{}")
        await queue.change_visibility([message], 13 * 3600)
        await queue.change_visibility([message], -5)

    asyncio.run(scenario())
    assert asked == [MAX_VISIBILITY_SECONDS, 0]


def test_a_failed_entry_is_logged_not_raised(aws: str, name: str) -> None:
    from structlog.testing import capture_logs

    pipeline = Pipeline.create(name)

    async def scenario(queue: Queue) -> None:
        await queue.delete([Message("gone", "not-a-receipt-handle", "{}")])

    with capture_logs() as logs:
        with_queue(pipeline.queue_url, scenario)
    (failed,) = [e for e in logs if e["event"] == "delete_failed"]
    assert failed["message_id"] == "gone"
    assert failed["code"]


def test_send_fits_the_message_to_the_queues_size_limit(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name, dlq_max_bytes=1024)

    async def scenario(queue: Queue) -> int:
        limit = await queue.max_message_bytes()
        await queue.send("x" * 5000, {"s3worker-error": "boom"}, limit)
        return limit

    assert with_queue(pipeline.dlq_url, scenario) == 1024
    (got,) = boto3.client("sqs").receive_message(
        QueueUrl=pipeline.dlq_url, MessageAttributeNames=["All"]
    )["Messages"]
    attrs = {k: v["StringValue"] for k, v in got["MessageAttributes"].items()}
    assert attrs[ATTR_BODY_TRUNCATED] == "5000 bytes"
    assert message_bytes(got["Body"], attrs) <= 1024
    assert got["Body"] == "x" * len(got["Body"])


def test_deletes_of_jobs_finishing_together_share_a_batch(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    for i in range(12):
        pipeline.send({"n": i})
    sizes: list[int] = []
    hook = recording("DeleteMessageBatch", sizes, lambda params: len(params["Entries"]))

    async def scenario(queue: Queue) -> None:
        messages: list[Message] = []
        while len(messages) < 12:
            messages += await queue.receive(10, 0)
        batcher = DeleteBatcher(queue)
        # When 12 jobs finish at the same moment
        await asyncio.gather(*(batcher.delete(m) for m in messages))

    with_queue(pipeline.queue_url, scenario, hook)
    # Then their deletes went out as two batch calls, and the queue is empty
    assert sorted(sizes) == [2, 10]
    assert pipeline.depth() == 0


# -- the heartbeat and a failing batch: a queue that records or fails -------------------------


class RecordingQueue:
    """Stands in for Queue where the point is what the heartbeat or batcher does on failure."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.failures = failures
        self.called = asyncio.Event()

    async def change_visibility(self, messages: Iterable[Message], seconds: int) -> None:
        self.calls.append(([m.delivery for m in messages], seconds))
        self.called.set()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("reset")

    async def delete(self, messages: Iterable[Message]) -> None:
        self.calls.append(([m.delivery for m in messages], 0))
        if self.failures:
            raise ConnectionError("reset")


async def beats(queue: RecordingQueue, heartbeat: Heartbeat, count: int) -> None:
    heartbeat.start()
    try:
        while len(queue.calls) < count:
            queue.called.clear()
            await asyncio.wait_for(queue.called.wait(), 10)
    finally:
        await heartbeat.stop()


def test_the_heartbeat_extends_every_tracked_delivery_and_survives_a_failed_beat() -> None:
    queue = RecordingQueue(failures=1)
    heartbeat = Heartbeat(queue, visibility_timeout=1)  # type: ignore[arg-type]
    assert heartbeat.interval == pytest.approx(1 / 3)
    a, b, gone = Message("m", "h1", "{}"), Message("m", "h2", "{}"), Message("x", "h3", "{}")
    for m in (a, b, gone):
        heartbeat.track(m)
    heartbeat.untrack(gone)
    asyncio.run(beats(queue, heartbeat, 2))
    # The first beat failed (a reset); the loop lived on and the next beat went out
    assert [sorted(handles) for handles, _ in queue.calls[:2]] == [["h1", "h2"]] * 2
    assert all(seconds == 1 for _, seconds in queue.calls)


def test_the_heartbeat_interval_is_a_third_of_the_timeout_with_a_floor() -> None:
    queue = RecordingQueue()
    assert Heartbeat(queue, 300).interval == 100  # type: ignore[arg-type]
    assert Heartbeat(queue, 0).interval == 0.2  # type: ignore[arg-type]


def test_a_failed_batch_delete_fails_every_waiter() -> None:
    async def scenario() -> list[BaseException | None]:
        batcher = DeleteBatcher(RecordingQueue(failures=1), linger=0.0)  # type: ignore[arg-type]
        results = await asyncio.gather(
            *(batcher.delete(Message(str(i), f"h{i}", "{}")) for i in range(3)),
            return_exceptions=True,
        )
        return [r if isinstance(r, BaseException) else None for r in results]

    errors = asyncio.run(scenario())
    assert all(isinstance(e, ConnectionError) for e in errors), errors


def test_ten_waiting_deletes_go_at_once_without_waiting_for_the_linger() -> None:
    queue = RecordingQueue()

    async def scenario() -> None:
        batcher = DeleteBatcher(queue, linger=3600)  # type: ignore[arg-type]
        deletes = (batcher.delete(Message(str(i), f"h{i}", "{}")) for i in range(10))
        await asyncio.wait_for(asyncio.gather(*deletes), 30)

    asyncio.run(scenario())
    assert [len(handles) for handles, _ in queue.calls] == [10]


class VirtualClock(selectors.DefaultSelector):
    """A selector that, where the loop would block for `timeout`, moves the clock on by it:
    timers (the linger) fire in order of their times, and no test waits for them."""

    now = 0.0

    def select(self, timeout: float | None = None) -> Any:
        if timeout:
            self.now += timeout
        return super().select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.clock = VirtualClock()
        super().__init__(self.clock)

    def time(self) -> float:
        return self.clock.now


def test_deletes_arriving_apart_within_the_linger_share_one_call() -> None:
    queue = RecordingQueue()
    loop = VirtualTimeLoop()

    async def scenario() -> float:
        batcher = DeleteBatcher(queue)  # type: ignore[arg-type]
        started: list[asyncio.Future[asyncio.Future[None]]] = []
        # Given three jobs finishing a tenth of a second apart (as jobs do: one by one)
        for i in range(3):
            begun = loop.create_future()
            message = Message(str(i), f"h{i}", "{}")
            loop.call_at(0.1 * i, lambda b=begun, m=message: b.set_result(
                asyncio.ensure_future(batcher.delete(m))))  # fmt: skip
            started.append(begun)
        # When each delete is done
        await asyncio.gather(*[await begun for begun in started])
        return loop.time()

    try:
        finished = loop.run_until_complete(scenario())
    finally:
        loop.close()
    # Then they waited out the linger from the first and went in one DeleteMessageBatch
    assert [sorted(handles) for handles, _ in queue.calls] == [["h0", "h1", "h2"]]
    assert finished == pytest.approx(DELETE_LINGER_SECONDS)
