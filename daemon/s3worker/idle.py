"""Pure: the idle rule, on whatever clock the caller runs (the daemon's, or a simulation's).

Idle = no job for `idle_seconds`, *and* the queue read empty (0 visible, 0 delayed) at every
reading throughout `confirm_seconds`: its counters are approximate, so one empty reading
proves little. A reading that failed is not an empty one: it restarts the window.
"""

from __future__ import annotations

from dataclasses import dataclass

from s3worker.config import Settings


@dataclass
class IdlePolicy:
    idle_seconds: float
    confirm_seconds: float
    last_activity: float
    quiet_since: float | None = None  # the first of an unbroken run of empty readings

    @classmethod
    def from_settings(cls, settings: Settings, now: float) -> IdlePolicy:
        return cls(settings.idle_seconds, settings.idle_confirm_seconds, last_activity=now)

    def active(self, now: float) -> None:
        """Work arrived or finished: the idle time starts again, and so does the window."""
        self.last_activity = now
        self.quiet_since = None

    def due(self, now: float) -> bool:
        """Idle long enough that a queue reading is worth taking."""
        return now - self.last_activity >= self.idle_seconds

    def observe(self, now: float, backlog: int | None) -> bool:
        """One queue reading (`None`: it could not be read); True once idle is confirmed."""
        if not self.due(now) or backlog is None or backlog != 0:
            self.quiet_since = None
            return False
        if self.quiet_since is None:
            self.quiet_since = now
        return now - self.quiet_since >= self.confirm_seconds

    def idle_for(self, now: float) -> float:
        return now - self.last_activity
