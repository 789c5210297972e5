"""Observe: the queue's backlog and the pool's members, with the warm container's short cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from starter.decide import MEMBER_STATES, Backlog, Pool

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import InstanceTypeDef
    from mypy_boto3_sqs import SQSClient

# EC2's state-reason code of an instance an interruption stopped: only EC2 can start it again.
SPOT_INTERRUPTED = "Server.SpotInstanceShutdown"


@dataclass(frozen=True)
class Observation:
    at: float
    backlog: Backlog
    pool: Pool

    def with_events(self, objects: int) -> Observation:
        backlog = replace(self.backlog, from_events=self.backlog.from_events + objects)
        return replace(self, backlog=backlog)

    def after(self, started: Sequence[str], launched: Sequence[str]) -> Observation:
        """What the pool looks like once `started` and `launched` are on their way."""
        pool = replace(
            self.pool,
            pending=(*self.pool.pending, *started, *launched),
            stopped=tuple(i for i in self.pool.stopped if i not in started),
        )
        return replace(self, pool=pool)


def queue_backlog(sqs: SQSClient, queue_url: str) -> Backlog:
    names: Any = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
    got = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return Backlog(
        int(got.get("ApproximateNumberOfMessages", 0)),
        int(got.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def describe_members(
    ec2: EC2Client, tag: tuple[str, str], states: Sequence[str]
) -> list[InstanceTypeDef]:
    """Every instance carrying the pool tag in one of `states` (found by tag, never by name)."""
    filters: Any = [
        {"Name": f"tag:{tag[0]}", "Values": [tag[1]]},
        {"Name": "instance-state-name", "Values": list(states)},
    ]
    found: list[InstanceTypeDef] = []
    kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": 1000}
    while True:
        page = ec2.describe_instances(**kwargs)
        for reservation in page.get("Reservations", []):
            found += reservation.get("Instances", [])
        if not page.get("NextToken"):
            return found
        kwargs["NextToken"] = page["NextToken"]


def members_by_state(instances: Sequence[InstanceTypeDef]) -> dict[str, list[str]]:
    by_state: dict[str, list[str]] = {}
    for inst in instances:
        state = inst.get("State", {}).get("Name", "")
        by_state.setdefault(state, []).append(inst.get("InstanceId", ""))
    return by_state


def pool_of(instances: Sequence[InstanceTypeDef]) -> Pool:
    """Members by state; a stopped Spot member an interruption stopped is `held`, not stopped."""
    held = {
        inst.get("InstanceId", "")
        for inst in instances
        if inst.get("State", {}).get("Name") == "stopped"
        and inst.get("StateReason", {}).get("Code") == SPOT_INTERRUPTED
    }
    by_state = members_by_state(instances)
    states = {
        s: tuple(sorted(i for i in by_state.get(s, []) if i not in held)) for s in MEMBER_STATES
    }
    return Pool(**states, held=tuple(sorted(held)))


@dataclass
class Observer:
    """Reads the queue and the pool; keeps one observation for `cache_seconds`."""

    sqs: Callable[[], SQSClient]
    ec2: Callable[[], EC2Client]
    queue_url: str
    pool_tag: tuple[str, str]
    cache_seconds: int
    clock: Callable[[], float]
    cached: Observation | None = None

    def backlog(self) -> Backlog:
        return queue_backlog(self.sqs(), self.queue_url)

    def fresh(self, backlog: Backlog) -> Observation:
        instances = describe_members(self.ec2(), self.pool_tag, MEMBER_STATES)
        return Observation(self.clock(), backlog, pool_of(instances))

    def reusable(self) -> Observation | None:
        """The cached observation while it is young enough, else None."""
        obs = self.cached
        if obs is None or self.clock() - obs.at >= self.cache_seconds:
            return None
        return obs

    def remember(self, obs: Observation | None) -> None:
        self.cached = obs

    def forget(self) -> None:
        self.cached = None
