"""What one warm container keeps (settings, clients, the observation) and the reconcile loop:
observe -> decide -> act, one decision line and one metrics line per invocation."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from starter import aws
from starter.act import Actor, Tally
from starter.cleanup import Cleaner
from starter.decide import Decision, decide
from starter.events import CustomResource, Ignored, ObjectsCreated, Scheduled, parse_event
from starter.logs import emit
from starter.metrics import MetricsSink
from starter.observe import Observation, Observer
from starter.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_sqs import SQSClient


class LambdaContext(Protocol):
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass
class Runtime:
    """Clients are injected or built on first use (never at import)."""

    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    ec2_client: EC2Client | None = None  # injected: used for acting too
    sqs_client: SQSClient | None = None
    ec2_act_client: EC2Client | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    metrics_write: Callable[[str], None] | None = None  # default: the metrics logger

    def __post_init__(self) -> None:
        if self.ec2_act_client is None:
            self.ec2_act_client = self.ec2_client  # an injected client serves both

    @functools.cached_property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def ec2(self) -> EC2Client:
        if self.ec2_client is None:
            self.ec2_client = aws.ec2_client()
        return self.ec2_client

    def ec2_act(self) -> EC2Client:
        if self.ec2_act_client is None:
            self.ec2_act_client = aws.ec2_client(act=True)
        return self.ec2_act_client

    def sqs(self) -> SQSClient:
        if self.sqs_client is None:
            self.sqs_client = aws.sqs_client()
        return self.sqs_client

    @functools.cached_property
    def observer(self) -> Observer:
        s = self.settings
        return Observer(self.sqs, self.ec2, s.queue_url, s.pool_tag, s.cache_seconds, self.clock)

    @functools.cached_property
    def actor(self) -> Actor:
        return Actor(self.ec2_act, self.settings)

    @functools.cached_property
    def metrics(self) -> MetricsSink:
        sink = MetricsSink(self.settings.metrics_namespace)
        if self.metrics_write is not None:
            sink.write = self.metrics_write
        return sink

    @property
    def cached(self) -> Observation | None:
        return self.observer.cached if "observer" in self.__dict__ else None

    def handle(self, event: Any, context: LambdaContext) -> dict[str, Any]:
        parsed = parse_event(event)
        if isinstance(parsed, CustomResource):
            cleaner = Cleaner(self.ec2, self.env, self.clock, self.sleep)
            status, reason = cleaner.custom_resource(
                parsed.request, context.aws_request_id, context.get_remaining_time_in_millis()
            )
            return {"action": "custom_resource", "status": status, "reason": reason}
        if isinstance(parsed, Ignored):
            emit(logging.INFO, "ignored", reason=parsed.reason, keys=list(parsed.keys))
            return {"action": "ignored", "reason": parsed.reason}
        if isinstance(parsed, ObjectsCreated) and not parsed.keys:
            skipped = [{"key": s.key, "reason": s.reason} for s in parsed.skipped]
            emit(logging.INFO, "skipped", skipped=skipped)
            return {"action": "skipped", "skipped": skipped}
        objects = parsed.count if isinstance(parsed, ObjectsCreated) else 0
        return self.reconcile(objects, context.aws_request_id, fresh=isinstance(parsed, Scheduled))

    def cleanup(self, deadline: float) -> dict[str, Any]:
        return Cleaner(self.ec2, self.env, self.clock, self.sleep).cleanup(deadline)

    def reconcile(self, objects: int, request_id: str, *, fresh: bool) -> dict[str, Any]:
        obs = None if fresh else self.observer.reusable()
        if obs is None:
            queued = self.observer.backlog()
            if objects == 0 and queued.total == 0:
                # Nothing to decide, and the cached view of the pool is now the oldest
                # thing known: drop it, so the next event observes the pool afresh.
                self.observer.forget()
                emit(logging.INFO, "idle", visible=0, delayed=0)
                self.metrics.emit({"Backlog": 0})
                return {"action": "idle", "backlog": 0}
            obs = self.observer.fresh(queued)
        obs = obs.with_events(objects)
        decision = decide(
            obs.backlog, obs.pool, self.settings.max_workers, self.settings.files_per_worker
        )
        tally = Tally()
        try:
            self._act(decision, request_id, tally)
        except Exception:
            self.observer.forget()  # what was seen is no longer true: the next event looks again
            self._record(obs, decision, tally, failed=True)
            raise
        self.observer.remember(obs.after(tally.started, list(tally.launched)))
        if tally.not_started:
            self.observer.forget()  # the observation was wrong: the next event looks again
        return self._record(obs, decision, tally, failed=False)

    def _act(self, decision: Decision, request_id: str, tally: Tally) -> None:
        if decision.start:
            self.actor.start(decision.start, tally)
        if decision.launch:
            self.actor.launch(decision.launch, request_id, tally)

    def _record(
        self, obs: Observation, decision: Decision, tally: Tally, *, failed: bool
    ) -> dict[str, Any]:
        """The decision line (a warning when anything is deferred) and its metrics line."""
        deferred = decision.deferred + len(tally.not_started)
        if failed:
            deferred += (
                len(decision.start) + decision.launch - len(tally.started) - len(tally.launched)
            )
        result = {
            "action": "scaled" if tally.started or tally.launched else "none",
            "backlog": obs.backlog.total,
            "wanted": decision.wanted,
            "active_before": obs.pool.active,
            "started": list(tally.started),
            "launched": list(tally.launched),
            "markets": dict(tally.launched),
            "deferred": deferred,
            "stopping": list(obs.pool.stopping),
            "held": list(obs.pool.held),
            "capacity_type": self.settings.capacity_type.value,
            "capacity_errors": tally.capacity_errors,
            "fallbacks": tally.fallbacks,
            "refusals": tally.refusals,
        }
        level = logging.WARNING if deferred or failed else logging.INFO
        note = "reconciler will start" if deferred else ""
        emit(level, "decision", **result, note=note)
        self._metrics(obs, tally, deferred)
        return result

    def _metrics(self, obs: Observation, tally: Tally, deferred: int) -> None:
        self.metrics.emit(
            {
                "WorkersStarted": len(tally.started),
                "WorkersLaunched": len(tally.launched),
                "WorkersDeferred": deferred,
                "CapacityErrors": tally.capacity_errors,
                "SpotFallbacks": tally.fallbacks,
                "Backlog": obs.backlog.total,
                "PoolActive": obs.pool.active,
                "PoolStopped": len(obs.pool.stopped),
            }
        )
