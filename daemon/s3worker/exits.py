"""The exit codes of every `s3worker` command: one table, shown by `s3worker --help`.

The same kind of outcome gives the same code whatever the command, so scripts and systemd
can act on it (`Restart=on-failure` restarts on anything but 0).
"""

from __future__ import annotations

import enum

from s3worker.errors import S3WorkerError

OK = 0
FAILED = 1  # the work failed: a file did not upload or process, a redrive left messages
USAGE = 2  # usage or configuration: flags, variables, the stack, credentials, permissions
PENDING = 3  # not ready yet: the input has no results (yet)
UNREACHABLE = 4  # AWS (or AWS_ENDPOINT_URL) could not be reached: try again later
INTERRUPTED = 130  # Ctrl-C or SIGTERM before the command finished

TABLE: tuple[tuple[int, str], ...] = (
    (OK, "done (also: a results lookup found the input processed or skipped)"),
    (FAILED, "the work failed: a file did not upload/process, a redrive left messages behind"),
    (USAGE, "usage or configuration: a flag, a variable, the stack, credentials, permissions"),
    (PENDING, "not ready yet: `results` finds no results for the input, `report` none to chart"),
    (UNREACHABLE, "AWS (or AWS_ENDPOINT_URL) could not be reached: try again later"),
    (INTERRUPTED, "interrupted (Ctrl-C, SIGTERM)"),
)


def describe() -> str:
    """The table as `--help` prints it."""
    return "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in TABLE)


class UsageError(S3WorkerError):
    """A command was asked for something it cannot do (a path, a flag); exit code 2."""


class ExitReason(enum.Enum):
    """Why the daemon's loop ended (worker.py)."""

    SIGNAL = "signal"
    IDLE = "idle"
    IDLE_STOP_FAILED = "idle_stop_failed"  # exits non-zero
    FORCED = "forced"  # a second stop signal cut the drain short; exits non-zero
    INTERRUPTED = "interrupted"  # a Spot interruption notice; exits 0: EC2 takes the instance
    REBALANCE = "rebalance"  # a rebalance recommendation; drained, then the idle action


def exit_code(reason: ExitReason) -> int:
    """The daemon's: 0 for every planned end (a stop, the idle exit, a Spot notice), so
    `Restart=on-failure` restarts it only after the others."""
    codes = {ExitReason.IDLE_STOP_FAILED: FAILED, ExitReason.FORCED: INTERRUPTED}
    return codes.get(reason, OK)
