"""Start (and scale) the s3worker EC2 pool when files arrive; also the pool's stack-delete cleanup.

Deployed as the Lambda's code as it is: Python 3.11+, boto3 from the runtime, stdlib otherwise.

Environment (names fixed by the CloudFormation template):
  S3WORKER_QUEUE_URL                 required  the work queue; its counters are the backlog
  S3WORKER_LAUNCH_TEMPLATE_ID        required  every new worker is launched from it
  S3WORKER_LAUNCH_TEMPLATE_VERSION   `$Latest`
  S3WORKER_POOL_TAG                  required  `key=value`; pool members are found by this tag only
  S3WORKER_MAX_WORKERS               1         cap on the pool (members not terminated)
  S3WORKER_FILES_PER_WORKER          500       backlog one worker is expected to take
  S3WORKER_SUBNET_IDS                empty     comma list tried in order on capacity errors
                                               (empty: the launch template's subnet)
  S3WORKER_INSTANCE_TYPES            empty     comma list of fallback types on capacity errors,
                                               tried after the launch template's type
  S3WORKER_DECISION_CACHE_SECONDS    5         how long an observation is reused by a warm container
  LOG_LEVEL                          INFO

Events: EventBridge "Object Created" (aws.s3), the reconciler schedule (aws.events "Scheduled
Event"), S3 notifications (`Records[]`), and CloudFormation custom-resource requests
(`Custom::WorkerPoolCleanup`: Delete terminates the pool). Anything else is logged and ignored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import random
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("s3worker.start_worker")
T = TypeVar("T")

ACTIVE_STATES = ("pending", "running")
MEMBER_STATES = ("pending", "running", "stopping", "stopped")
ALIVE_STATES = (*MEMBER_STATES, "shutting-down")
# Codes after which another subnet / instance type may succeed where this one did not.
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientFreeAddressesInSubnet",
        "Unsupported",  # the instance type is not offered in this subnet's AZ
    }
)
THROTTLE_CODES = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})
RETRY_ATTEMPTS, RETRY_BASE_S, RETRY_CAP_S = 5, 0.5, 8.0
TERMINATE_BATCH = 500
CLEANUP_POLL_S, CLEANUP_MARGIN_S = 5.0, 10.0


class CapacityError(RuntimeError):
    """No subnet / instance type had capacity: raised so the invocation is retried."""


class LambdaContext(Protocol):
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


# --- settings -------------------------------------------------------------------------------


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is required")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in env.get(name, "").split(",") if p.strip())


def parse_pool_tag(env: Mapping[str, str]) -> tuple[str, str]:
    key, sep, value = _required(env, "S3WORKER_POOL_TAG").partition("=")
    if not (sep and key.strip() and value.strip()):
        raise ValueError("S3WORKER_POOL_TAG must be key=value")
    return key.strip(), value.strip()


@dataclass(frozen=True)
class Settings:
    queue_url: str
    launch_template_id: str
    pool_tag: tuple[str, str]
    launch_template_version: str = "$Latest"
    max_workers: int = 1
    files_per_worker: int = 500
    subnet_ids: tuple[str, ...] = ()
    instance_types: tuple[str, ...] = ()
    cache_seconds: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            queue_url=_required(env, "S3WORKER_QUEUE_URL"),
            launch_template_id=_required(env, "S3WORKER_LAUNCH_TEMPLATE_ID"),
            pool_tag=parse_pool_tag(env),
            launch_template_version=env.get("S3WORKER_LAUNCH_TEMPLATE_VERSION", "").strip()
            or "$Latest",
            max_workers=_int(env, "S3WORKER_MAX_WORKERS", 1),
            files_per_worker=_int(env, "S3WORKER_FILES_PER_WORKER", 500),
            subnet_ids=_csv(env, "S3WORKER_SUBNET_IDS"),
            instance_types=_csv(env, "S3WORKER_INSTANCE_TYPES"),
            cache_seconds=_int(env, "S3WORKER_DECISION_CACHE_SECONDS", 5, minimum=0),
        )


# --- the decision (pure) --------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    """Queue counters plus the objects named by events since they were read (counters lag)."""

    visible: int = 0
    delayed: int = 0  # will become visible without any new event: needs a worker too
    from_events: int = 0

    @property
    def total(self) -> int:
        return self.visible + self.delayed + self.from_events


@dataclass(frozen=True)
class Pool:
    """Instance ids of the pool's members by state (terminated ones are not members)."""

    pending: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    stopping: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()

    @property
    def active(self) -> int:
        return len(self.pending) + len(self.running)

    @property
    def size(self) -> int:
        return self.active + len(self.stopping) + len(self.stopped)


@dataclass(frozen=True)
class Decision:
    wanted: int  # workers that should be pending/running
    start: tuple[str, ...]  # stopped members to start
    launch: int  # new instances to launch
    deferred: int  # need that only a `stopping` member can fill later (the reconciler's job)


def decide(backlog: Backlog, pool: Pool, max_workers: int, files_per_worker: int) -> Decision:
    """How many workers to start now; stopped members first, the pool never above the cap."""
    wanted = min(max_workers, math.ceil(backlog.total / files_per_worker))
    need = max(0, wanted - pool.active)
    startable = max(0, max_workers - pool.active - len(pool.stopping))
    start = pool.stopped[: min(need, startable)]
    launch = max(0, min(need - len(start), max_workers - pool.size))
    return Decision(wanted, start, launch, need - len(start) - launch)


# --- events ---------------------------------------------------------------------------------


def classify(event: Any) -> tuple[str, int]:
    """(kind, objects created): kind is object, schedule, custom_resource or ignored."""
    if not isinstance(event, dict):
        return "ignored", 0
    if "RequestType" in event and "ResponseURL" in event:
        return "custom_resource", 0
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return "schedule", 0
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        return "object", 1
    records = event.get("Records")
    if isinstance(records, list):
        created = sum(
            1
            for r in records
            if isinstance(r, dict)
            and r.get("eventSource") == "aws:s3"
            and str(r.get("eventName", "")).startswith("ObjectCreated:")
        )
        return ("object", created) if created else ("ignored", 0)
    return "ignored", 0


# --- logging --------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line; structured fields come from `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    if not any(isinstance(h.formatter, JsonFormatter) for h in log.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.propagate = False  # the runtime's root handler would print every line twice
    log.setLevel(level.upper())


def _emit(level: int, event: str, **fields: Any) -> None:
    log.log(level, event, extra={"fields": fields})


# --- the AWS side ---------------------------------------------------------------------------


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass
class Observation:
    at: float
    backlog: Backlog
    pool: Pool


@dataclass
class Runtime:
    """Everything one warm container keeps: settings, clients (built lazily), the cache."""

    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    ec2_client: EC2Client | None = None
    sqs_client: SQSClient | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    cached: Observation | None = None

    @functools.cached_property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def ec2(self) -> EC2Client:
        if self.ec2_client is None:  # built on first use, never at import
            self.ec2_client = boto3.client("ec2", config=Config(retries={"mode": "standard"}))
        return self.ec2_client

    @property
    def sqs(self) -> SQSClient:
        if self.sqs_client is None:
            self.sqs_client = boto3.client("sqs", config=Config(retries={"mode": "standard"}))
        return self.sqs_client

    def handle(self, event: Any, context: LambdaContext) -> dict[str, Any]:
        kind, objects = classify(event)
        if kind == "custom_resource":
            return self.custom_resource(event, context)
        if kind == "ignored":
            _emit(
                logging.INFO, "ignored", keys=sorted(event)[:10] if isinstance(event, dict) else []
            )
            return {"action": "ignored", "reason": "not an event this function handles"}
        return self.reconcile(objects, context.aws_request_id, fresh=kind == "schedule")

    def call(self, op: Callable[..., T], **kwargs: Any) -> T:
        """One AWS call; throttling is retried with exponential backoff and full jitter."""
        for attempt in range(RETRY_ATTEMPTS):
            try:
                return op(**kwargs)
            except ClientError as exc:
                if _code(exc) not in THROTTLE_CODES or attempt == RETRY_ATTEMPTS - 1:
                    raise
                delay = random.uniform(0, min(RETRY_CAP_S, RETRY_BASE_S * 2**attempt))
                _emit(
                    logging.WARNING, "throttled", op=op.__name__, attempt=attempt + 1, delay=delay
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- observe --

    def queue_backlog(self) -> Backlog:
        names: Any = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
        got = self.call(
            self.sqs.get_queue_attributes, QueueUrl=self.settings.queue_url, AttributeNames=names
        )["Attributes"]
        return Backlog(
            int(got.get("ApproximateNumberOfMessages", 0)),
            int(got.get("ApproximateNumberOfMessagesDelayed", 0)),
        )

    def members(self, tag: tuple[str, str], states: Sequence[str]) -> dict[str, list[str]]:
        """Instance ids by state of every instance carrying the pool tag (never by name)."""
        filters: Any = [
            {"Name": f"tag:{tag[0]}", "Values": [tag[1]]},
            {"Name": "instance-state-name", "Values": list(states)},
        ]
        by_state: dict[str, list[str]] = {}
        kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": 1000}
        while True:
            page = self.call(self.ec2.describe_instances, **kwargs)
            for reservation in page.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    state = inst.get("State", {}).get("Name", "")
                    by_state.setdefault(state, []).append(inst.get("InstanceId", ""))
            if not page.get("NextToken"):
                return by_state
            kwargs["NextToken"] = page["NextToken"]

    def observe(self, backlog: Backlog) -> Observation:
        found = self.members(self.settings.pool_tag, MEMBER_STATES)
        pool = Pool(*(tuple(sorted(found.get(s, []))) for s in MEMBER_STATES))
        return Observation(self.clock(), backlog, pool)

    # -- reconcile --

    def reconcile(self, objects: int, request_id: str, *, fresh: bool) -> dict[str, Any]:
        s, obs = self.settings, self.cached
        if fresh or obs is None or self.clock() - obs.at >= s.cache_seconds:
            queued = self.queue_backlog()
            if objects == 0 and queued.total == 0:
                _emit(logging.INFO, "idle", visible=0, delayed=0)
                return {"action": "idle", "backlog": 0}
            obs = self.observe(queued)
        obs.backlog = replace(obs.backlog, from_events=obs.backlog.from_events + objects)
        self.cached = obs
        decision = decide(obs.backlog, obs.pool, s.max_workers, s.files_per_worker)
        started, not_started = self.start(decision.start) if decision.start else ([], [])
        launched = self.launch(decision.launch, request_id) if decision.launch else []
        obs.pool = replace(
            obs.pool,
            pending=(*obs.pool.pending, *started, *launched),
            stopped=tuple(i for i in obs.pool.stopped if i not in started),
        )
        result = {
            "action": "scaled" if started or launched else "none",
            "backlog": obs.backlog.total,
            "wanted": decision.wanted,
            "active_before": obs.pool.active - len(started) - len(launched),
            "started": started,
            "launched": launched,
            "deferred": decision.deferred + len(not_started),
            "stopping": list(obs.pool.stopping),
        }
        deferred = result["deferred"]
        level = logging.WARNING if deferred else logging.INFO
        _emit(level, "decision", **result, note="reconciler will start" if deferred else "")
        if not_started:
            self.cached = None  # the observation was wrong: the next event looks again
        return result

    def start(self, ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """Start stopped members: (started, not startable now). One call, per id on error."""
        try:
            self.call(self.ec2.start_instances, InstanceIds=list(ids))
            return list(ids), []
        except ClientError as exc:
            if _code(exc) not in CAPACITY_CODES | {"IncorrectInstanceState"}:
                raise
            if len(ids) == 1:
                return self._start_failed(ids[0], exc)
        # One member in the wrong state fails the whole call: start the others one by one.
        started: list[str] = []
        left: list[str] = []
        for instance_id in ids:
            ok, not_ok = self.start([instance_id])
            started += ok
            left += not_ok
        return started, left

    def _start_failed(self, instance_id: str, exc: ClientError) -> tuple[list[str], list[str]]:
        if _code(exc) == "IncorrectInstanceState":  # e.g. became `stopping` since observed
            _emit(logging.WARNING, "not_startable", instance=instance_id, error=str(exc))
            return [], [instance_id]
        self.cached = None  # a stopped member is bound to its AZ and type: nothing else to try
        raise CapacityError(f"cannot start {instance_id}: {exc}") from exc

    def launch(self, count: int, request_id: str) -> list[str]:
        """Launch from the template; on capacity errors try the next subnet, then type."""
        launched: list[str] = []
        for itype in (None, *self.settings.instance_types):
            for subnet in self.settings.subnet_ids or (None,):
                try:
                    launched += self._run(count - len(launched), subnet, itype, request_id)
                except ClientError as exc:
                    if _code(exc) not in CAPACITY_CODES:
                        raise
                    _emit(logging.WARNING, "no_capacity", subnet=subnet, type=itype, error=str(exc))
                if len(launched) == count:
                    return launched
        self.cached = None
        _emit(logging.ERROR, "launch_incomplete", launched=launched, wanted=count)
        raise CapacityError(f"launched {len(launched)} of {count}: no capacity in any candidate")

    def _run(self, count: int, subnet: str | None, itype: str | None, seed: str) -> list[str]:
        s = self.settings
        tags: Any = [{"Key": s.pool_tag[0], "Value": s.pool_tag[1]}]
        kwargs: dict[str, Any] = {
            "LaunchTemplate": {
                "LaunchTemplateId": s.launch_template_id,
                "Version": s.launch_template_version,
            },
            "MinCount": 1,
            "MaxCount": count,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
            # Idempotent across throttling retries and a retried invocation (same request id).
            "ClientToken": hashlib.sha256(f"{seed}|{subnet}|{itype}|{count}".encode()).hexdigest()[
                :64
            ],
        }
        if subnet:
            kwargs["SubnetId"] = subnet
        if itype:
            kwargs["InstanceType"] = itype
        reply = self.call(self.ec2.run_instances, **kwargs)
        ids = [i.get("InstanceId", "") for i in reply.get("Instances", [])]
        _emit(logging.INFO, "launched", instances=ids, subnet=subnet, type=itype)
        return ids

    # -- CloudFormation custom resource --

    def custom_resource(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        deadline = self.clock() + context.get_remaining_time_in_millis() / 1000 - CLEANUP_MARGIN_S
        status, reason, data = "SUCCESS", "", dict[str, Any]()
        try:
            if event["RequestType"] == "Delete":
                data = self.cleanup(deadline)
            else:
                Settings.from_env(self.env)  # a misconfigured stack fails at deploy time
        except Exception as exc:  # CloudFormation must always get an answer
            status, reason = "FAILED", f"{type(exc).__name__}: {exc}"[:1000]
            log.exception(
                "custom_resource_failed", extra={"fields": {"type": event["RequestType"]}}
            )
        body = {
            "Status": status,
            "Reason": reason or f"see CloudWatch log stream of request {context.aws_request_id}",
            "PhysicalResourceId": event.get("PhysicalResourceId") or event["RequestId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
        send_response(event["ResponseURL"], body, self.sleep)
        _emit(logging.INFO, "custom_resource", type=event["RequestType"], status=status, **data)
        return {"action": "custom_resource", "status": status, "reason": reason}

    def cleanup(self, deadline: float) -> dict[str, Any]:
        """Terminate every pool member and wait until all are terminated (or time runs out)."""
        try:
            tag = parse_pool_tag(self.env)
        except ValueError:  # no valid tag: nothing can have been launched with it
            return {"Terminated": 0}
        seen: set[str] = set()
        while True:
            alive = self.members(tag, ALIVE_STATES)
            if not alive:
                return {"Terminated": len(seen)}
            todo = [i for state, ids in alive.items() if state != "shutting-down" for i in ids]
            seen.update(i for ids in alive.values() for i in ids)
            for n in range(0, len(todo), TERMINATE_BATCH):
                self.call(self.ec2.terminate_instances, InstanceIds=todo[n : n + TERMINATE_BATCH])
            if self.clock() + CLEANUP_POLL_S > deadline:
                left = sorted(i for ids in alive.values() for i in ids)
                raise TimeoutError(f"{len(left)} pool instances still terminating: {left[:20]}")
            self.sleep(CLEANUP_POLL_S)


def send_response(url: str, body: dict[str, Any], sleep: Callable[[float], None]) -> None:
    """PUT the answer to CloudFormation's pre-signed URL (a few attempts; then raise)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"ResponseURL is not http(s): {url[:40]!r}")
    data = json.dumps(body).encode()
    # Content-Type must be empty: it is part of what the pre-signed URL's signature covers.
    headers = {"Content-Type": "", "Content-Length": str(len(data))}
    for attempt in range(3):
        try:
            put = urllib.request.Request(url, data=data, method="PUT", headers=headers)  # noqa: S310
            with urllib.request.urlopen(put, timeout=10):  # noqa: S310 (scheme checked above)
                return
        except OSError:
            if attempt == 2:
                raise
            sleep(2.0**attempt)


@functools.cache
def _default_runtime() -> Runtime:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    return Runtime()


def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """The Lambda entry point."""
    return _default_runtime().handle(event, context)
