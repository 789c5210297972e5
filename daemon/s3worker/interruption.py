"""Spot interruption notices and rebalance recommendations (IMDSv2), and the drain rule.

EC2 publishes both in the instance metadata (404 while there is none):
- `spot/instance-action`: `{"action": "terminate"|"stop"|"hibernate", "time": "...Z"}`, about
  two minutes before the instance is interrupted;
- `events/recommendations/rebalance`: `{"noticeTime": "...Z"}`, an elevated risk of one.
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html
AWS recommends checking every 5 seconds, and so the watcher does.

On a notice the worker stops receiving, and `plan` splits what it holds: messages whose file is
not being processed yet go back at once; a running file keeps its slot only if it can be done
within the notice (its expected time left, from this worker's own finished files, fits the
budget); the rest go back too. Whatever is still running at the budget's end is released.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog

from s3worker.instance import DEFAULT_ENDPOINT, TIMEOUT, TOKEN_TTL_SECONDS
from s3worker.regions import ENDPOINT_VARIABLE

if TYPE_CHECKING:  # progress.py builds on the Running view below
    from s3worker.progress import Progress
    from s3worker.sqs import Message

log = structlog.get_logger(__name__)

INSTANCE_ACTION_PATH = "spot/instance-action"
REBALANCE_PATH = "events/recommendations/rebalance"
POLL_SECONDS = 5.0
# Kept before the interruption time for releasing what is left and exiting: at that time EC2
# shuts the OS down, and a SIGTERM from systemd then cuts the drain short.
RELEASE_MARGIN_SECONDS = 10.0
# A token lives TOKEN_TTL_SECONDS; it is renewed well before.
TOKEN_RENEW_SECONDS = 240.0
INTERRUPTION = "interruption"
REBALANCE = "rebalance"


@dataclass(frozen=True)
class Notice:
    kind: str  # INTERRUPTION or REBALANCE
    action: str  # terminate | stop | hibernate; "rebalance" for a recommendation
    at: str  # the time IMDS gave (the interruption's, or when it recommended)
    seconds_left: float | None  # until the interruption, when it was read; None: no deadline


def parse_instance_action(text: str, now: datetime) -> Notice | None:
    """The body of `spot/instance-action`; None when it is not a notice."""
    doc = _json(text)
    if not doc or "action" not in doc:
        return None
    at = str(doc.get("time", ""))
    when = _time(at)
    left = (when - now).total_seconds() if when else 0.0  # no readable time: act now
    return Notice(INTERRUPTION, str(doc["action"]), at, max(0.0, left))


def parse_rebalance(text: str) -> Notice | None:
    """The body of `events/recommendations/rebalance`; None when it is not a recommendation."""
    doc = _json(text)
    if not doc or "noticeTime" not in doc:
        return None
    return Notice(REBALANCE, REBALANCE, str(doc["noticeTime"]), None)


def _json(text: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- the drain rule (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Running:
    """One held message, as the drain rule sees it."""

    delivery: str
    started: float | None  # when its processor started (clock seconds); None: not yet
    expected_s: float | None  # expected processing time; None: nothing to go by yet
    processed: bool = False  # the processor is done: only uploads are left


def time_left(job: Running, now: float) -> float | None:
    """Expected seconds until `job` is done; None when it has not started. Without a measure
    of this worker's own files, a file is expected to need as long again as it has run."""
    if job.processed:
        return 0.0
    if job.started is None:
        return None
    elapsed = now - job.started
    return max(0.0, job.expected_s - elapsed) if job.expected_s is not None else elapsed


def plan(jobs: Iterable[Running], now: float, budget: float) -> tuple[list[str], list[str]]:
    """(keep, release now): the deliveries that may finish within `budget`, and the others."""
    keep: list[str] = []
    release: list[str] = []
    for job in jobs:
        left = time_left(job, now)
        (keep if left is not None and left <= budget else release).append(job.delivery)
    return keep, release


def budget(notice: Notice, drain_seconds: float, elapsed: float) -> float:
    """Seconds running files may still take, `elapsed` seconds after `notice` was read. A
    rebalance recommendation has no deadline: the drain bound of a stop applies."""
    if notice.seconds_left is None:
        return drain_seconds
    return max(0.0, notice.seconds_left - elapsed - RELEASE_MARGIN_SECONDS)


# -- the watcher ----------------------------------------------------------------------------


class Imds:
    """IMDSv2 reads for the watcher: one token reused until near its end, a 404 is None."""

    def __init__(self, endpoint: str | None = None) -> None:
        base = endpoint or os.environ.get(ENDPOINT_VARIABLE) or DEFAULT_ENDPOINT
        self.base = base.rstrip("/")
        self._token: tuple[str, float] | None = None

    async def get(self, http: aiohttp.ClientSession, path: str) -> str | None:
        headers = {"X-aws-ec2-metadata-token": await self._fresh_token(http)}
        async with http.get(f"{self.base}/latest/meta-data/{path}", headers=headers) as resp:
            if resp.status == 404:
                return None
            if resp.status == 401:  # the token expired early (an IMDS restart): get another
                self._token = None
            resp.raise_for_status()
            return await resp.text()

    async def _fresh_token(self, http: aiohttp.ClientSession) -> str:
        now = time.monotonic()
        if self._token is None or now - self._token[1] > TOKEN_RENEW_SECONDS:
            async with http.put(
                f"{self.base}/latest/api/token",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": TOKEN_TTL_SECONDS},
            ) as resp:
                resp.raise_for_status()
                self._token = (await resp.text(), now)
        return self._token[0]


class InterruptionWatcher:
    """Polls both notices; calls `on_notice` once, with the first one seen."""

    def __init__(
        self,
        on_notice: Callable[[Notice], None],
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_notice = on_notice
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.notice: Notice | None = None
        self.noticed_at = 0.0  # clock time the notice was read
        self._imds = Imds()
        self._unavailable_logged = False

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            while self.notice is None:
                found = await self.check(http)
                if found is not None:
                    self._noticed(found)
                    return
                await asyncio.sleep(self.poll_seconds)

    async def check(self, http: aiohttp.ClientSession) -> Notice | None:
        """One look at both paths; an interruption wins over a recommendation."""
        try:
            action = await self._imds.get(http, INSTANCE_ACTION_PATH)
            notice = parse_instance_action(action, datetime.now(UTC)) if action else None
            if notice is None:
                rebalance = await self._imds.get(http, REBALANCE_PATH)
                notice = parse_rebalance(rebalance) if rebalance else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            if not self._unavailable_logged:  # off EC2 (or IMDS down): said once, not every 5 s
                base = self._imds.base
                log.info("interruption_watch_unavailable", endpoint=base, error=repr(exc))
                self._unavailable_logged = True
            return None
        return notice

    def _noticed(self, notice: Notice) -> None:
        self.notice, self.noticed_at = notice, self.clock()
        log.warning(
            "interruption_notice", kind=notice.kind, action=notice.action, time=notice.at,
            seconds_left=None if notice.seconds_left is None else round(notice.seconds_left, 1),
        )  # fmt: skip
        self.on_notice(notice)

    def budget(self, drain_seconds: float) -> float:
        """What running files may still take now (drain_seconds when there is no notice)."""
        if self.notice is None:
            return drain_seconds
        return budget(self.notice, drain_seconds, self.clock() - self.noticed_at)


async def triage(
    watcher: InterruptionWatcher,
    progress: Progress,
    held: dict[str, tuple[asyncio.Task[None], Message]],
    release_now: Callable[[list[Message]], Awaitable[None]],
    drain_seconds: float,
) -> list[asyncio.Task[None]]:
    """The worker's shutdown, after a notice: end and hand back at once (visibility 0) the jobs
    that `plan` says cannot finish; the tasks left to drain (all of them without a notice)."""
    if watcher.notice is None:
        return [task for task, _ in held.values()]
    bound = watcher.budget(drain_seconds)
    keep, release = plan(progress.running(list(held)), progress.clock(), bound)
    ended = [held[d] for d in release if d in held]
    for task, _ in ended:
        task.cancel()  # a running processor's process is ended with it (pool.py)
    await asyncio.gather(*(task for task, _ in ended), return_exceptions=True)
    if ended:
        log.warning("releasing_at_notice", messages=len(ended), kept=len(keep), bound_s=bound)
        await release_now([m for _, m in ended])
    return [held[d][0] for d in keep if d in held]
