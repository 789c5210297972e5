"""bench/simulate.py drives the real `decide` and the daemon's real idle rule: check the model
behaves as the contract says on simulated time (no waiting, no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import simulate


def test_one_file_starts_one_worker_which_stops_after_the_idle_rule():
    model = simulate.Model(idle_seconds=600, idle_confirm_seconds=60, poll_s=20)
    sim = simulate.Sim(model, max_workers=4)

    result = sim.run(iter([0.0]), horizon=2 * simulate.HOUR)

    # Given one upload, the Lambda launched one worker, it processed the file, then stopped
    assert result["files_done"] == 1
    assert result["workers_used"] == 1
    assert [w.state for w in sim.workers] == ["stopped"]
    # And it stayed up at least the idle time plus the confirmation window, not much more
    up = result["worker_hours"] * simulate.HOUR
    assert 660 <= up <= 660 + model.launch_s + 3 * model.poll_s


def test_the_idle_rule_keeps_a_worker_while_the_queue_reads_non_empty():
    settings = simulate.Settings(
        queue_url="q", output_bucket="b", idle_action="stop", idle_seconds=10,
        idle_confirm_seconds=5,
    )  # fmt: skip
    queue = simulate.SimQueue()
    policy = simulate.IdlePolicy.from_settings(settings, 0.0)
    queue.waiting.append(0.0)
    assert not simulate.idle_confirmed(policy, queue, 100.0)  # backlog: never idle
    queue.waiting.clear()
    assert not simulate.idle_confirmed(policy, queue, 100.0)  # the confirmation window starts
    assert simulate.idle_confirmed(policy, queue, 106.0)


def test_a_burst_scales_to_the_cap_and_drains():
    sim = simulate.Sim(simulate.Model(), max_workers=4)

    result = sim.run(simulate.batch(3000, 60.0), horizon=3 * simulate.HOUR)

    assert result["files_done"] == 3000
    assert result["keeps_up"]
    assert result["workers_used"] == 4
    assert all(w.state == "stopped" for w in sim.workers)


def test_spot_without_interruptions_costs_the_price_ratio_of_the_instance_hour():
    on_demand = simulate.Model()
    spot = simulate.replace(on_demand, spot_price_ratio=0.4, interruptions_per_hour=0.0)
    a = simulate.Sim(on_demand, max_workers=4).run(simulate.batch(3000, 60.0), 3 * simulate.HOUR)
    b = simulate.Sim(spot, max_workers=4).run(simulate.batch(3000, 60.0), 3 * simulate.HOUR)
    # Given no interruption, the same work is done in the same worker-hours
    assert (a["files_done"], a["worker_hours"]) == (b["files_done"], b["worker_hours"])
    assert b["interruptions"] == b["redone_files"] == 0
    # And the instance part of each hour is 40 % of on-demand (the public IPv4 is not discounted)
    assert spot.worker_hour_usd() == simulate.INSTANCE_HOUR * 0.4 + simulate.IPV4_HOUR


def test_interruptions_redo_the_files_that_cannot_finish_within_the_notice():
    # Given ten-minute files (past the notice's budget) and frequent interruptions
    long_files = simulate.Model(
        work_s=600.0, spot_price_ratio=0.4, interruptions_per_hour=2.0, seed=3
    )
    sim = simulate.Sim(long_files, max_workers=4)
    result = sim.run(simulate.batch(40, 60.0), 24 * simulate.HOUR)
    # Then every file is still done exactly once, and the interrupted ones were redone
    assert result["interruptions"] > 0
    assert result["redone_files"] > 0
    assert result["files_done"] == 40
    assert result["backlog_at_end"] == 0
    # And each redone file had run less than a file takes (it was handed back, not finished)
    assert 0 < result["redone_work_s"] < result["redone_files"] * long_files.work_s


def test_short_files_finish_within_the_notice_and_nothing_is_redone():
    short_files = simulate.Model(spot_price_ratio=0.4, interruptions_per_hour=20.0, seed=3)
    result = simulate.Sim(short_files, max_workers=4).run(simulate.steady(5, 1), 2 * simulate.HOUR)
    assert result["interruptions"] > 0
    assert result["redone_files"] == 0
    assert result["files_done"] == 5 * 3600
