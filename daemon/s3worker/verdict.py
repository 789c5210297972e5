"""Pure: the one rule from any exception (and the attempt it ended) to what becomes of the message.

- superseded (a newer version exists): acknowledged, nothing written;
- permanent (bad data or event, gone, too large; and the errors an input causes every time:
  RecursionError, OverflowError, UnicodeError): report + DLQ at once;
- transient (throttling, 5xx, resets, a full disk, a dead worker process): released, SQS
  delivers it again;
- anything else (a bug, a library's surprise): released too, but at most UNKNOWN_ATTEMPTS times.

The last attempt of *anything* is reported and sent to the DLQ by the daemon with its error
attributes: nothing may reach the DLQ through the redrive policy alone, without a report saying
why. A worker can die during that attempt (SIGKILL, a lost instance), so the daemon keeps the
queue's final receive for itself: with maxReceiveCount N >= 2 it processes a message on
receives 1..N-1 (N-1 is the last attempt), and a message that comes back an Nth time, because
its last attempt ended without any verdict, is reported as such without being processed again.
"""

from __future__ import annotations

import enum
import errno
from dataclasses import dataclass

from s3worker.errors import PermanentError, SupersededError
from s3worker.retry import is_transient

# Unknown errors rarely cure themselves; their receives are still bounded by maxReceiveCount.
UNKNOWN_ATTEMPTS = 3
# Errors that the same input raises every time it is read, whatever raised them.
INPUT_ERRORS = (RecursionError, OverflowError, UnicodeError, MemoryError)


class Verdict(enum.Enum):
    ACK = "ack"  # done (or nothing to do): delete the message
    DEAD_LETTER = "dead_letter"  # reported: straight to the DLQ
    RELEASE = "release"  # let SQS deliver it again later


class Kind(enum.Enum):
    SUPERSEDED = "superseded"
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    error: BaseException | None = None
    report_key: str | None = None


def kind_of(exc: BaseException) -> Kind:
    if isinstance(exc, SupersededError):
        return Kind.SUPERSEDED
    if isinstance(exc, (PermanentError, *INPUT_ERRORS)):
        return Kind.PERMANENT
    if is_transient(exc) or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        return Kind.TRANSIENT
    return Kind.UNKNOWN


def verdict_for(exc: BaseException, receive_count: int, max_receives: int | None) -> Verdict:
    """What to do with a message whose handling raised `exc` on its `receive_count`-th receive."""
    kind = kind_of(exc)
    if kind is Kind.SUPERSEDED:
        return Verdict.ACK
    if kind is Kind.PERMANENT or is_last_attempt(kind, receive_count, max_receives):
        return Verdict.DEAD_LETTER
    return Verdict.RELEASE


def is_last_attempt(kind: Kind, receive_count: int, max_receives: int | None) -> bool:
    """No further attempt will come (or may come, for an unknown error)."""
    if max_receives is not None and receive_count >= attempts_allowed(max_receives):
        return True
    return kind is Kind.UNKNOWN and receive_count >= UNKNOWN_ATTEMPTS


def attempts_allowed(max_receives: int) -> int:
    """Receives that process the message: all but the final one, which is kept for reporting
    an attempt that died (a queue allowing one receive gets that one attempt)."""
    return max(1, max_receives - 1)


def is_final_receive(receive_count: int, max_receives: int | None) -> bool:
    """The queue's last delivery, after every attempt ended without a verdict: report it."""
    return (
        max_receives is not None
        and max_receives >= 2
        and receive_count > attempts_allowed(max_receives)
    )


def combine(decisions: list[Decision]) -> Decision:
    """One verdict for a message of several objects: retry beats dead-letter beats done."""
    for verdict in (Verdict.RELEASE, Verdict.DEAD_LETTER):
        for decision in decisions:
            if decision.verdict is verdict:
                return decision
    return Decision(Verdict.ACK)
