"""sd_notify over $NOTIFY_SOCKET: READY, WATCHDOG, STATUS, STOPPING. A no-op without systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        # A leading '@' names a socket in the abstract namespace.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_seconds = int(usec) / 1_000_000 if usec.isdigit() and mine else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *lines: str) -> bool:
        """Send a notification; False when it could not be delivered.

        Like libsystemd's sd_notify, a missing or refusing socket is reported, never raised:
        a notification that cannot be delivered must not take the daemon (or its drain) down.
        """
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Never block the event loop on a manager that is not reading.
                sock.setblocking(False)
                sock.connect(self.address)
                sock.sendall("\n".join(lines).encode())
        except OSError as exc:
            log.warning("sd_notify_failed", socket=self.address, error=repr(exc))
            return False
        return True

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")


class Watchdog:
    """WATCHDOG=1 only while the main loop goes round.

    The loop calls `turn()` on every pass; `ping()` (every half watchdog period) sends
    WATCHDOG=1 only when the last turn is younger than the period. A loop stuck on an await
    that never ends stops the pings, and systemd restarts the unit; a task that pinged by
    itself would only prove that the event loop runs. A withheld ping says so in STATUS=.
    """

    def __init__(self, notifier: Notifier, clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier = notifier
        self.clock = clock
        self.last_turn = clock()

    def turn(self) -> None:
        self.last_turn = self.clock()

    def ping(self) -> bool:
        """Ping if the loop turned within the watchdog period; False (no ping) otherwise."""
        period = self.notifier.watchdog_seconds
        stalled = self.clock() - self.last_turn
        if period is None or stalled < period:
            self.notifier.watchdog()
            return True
        log.warning("watchdog_withheld", main_loop_stalled_s=round(stalled, 1))
        self.notifier.status(f"main loop stalled for {stalled:.0f} s: watchdog withheld")
        return False

    async def run(self) -> None:
        period = self.notifier.watchdog_seconds
        assert period
        self.turn()  # start-up counts: systemd's watchdog begins at READY
        while True:
            self.ping()
            await asyncio.sleep(period / 2)
