"""The idle rule (idle.py): pure, on a caller's clock."""

from __future__ import annotations

from s3worker.idle import IdlePolicy


def policy() -> IdlePolicy:
    return IdlePolicy(idle_seconds=600, confirm_seconds=60, last_activity=0.0)


def test_no_reading_is_due_before_the_idle_time():
    rule = policy()
    assert not rule.due(599.0)
    assert rule.due(600.0)
    # An empty reading before then confirms nothing and starts no window
    assert not rule.observe(599.0, 0)
    assert rule.quiet_since is None


def test_idle_needs_empty_readings_throughout_the_window():
    rule = policy()
    assert not rule.observe(600.0, 0)  # the window opens
    assert not rule.observe(630.0, 0)
    assert rule.observe(660.0, 0)


def test_a_backlog_or_a_failed_reading_restarts_the_window():
    for broken in (3, None):
        rule = policy()
        assert not rule.observe(600.0, 0)
        assert not rule.observe(630.0, broken)
        assert not rule.observe(660.0, 0)  # 60 s after the first empty reading: not enough
        assert rule.observe(720.0, 0)


def test_work_starts_the_idle_time_and_the_window_again():
    rule = policy()
    assert not rule.observe(600.0, 0)
    rule.active(650.0)
    assert rule.quiet_since is None
    assert not rule.due(1249.0)
    assert rule.idle_for(1249.0) == 599.0
    assert not rule.observe(1250.0, 0)
    assert rule.observe(1310.0, 0)
