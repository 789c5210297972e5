"""What becomes of a message once its verdict is known, in one call: `Settler.settle`.

- ack: deleted, batched with the deletes of jobs that finish together;
- release: made visible again after a delay that doubles with each receive (a file that failed
  transiently is not retried at once, when the same cause is likely still there);
- dead-letter: a copy to the DLQ carrying the error (its attributes name the report), then
  the delete. Without a DLQ the report is the only trace and the message is deleted.

Releasing at once (visibility 0) is what a stop does with messages it will not finish.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import structlog

from s3worker.contract import DeadLetterNote
from s3worker.retry import RetryPolicy
from s3worker.sqs import DeleteBatcher, Message, Queue, queue_url_from_arn
from s3worker.verdict import Decision, Verdict

log = structlog.get_logger(__name__)

# A released message that failed transiently comes back after this (grows with attempts).
RELEASE_BASE_SECONDS = 10
RELEASE_MAX_SECONDS = 900


def release_delay(receive_count: int) -> int:
    """Seconds before a released message is delivered again: 10, 20, 40 ... at most 900."""
    return int(min(RELEASE_MAX_SECONDS, RELEASE_BASE_SECONDS * 2 ** max(0, receive_count - 1)))


class Settler:
    """Acks, releases and dead-letters messages of one work queue; counts what it did."""

    def __init__(
        self, queue: Queue, output_bucket: str, released: Callable[[int], None] = lambda n: None
    ) -> None:
        self.queue = queue
        self.released = released  # told how many messages each release handed back (metrics)
        self.output_bucket = output_bucket
        self.deletes = DeleteBatcher(queue)
        self.dlq: Queue | None = None
        self.dlq_max_bytes = 0
        self.counts: Counter[str] = Counter(processed=0, dead_lettered=0, released=0)

    async def connect_dlq(self, url: str | None, arn: str | None, retry: RetryPolicy) -> None:
        """The DLQ: `url` when configured, else the work queue's redrive target."""
        if not url and arn:
            url = await queue_url_from_arn(self.queue.client, arn, retry)
        if url:
            # Its message size limit is read on the first dead-letter (_dead_letter): one call
            # fewer before READY=1, and none at all while every file succeeds.
            self.dlq = Queue(self.queue.client, url, retry)
        else:
            log.warning("no_dlq", detail="permanent failures are reported and then deleted")

    async def settle(self, message: Message, decision: Decision) -> None:
        if decision.verdict is Verdict.ACK:
            await self.deletes.delete(message)
            self.counts["processed"] += 1
        elif decision.verdict is Verdict.DEAD_LETTER:
            await self._dead_letter(message, decision)
            self.counts["dead_lettered"] += 1
        else:
            await self.queue.change_visibility([message], release_delay(message.receive_count))
            self.counts["released"] += 1
            self.released(1)

    async def release_now(self, messages: Iterable[Message]) -> None:
        """Visible again at once: messages this worker received but will not finish."""
        handed_back = list(messages)
        await self.queue.change_visibility(handed_back, 0)
        self.released(len(handed_back))

    async def _dead_letter(self, message: Message, decision: Decision) -> None:
        if self.dlq:
            error = decision.error
            note = DeadLetterNote(
                error_class=type(error).__name__ if error else "",
                error=str(error) if error else "",
                report=f"s3://{self.output_bucket}/{decision.report_key}",
                source_message_id=message.id,
                attempts=str(message.receive_count),
            )
            if not self.dlq_max_bytes:
                self.dlq_max_bytes = await self.dlq.max_message_bytes()
            await self.dlq.send(message.body, note.render(), self.dlq_max_bytes)
        await self.queue.delete([message])
