"""Scale and cost on paper: a discrete-event simulation of the pool.

It drives the start Lambda's real `decide` (lambda/start_worker.py) on every upload event and on
the reconciler schedule, and the daemon's real idle rule: `IdlePolicy` (s3worker/idle.py), the
pure object the daemon's worker feeds, here fed with simulated time and the simulated queue's
length through the same public calls (`active`, `due`, `observe`).

Model (stated in the results): EC2 start → daemon polling after `boot_s`, a new launch after
`launch_s`, `stopping` lasts `stop_s` and cannot be started; each worker runs `concurrency` files
at once, each taking `work_s`; an empty long poll lasts `poll_s`, after which the daemon checks the
idle rule. EC2 bills from `pending_s` after the start until the stop request.

Spot (`spot_price_ratio` < 1): the instance hour costs that share of on-demand, and each running
worker gets an interruption notice at random (`interruptions_per_hour`, a Poisson process, seeded):
it stops taking files, the daemon's real drain rule (`s3worker.interruption.plan`, with the
notice's budget and the file time it has measured) keeps what can finish and hands back the rest,
whose work so far is redone by another worker; `notice_s` later EC2 takes the instance
(terminated: the start logic launches a new one) and billing stops.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from bench_start import sw  # the Lambda module, loaded by path
from s3worker.config import Settings
from s3worker.idle import IdlePolicy
from s3worker.interruption import RELEASE_MARGIN_SECONDS, Running, plan

HOUR = 3600.0
MONTH_HOURS = 730.0
# README "Deploy on AWS" → Cost: m7g.large $0.0816/h + public IPv4 $0.005/h while running;
# a kept (stopped) worker's 50 GiB scratch + 8 GiB root gp3 at $0.08/GB-month = $4.64/month.
INSTANCE_HOUR = 0.0816
IPV4_HOUR = 0.005
PRICE_PER_WORKER_HOUR = INSTANCE_HOUR + IPV4_HOUR
VOLUMES_PER_WORKER_MONTH = 4.64
# An assumption, not a quote: m7g.large Spot has mostly traded at 35-45% of on-demand in
# us-east-1; check the Spot price history of your region and types (and pass your own ratio).
SPOT_PRICE_RATIO = 0.4


@dataclass(frozen=True)
class Model:
    work_s: float = 0.4  # per file per slot
    concurrency: int = 2  # m7g.large: 2 vCPUs
    boot_s: float = 45.0  # StartInstances → daemon READY (EC2 pending + OS boot + unit)
    launch_s: float = 75.0  # RunInstances → daemon READY (new instance, first boot)
    pending_s: float = 10.0  # unbilled part of the start
    stop_s: float = 30.0  # stopping → stopped
    poll_s: float = 20.0  # SQS long poll
    reconcile_s: float = 300.0  # the reconciler schedule
    files_per_worker: int = 500
    idle_seconds: float = 600.0
    idle_confirm_seconds: float = 60.0
    spot_price_ratio: float = 1.0  # 1.0: on-demand
    interruptions_per_hour: float = 0.0  # per running Spot worker
    notice_s: float = 120.0  # the Spot interruption notice
    seed: int = 7

    def worker_hour_usd(self) -> float:
        return INSTANCE_HOUR * self.spot_price_ratio + IPV4_HOUR


@dataclass
class SimQueue:
    waiting: deque[float] = field(default_factory=deque)


def idle_confirmed(policy: IdlePolicy, queue: SimQueue, now: float) -> bool:
    """What the daemon's idle check does after an empty poll: read the queue if due."""
    return policy.due(now) and policy.observe(now, len(queue.waiting))


@dataclass
class SimWorker:
    id: str
    state: str = "stopped"  # pending | running | stopping | stopped
    busy: int = 0
    billed_since: float | None = None
    billed_s: float = 0.0
    tick_gen: int = 0
    idle: IdlePolicy | None = None
    run_gen: int = 0  # a start; a job or notice of an earlier run is stale
    jobs: dict[int, tuple[float, float]] = field(default_factory=dict)  # id: (arrived, started)


class Sim:
    def __init__(self, model: Model, max_workers: int, always_on: bool = False) -> None:
        self.m, self.max_workers, self.always_on = model, max_workers, always_on
        self.settings = Settings(
            queue_url="sim", output_bucket="sim", idle_action="stop",
            idle_seconds=model.idle_seconds, idle_confirm_seconds=model.idle_confirm_seconds,
        )  # fmt: skip
        self.queue = SimQueue()
        self.workers: list[SimWorker] = []
        self.events: list[tuple[float, int, str, Any]] = []
        self.seq = itertools.count()
        self.latencies: list[float] = []
        self.now = 0.0
        self.calls = 0
        self.job_ids = itertools.count()
        self.random = random.Random(model.seed)
        self.interruptions = 0
        self.redone_files = 0
        self.redone_work_s = 0.0

    def at(self, t: float, kind: str, arg: Any = None) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, arg))

    # -- the Lambda --
    def pool(self) -> Any:
        by = {s: tuple(w.id for w in self.workers if w.state == s) for s in sw.MEMBER_STATES}
        return sw.Pool(**by)

    def lambda_(self, from_events: int) -> None:
        backlog = sw.Backlog(visible=len(self.queue.waiting) - from_events, from_events=from_events)
        d = sw.decide(backlog, self.pool(), self.max_workers, self.m.files_per_worker)
        self.calls += 1
        for wid in d.start:
            self.start(next(w for w in self.workers if w.id == wid), self.m.boot_s)
        for _ in range(d.launch):
            self.workers.append(w := SimWorker(f"i-{len(self.workers)}"))
            self.start(w, self.m.launch_s)

    # -- EC2 --
    def start(self, w: SimWorker, after: float) -> None:
        w.state, w.billed_since = "pending", self.now + self.m.pending_s
        self.at(self.now + after, "ready", w)

    def stop(self, w: SimWorker) -> None:
        w.state = "stopping"
        if w.billed_since is not None:
            w.billed_s += max(0.0, self.now - w.billed_since)
            w.billed_since = None
        self.at(self.now + self.m.stop_s, "stopped", w)

    # -- Spot --
    def schedule_interruption(self, w: SimWorker) -> None:
        if self.m.spot_price_ratio < 1.0 and self.m.interruptions_per_hour > 0:
            after = self.random.expovariate(self.m.interruptions_per_hour / HOUR)
            self.at(self.now + after, "notice", (w, w.run_gen))

    def notice(self, w: SimWorker) -> None:
        """The daemon's drain rule on this worker's files; EC2 takes it `notice_s` later."""
        self.interruptions += 1
        w.state = "draining"
        budget = max(0.0, self.m.notice_s - RELEASE_MARGIN_SECONDS)
        held = [Running(str(j), started, self.m.work_s) for j, (_, started) in w.jobs.items()]
        keep, release = plan(held, self.now, budget)
        for job in map(int, release):
            arrived, started = w.jobs.pop(job)
            self.queue.waiting.appendleft(arrived)  # visible again at once
            self.redone_files += 1
            self.redone_work_s += self.now - started
        w.busy = len(keep)
        if release:
            self.lambda_(from_events=0)
        self.dispatch()
        gone = self.now + self.m.notice_s
        if w.billed_since is not None:
            w.billed_s += max(0.0, gone - w.billed_since)
            w.billed_since = None
        self.at(gone, "interrupted", w)

    def interrupted(self, w: SimWorker) -> None:
        """EC2 takes the instance: what still runs (nothing, if the rule was right) is redone."""
        for arrived, started in w.jobs.values():
            self.queue.waiting.appendleft(arrived)
            self.redone_files += 1
            self.redone_work_s += self.now - started
        if w.jobs:
            self.lambda_(from_events=0)
        w.jobs.clear()
        w.busy, w.state = 0, "terminated"
        w.run_gen += 1
        self.dispatch()

    # -- the daemon --
    def dispatch(self) -> None:
        for w in self.workers:
            while w.state == "running" and w.busy < self.m.concurrency and self.queue.waiting:
                arrived = self.queue.waiting.popleft()
                w.busy += 1
                w.jobs[job := next(self.job_ids)] = (arrived, self.now)
                self.at(self.now + self.m.work_s, "done", (w, job, w.run_gen))
        for w in self.workers:
            if w.state == "running" and w.busy == 0:
                self.schedule_tick(w)

    def schedule_tick(self, w: SimWorker) -> None:
        w.tick_gen += 1
        self.at(self.now + self.m.poll_s, "tick", (w, w.tick_gen))

    def on(self, kind: str, arg: Any) -> None:
        if kind == "upload":
            self.queue.waiting.append(self.now)
            self.lambda_(from_events=1)
            self.dispatch()
        elif kind == "reconcile":
            if self.queue.waiting:
                self.lambda_(from_events=0)
            self.at(self.now + self.m.reconcile_s, "reconcile")
        elif kind == "ready":
            arg.state = "running"
            arg.idle = IdlePolicy.from_settings(self.settings, self.now)
            arg.run_gen += 1
            self.schedule_interruption(arg)
            self.dispatch()
        elif kind == "done":
            w, job, gen = arg
            if gen != w.run_gen or job not in w.jobs:
                return  # handed back at a notice: another worker redoes it
            arrived, _ = w.jobs.pop(job)
            w.busy -= 1
            assert w.idle
            w.idle.active(self.now)
            self.latencies.append(self.now - arrived)
            self.dispatch()
        elif kind == "notice":
            w, gen = arg
            if gen == w.run_gen and w.state == "running":
                self.notice(w)
        elif kind == "interrupted":
            self.interrupted(arg)
        elif kind == "tick":
            w, gen = arg
            if gen != w.tick_gen or w.state != "running" or w.busy or self.always_on:
                return
            assert w.idle
            if self.queue.waiting:
                w.idle.active(self.now)
            if idle_confirmed(w.idle, self.queue, self.now):
                self.stop(w)
            else:
                self.schedule_tick(w)
        elif kind == "stopped":
            arg.state = "stopped"

    def run(self, arrivals: Iterator[float], horizon: float) -> dict[str, Any]:
        if self.always_on:
            self.workers.append(w := SimWorker("i-always"))
            w.state, w.billed_since = "running", 0.0
            w.idle = IdlePolicy.from_settings(self.settings, 0.0)
        self.at(0.0, "reconcile")
        nxt = next(arrivals, None)
        last_arrival = 0.0
        drained_at = 0.0
        while self.events or nxt is not None:
            if nxt is not None and (not self.events or nxt <= self.events[0][0]):
                t, kind, arg = nxt, "upload", None
                last_arrival = nxt
                nxt = next(arrivals, None)
            else:
                t, _, kind, arg = heapq.heappop(self.events)
            if t > horizon:
                break
            self.now = t
            self.on(kind, arg)
            if kind == "done" and not self.queue.waiting and not any(x.busy for x in self.workers):
                drained_at = t
        self.now = horizon
        for w in self.workers:
            if w.billed_since is not None:
                w.billed_s += max(0.0, horizon - w.billed_since)
        lat = sorted(self.latencies)
        return {
            "files_done": len(lat),
            "backlog_at_end": len(self.queue.waiting),
            "latency_p50_s": round(lat[len(lat) // 2], 1) if lat else None,
            "latency_max_s": round(lat[-1], 1) if lat else None,
            "keeps_up": not self.queue.waiting,
            "drain_after_last_upload_s": round(drained_at - last_arrival, 1)
            if not self.queue.waiting and drained_at >= last_arrival
            else None,
            "worker_hours": round(sum(w.billed_s for w in self.workers) / HOUR, 3),
            "workers_used": len(self.workers),
            "workers_kept": sum(w.state != "terminated" for w in self.workers),
            "decisions": self.calls,
            "interruptions": self.interruptions,
            "redone_files": self.redone_files,
            "redone_work_s": round(self.redone_work_s, 1),
        }


def hourly(rate_per_hour: float, hours: float) -> Iterator[float]:
    step = HOUR / rate_per_hour
    return (i * step for i in range(int(hours * rate_per_hour)))


def batch(files: int, over_s: float) -> Iterator[float]:
    return (i * over_s / files for i in range(files))


def steady(per_s: float, hours: float) -> Iterator[float]:
    return (i / per_s for i in range(int(per_s * hours * HOUR)))


SCENARIOS: dict[str, tuple[str, Any, float, float]] = {
    # name: (description, arrivals factory, simulated hours, months per simulated span)
    "one_file_an_hour": ("1 file/h, simulated 24 h", lambda: hourly(1, 24), 24.0, 24 / MONTH_HOURS),
    "nightly_batch": (
        "10,000 files uploaded over 10 min once a day, simulated 24 h",
        lambda: batch(10_000, 600.0), 24.0, 24 / MONTH_HOURS,
    ),
    "steady_50_per_s": (
        "50 files/s for 2 h, simulated 3 h (the last hour drains); cost scaled from the 2 h",
        lambda: steady(50, 2), 3.0, 2 / MONTH_HOURS,
    ),
}  # fmt: skip


def run(model: Model) -> dict[str, Any]:
    rows = []
    for name, (what, arrivals, hours, months) in SCENARIOS.items():
        for max_workers, always_on in ((1, False), (4, False), (16, False), (1, True)):
            result = Sim(model, max_workers, always_on).run(arrivals(), hours * HOUR)
            ec2 = result["worker_hours"] * PRICE_PER_WORKER_HOUR / months
            volumes = VOLUMES_PER_WORKER_MONTH * result["workers_used"]
            rows.append({
                "scenario": name, "what": what,
                "pool": "always-on 1" if always_on else f"max_workers {max_workers}",
                **result,
                "monthly_usd": round(ec2 + volumes, 2),
                "monthly_ec2_usd": round(ec2, 2),
            })  # fmt: skip
    return {
        "model": {**model.__dict__, "capacity_files_per_s_per_worker": round(
            model.concurrency / model.work_s, 2)},
        "prices": {
            "worker_hour_usd": PRICE_PER_WORKER_HOUR,
            "volumes_per_worker_month_usd": VOLUMES_PER_WORKER_MONTH,
            "month_hours": MONTH_HOURS,
            "source": "README 'Deploy on AWS' → Cost (us-east-1 list prices, m7g.large + IPv4, "
            "gp3); requests, S3 storage and alarms are the same for every pool and left out",
        },
        "idle_rule": "s3worker.idle.IdlePolicy, the daemon's own",
        "decision": "start_worker.decide, called on every upload and reconciler tick with the "
        "live simulated queue (the Lambda's 5 s observation cache is not modelled)",
        "rows": rows,
    }  # fmt: skip


def monthly_usd(model: Model, result: dict[str, Any], months: float) -> float:
    """EC2 (instance at the model's price, IPv4) for the span, scaled to a month, plus the
    volumes of the workers kept (a terminated Spot worker keeps none)."""
    ec2 = result["worker_hours"] * model.worker_hour_usd() / months
    return round(ec2 + VOLUMES_PER_WORKER_MONTH * result["workers_kept"], 2)


# (label, Spot price as a share of on-demand, interruptions per running worker-hour)
SPOT_CASES = (
    ("on-demand", 1.0, 0.0),
    ("spot", SPOT_PRICE_RATIO, 0.05),
    ("spot, interrupted often", SPOT_PRICE_RATIO, 1.0),
)


SPOT_SCENARIOS: dict[str, tuple[str, float, Any, float, float]] = {
    # name: (description, seconds per file, arrivals factory, simulated hours, months per span)
    **{name: (what, 0.4, *rest) for name, (what, *rest) in SCENARIOS.items()
       if name != "steady_50_per_s"},
    "long_files": (
        "100 files of 10 min each uploaded over 10 min once a day, simulated 24 h",
        600.0, lambda: batch(100, 600.0), 24.0, 24 / MONTH_HOURS,
    ),
}  # fmt: skip


def run_spot(model: Model, max_workers: int = 4) -> list[dict[str, Any]]:
    """On-demand against Spot: short files, and 10-minute ones that a notice cannot let finish
    (there each interruption is redone work). The steady 50 files/s scenario is left out: it
    shows scale, which Spot does not change."""
    rows = []
    for name, (what, work_s, arrivals, hours, months) in SPOT_SCENARIOS.items():
        for label, ratio, rate in SPOT_CASES:
            m = replace(model, work_s=work_s, spot_price_ratio=ratio, interruptions_per_hour=rate)
            result = Sim(m, max_workers).run(arrivals(), hours * HOUR)
            rows.append({
                "scenario": name, "what": what, "capacity": label, "work_s": work_s, **result,
                "monthly_usd": monthly_usd(m, result, months),
            })  # fmt: skip
    return rows


def with_work(model: Model, work_s: float) -> Model:
    return replace(model, work_s=work_s)


if __name__ == "__main__":
    import json
    import sys
    import time

    t0 = time.perf_counter()
    if sys.argv[1:] == ["spot"]:
        for r in run_spot(Model()):
            print(json.dumps(r))
    else:
        for r in run(Model())["rows"]:
            print(json.dumps(r))
    print(f"simulated in {time.perf_counter() - t0:.1f} s")
