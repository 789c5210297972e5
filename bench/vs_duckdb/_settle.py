"""The machine brought to the same state before every timed run, and what a run cost it.

Why (measured on this VM, a Firecracker guest): the guest hands free memory back to the host
(virtio-balloon free page reporting, 2 MiB blocks, about 230 MiB/s, counted in
/sys/module/page_reporting/parameters/reported_kib). A page the host has taken back costs a
host fault and zeroing when it is touched again: touching 1 GiB took 0.13-0.2 s of system time
with memory just freed by another process, 1.9-2.9 s once it had been reported (the time shows
in the guest as `clear_page_erms` under page faults). So a run's time depended on how much of
the memory it touched had been freed, and not yet reported, by the run before it: after
DuckDB had freed gigabytes, pandas' pyarrow read of the same 0.5 GiB file took 2-8 s, 0.4-6 s
of it system time.

`settle` therefore waits, before every run of every side, until the reporting has stopped
(nothing reported for QUIET seconds): every run then starts with the free memory given back,
whatever ran before it. It first reads the input through the page cache (the same for every
side: the file is cached when the timed run starts), syncs what the previous run wrote, and
waits for the cores to be mostly idle (other work on the machine), each wait bounded.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

REPORTED = Path("/sys/module/page_reporting/parameters/reported_kib")
QUIET = 3.0  # s without a report: the reporting thread works in passes about 2.1 s apart
MOST = 60.0  # s: the longest wait for the reporting to stop (other work may keep it going)
IDLE = 0.5  # the cores' idle fraction wanted before a run (over IDLE_WINDOW)
IDLE_WINDOW = 1.0  # s
IDLE_MOST = 15.0  # s: the longest wait for it (other engineers may keep the cores busy)
ENABLED = True  # False: `settle` only reads the input (bench_vs_duckdb.py --no-settle)
VMSTAT = ("pgfault", "thp_fault_alloc", "compact_stall", "pgscan_direct", "pgscan_kswapd")


def reported_kib() -> int | None:
    """KiB the guest has reported free to the host since boot (None: no page reporting)."""
    try:
        return int(REPORTED.read_text())
    except (OSError, ValueError):
        return None


def vmstat() -> dict[str, int]:
    counters = {}
    for line in Path("/proc/vmstat").read_text().splitlines():
        name, value = line.split()
        if name in VMSTAT:
            counters[name] = int(value)
    return counters


def idle_fraction(window: float = IDLE_WINDOW) -> float:
    """The fraction of all cores' time spent idle (or waiting on I/O) over `window` seconds."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])

    idle0, total0 = sample()
    time.sleep(window)
    idle1, total1 = sample()
    return (idle1 - idle0) / max(total1 - total0, 1)


def warm(path: Path) -> None:
    """Every page of `path` read once through the page cache, into one reused buffer."""
    buffer = bytearray(1 << 20)
    with path.open("rb", buffering=0) as f:
        while f.readinto(buffer):
            pass


def wait_reporting(quiet: float = QUIET, most: float = MOST) -> float:
    """Seconds waited until nothing had been reported for `quiet` s (at most `most` s)."""
    start = last_change = time.monotonic()
    last = reported_kib()
    if last is None:
        return 0.0
    while time.monotonic() - last_change < quiet and time.monotonic() - start < most:
        time.sleep(0.1)
        now = reported_kib()
        if now != last:
            last, last_change = now, time.monotonic()
    return time.monotonic() - start


def wait_idle(want: float = IDLE, most: float = IDLE_MOST) -> float:
    """The idle fraction last seen, waiting (at most `most` s) until it reaches `want`."""
    deadline = time.monotonic() + most
    seen = idle_fraction()
    while seen < want and time.monotonic() < deadline:
        seen = idle_fraction()
    return seen


def settle(path: Path) -> dict[str, Any]:
    """The same state before every timed run (see the module's docstring); what it found."""
    started = time.monotonic()
    warm(path)
    if not ENABLED:
        return {"settle_s": round(time.monotonic() - started, 1), "load1": _load1()}
    os.sync()
    idle = wait_idle()
    waited = wait_reporting()
    return {
        "settle_s": round(time.monotonic() - started, 1),
        "reporting_wait_s": round(waited, 1),
        "idle": round(idle, 2),
        "load1": _load1(),
    }


def _load1() -> float:
    return round(os.getloadavg()[0], 2)


def costs(before: dict[str, int], reported_before: int | None) -> dict[str, int]:
    """What happened on the machine during a run: vmstat deltas, MiB reported to the host."""
    after = vmstat()
    out = {name: after[name] - before.get(name, 0) for name in after}
    now = reported_kib()
    if now is not None and reported_before is not None:
        out["reported_mib"] = (now - reported_before) >> 10
    return out
