"""Act: start stopped members and launch new ones, trying each market, type and subnet in turn.

Spot workers are launched with RunInstances' market options, not the launch template's: the
template stays on-demand, so the canary (the boot check CloudFormation waits for) cannot be
interrupted mid-deploy, and `spot-then-on-demand` can drop the option for its fallback. Spot
requests are `persistent` with interruption behaviour `stop`: the only kind of Spot instance
that can be stopped (the daemon's idle stop) and started again, like an on-demand member.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from starter.aws import error_code
from starter.logs import emit
from starter.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

# Codes after which another subnet / instance type may succeed where this one did not.
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",  # also what a Spot launch gets when the pool is empty
        "InsufficientHostCapacity",
        "InsufficientFreeAddressesInSubnet",
        "Unsupported",  # the instance type is not offered in this subnet's AZ
        "UnfulfillableCapacity",  # Spot: no spare capacity for this request
    }
)
# Spot-wide refusals: no other type or subnet helps, only the other market.
SPOT_MARKET_CODES = frozenset({"MaxSpotInstanceCountExceeded", "SpotMaxPriceTooLow"})
SPOT_OPTIONS: Any = {
    "MarketType": "spot",
    "SpotOptions": {"SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"},
}


class CapacityError(RuntimeError):
    """No subnet / instance type / market had capacity: raised so the invocation is retried."""


@dataclass
class Tally:
    """What acting did, for the decision line and the metrics (also when it raises)."""

    started: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    launched: dict[str, str] = field(default_factory=dict)  # instance id -> market
    capacity_errors: int = 0
    fallbacks: int = 0  # instances launched on-demand after Spot had none
    refusals: list[str] = field(default_factory=list)  # "market/type/subnet: code"


@dataclass(frozen=True)
class Candidate:
    market: str
    instance_type: str | None
    subnet: str | None

    def __str__(self) -> str:
        return f"{self.market}/{self.instance_type or 'template'}/{self.subnet or 'template'}"


@dataclass
class Actor:
    ec2: Callable[[], EC2Client]
    settings: Settings

    def start(self, ids: Sequence[str], tally: Tally) -> None:
        """Start stopped members. One call; on a state error one call per member."""
        try:
            self.ec2().start_instances(InstanceIds=list(ids))
            tally.started += ids
            return None
        except ClientError as exc:
            if error_code(exc) not in CAPACITY_CODES | {"IncorrectInstanceState"}:
                raise
            if len(ids) == 1:
                return self._start_failed(ids[0], exc, tally)
        # One member in the wrong state fails the whole call: start the others one by one.
        for instance_id in ids:
            self.start([instance_id], tally)
        return None

    def _start_failed(self, instance_id: str, exc: ClientError, tally: Tally) -> None:
        if error_code(exc) == "IncorrectInstanceState":  # e.g. became `stopping` since observed
            emit(logging.WARNING, "not_startable", instance=instance_id, error=str(exc))
            tally.not_started.append(instance_id)
            return
        # A stopped member is bound to its AZ, type and market: nothing else to try for it.
        tally.capacity_errors += 1
        raise CapacityError(f"cannot start {instance_id}: {exc}") from exc

    def candidates(self) -> Iterator[Candidate]:
        s = self.settings
        for market in s.capacity_type.markets:
            for itype in (None, *s.instance_types):
                for subnet in s.subnet_ids or (None,):
                    yield Candidate(market, itype, subnet)

    def launch(self, count: int, request_id: str, tally: Tally) -> None:
        """Launch `count`; on capacity errors the next subnet, type, then market."""
        skip_market = ""
        for cand in self.candidates():
            if cand.market == skip_market:
                continue
            try:
                ids = self._run(count - len(tally.launched), cand, request_id)
            except ClientError as exc:
                code = error_code(exc)
                if code not in CAPACITY_CODES | SPOT_MARKET_CODES:
                    raise
                tally.capacity_errors += 1
                tally.refusals.append(f"{cand}: {code}")
                emit(logging.WARNING, "no_capacity", candidate=str(cand), error=str(exc))
                skip_market = cand.market if code in SPOT_MARKET_CODES else ""
                continue
            tally.launched.update(dict.fromkeys(ids, cand.market))
            if cand.market == "on-demand" and "spot" in self.settings.capacity_type.markets:
                tally.fallbacks += len(ids)
            if len(tally.launched) >= count:
                return
        emit(logging.ERROR, "launch_incomplete", launched=list(tally.launched), wanted=count)
        raise CapacityError(
            f"launched {len(tally.launched)} of {count}: no capacity in any candidate"
        )

    def _run(self, count: int, cand: Candidate, seed: str) -> list[str]:
        s = self.settings
        tags: Any = [{"Key": s.pool_tag[0], "Value": s.pool_tag[1]}]
        kinds = ["instance", "volume"] + (["spot-instances-request"] * (cand.market == "spot"))
        token = hashlib.sha256(f"{seed}|{cand}|{count}".encode()).hexdigest()[:64]
        kwargs: dict[str, Any] = {
            "LaunchTemplate": {
                "LaunchTemplateId": s.launch_template_id,
                "Version": s.launch_template_version,
            },
            "MinCount": 1,
            "MaxCount": count,
            "TagSpecifications": [{"ResourceType": k, "Tags": tags} for k in kinds],
            # Idempotent across botocore's retries and a retried invocation (same request id).
            "ClientToken": token,
        }
        if cand.subnet:
            kwargs["SubnetId"] = cand.subnet
        if cand.instance_type:
            kwargs["InstanceType"] = cand.instance_type
        if cand.market == "spot":
            kwargs["InstanceMarketOptions"] = SPOT_OPTIONS
        reply = self.ec2().run_instances(**kwargs)
        ids = [i.get("InstanceId", "") for i in reply.get("Instances", [])]
        emit(logging.INFO, "launched", instances=ids, candidate=str(cand))
        return ids
