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
