"""`python -m demo.tether PARENT_PID CMD...`: run CMD so that it cannot outlive the demo.

The demo starts each daemon in a session of its own, as systemd gives a unit its own cgroup,
so a `kill -9` of the demo (or a closed terminal) would leave the daemon, its forkserver and
its worker processes running, retrying a dead emulator forever. This launcher asks Linux to
signal it when its parent dies (prctl PR_SET_PDEATHSIG) and then kills its whole process
group: the daemon and every process it started. Anything else (a SIGTERM to the group, which
is how the demo stops a worker) reaches the daemon as it would under systemd; the launcher
just waits and exits with the daemon's code.

A separate process, not a `preexec_fn`: the demo runs threads (the emulator), and
`preexec_fn` is not safe in a threaded parent.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from types import FrameType

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
ON_PARENT_DEATH = signal.SIGUSR1


def _kill_group(_signum: int, _frame: FrameType | None) -> None:
    os.killpg(0, signal.SIGKILL)  # our own group: the daemon and its children, and us


def _pass(_signum: int, _frame: FrameType | None) -> None:
    """Not SIG_IGN: ignored signals stay ignored across exec, and the daemon needs them."""


def watch_parent(parent: int) -> None:
    signal.signal(ON_PARENT_DEATH, _kill_group)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(ON_PARENT_DEATH), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request took effect
        _kill_group(0, None)


def main(argv: list[str]) -> int:
    parent, command = int(argv[0]), argv[1:]
    watch_parent(parent)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _pass)  # the group's SIGTERM is for the daemon; we wait for it
    child = subprocess.Popen(command)  # noqa: S603 (the demo's own daemon command)
    code = child.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
