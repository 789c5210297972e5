"""lambda/starter/decide.py (pure): the start decision from the backlog and the pool by state,
by examples, by its invariants over an exhaustive small grid and seeded random large inputs."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from lambdakit import starter

decide_module = starter("decide")
Backlog, Pool, decide = decide_module.Backlog, decide_module.Pool, decide_module.decide


def ids(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"i-{prefix}{k}" for k in range(n))


def pool(pending: int = 0, running: int = 0, stopping: int = 0, stopped: int = 0) -> Any:
    return Pool(ids("p", pending), ids("r", running), ids("x", stopping), ids("s", stopped))


def test_the_backlog_counts_visible_delayed_and_event_objects() -> None:
    assert Backlog().total == 0
    assert Backlog(visible=3, delayed=2, from_events=1).total == 6


def test_the_pool_counts_members_by_what_can_be_done_with_them() -> None:
    p = Pool(("a",), ("b", "c"), ("d",), ("e",), held=("f", "g"))
    assert (p.active, p.unstartable, p.size) == (3, 3, 7)


@pytest.mark.parametrize(
    ("backlog", "members", "max_w", "fpw", "start", "launch", "deferred"),
    [
        (0, pool(stopped=1), 1, 500, 0, 0, 0),  # nothing to do
        (1, pool(stopped=1), 1, 500, 1, 0, 0),  # the classic: start the stopped worker
        (1, pool(), 1, 500, 0, 1, 0),  # no member yet: launch one
        (1, pool(running=1), 1, 500, 0, 0, 0),  # already running counts as done
        (1, pool(pending=1), 1, 500, 0, 0, 0),  # pending too
        (1, pool(stopping=1), 1, 500, 0, 0, 1),  # stopping: deferred, not lost
        (501, pool(stopped=2), 4, 500, 2, 0, 0),  # ceil: 501 files want two workers
        (1200, pool(stopped=1), 4, 500, 1, 2, 0),  # stopped first, then launch
        (1200, pool(running=1, stopping=1), 3, 500, 0, 1, 1),  # cap counts stopping
        (10**6, pool(stopped=5), 3, 500, 3, 0, 0),  # never above the cap
    ],
)
def test_decide_examples(
    backlog: int, members: Any, max_w: int, fpw: int, start: int, launch: int, deferred: int
) -> None:
    d = decide(Backlog(visible=backlog), members, max_w, fpw)
    assert (len(d.start), d.launch, d.deferred) == (start, launch, deferred)


def test_stopped_members_are_started_in_the_pools_order() -> None:
    d = decide(Backlog(visible=1000), pool(stopped=3), 2, 500)
    assert d.start == ("i-s0", "i-s1")
    assert d.wanted == 2


def check_invariants(backlog: Any, p: Any, max_w: int, fpw: int) -> None:
    d = decide(backlog, p, max_w, fpw)
    total = backlog.total
    wanted = min(max_w, -(-total // fpw))
    need = max(0, wanted - p.active)
    assert d.wanted == wanted
    assert min(len(d.start), d.launch, d.deferred) >= 0  # never negative
    assert len(d.start) + d.launch + d.deferred == need  # every need is acted on or deferred
    if total > 0:
        assert d.wanted >= 1  # at least one worker while there is a backlog
    assert set(d.start) <= set(p.stopped)  # only stopped members are started
    if d.launch:
        assert len(d.start) == len(p.stopped)  # stopped members before new ones
    if d.start or d.launch:  # counting pending/running/stopping the cap holds after acting
        assert p.active + len(p.stopping) + len(d.start) + d.launch <= max_w
    if d.launch:
        assert p.size + d.launch <= max_w  # the pool itself never grows above the cap
    if d.deferred:
        assert p.stopping  # only a member that cannot be started yet defers the need


def test_decide_invariants_exhaustive_small_grid() -> None:
    backlogs = [*range(13), 499, 500, 501, 999, 1000, 1001, 10**6]
    checked = 0
    for total, states, max_w, fpw in itertools.product(
        backlogs, itertools.product(range(4), repeat=4), range(1, 6), (1, 2, 3, 500)
    ):
        check_invariants(Backlog(visible=total), pool(*states), max_w, fpw)
        checked += 1
    assert checked == 20 * 256 * 5 * 4


def test_decide_invariants_random_large_inputs() -> None:
    rng = random.Random(20261126)  # seeded: a failure reproduces
    for _ in range(20_000):
        backlog = Backlog(
            *(rng.choice([0, rng.randint(0, 50), rng.randint(0, 10**7)]) for _ in "vdo")
        )
        p = pool(*(rng.randint(0, 40) for _ in range(4)))
        check_invariants(backlog, p, rng.randint(1, 60), rng.randint(1, 5000))


@pytest.mark.parametrize("backlog", [Backlog(from_events=1), Backlog(delayed=1)])
def test_event_objects_and_delayed_messages_count_when_the_queue_reads_zero(backlog: Any) -> None:
    d = decide(backlog, pool(stopped=1), 1, 500)
    assert len(d.start) == 1


def test_held_members_count_toward_the_cap_and_defer_the_need() -> None:
    d = decide(Backlog(visible=5), Pool(held=("i-int",)), 1, 500)

    assert (d.start, d.launch, d.deferred) == ((), 0, 1)
