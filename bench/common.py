"""Shared pieces of the benchmarks: the emulator as a subprocess, the test Pipeline, the
daemon as systemd would start it, process-tree CPU from /proc, and the machine's description.

The emulator runs in its own process (`moto_server`) so its GIL is not the benchmark's.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
RESULTS = Path(__file__).parent / "results"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(TESTS))  # reuse the test harness: Pipeline, FaultProxy, eventbridge_event
sys.path.insert(0, str(ROOT))

from conftest import CREDENTIALS as TEST_CREDENTIALS  # noqa: E402

from demo.emulator import harness_session  # noqa: E402

CREDENTIALS = {
    # What stands in for AWS, plus the env file's AWS_* settings (tests/conftest.py says why).
    **TEST_CREDENTIALS,
    # No metadata service here: fail fast instead of waiting on 169.254.169.254.
    "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Any, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        time.sleep(every)


@contextlib.contextmanager
def emulator() -> Iterator[str]:
    """moto's server in a subprocess; sets AWS_ENDPOINT_URL and test credentials for us and
    every child."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    os.environ.update(CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = url
    harness_session()

    def up() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    try:
        wait_until(up, 30, "moto_server listening")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def start_daemon(
    env: dict[str, str], log: Path, *, echo_runlog: Path | None = None
) -> subprocess.Popen[bytes]:
    """`s3worker run` in its own process group (a systemd unit's cgroup). With `echo_runlog`,
    the test processor is registered too (tests/run_daemon.py)."""
    if echo_runlog is not None:
        argv = [sys.executable, str(TESTS / "run_daemon.py")]
        env = {**env, "S3WORKER_TEST_RUNLOG": str(echo_runlog)}
    else:
        argv = [sys.executable, "-m", "s3worker", "run"]
    pythonpath = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        argv,
        env={**os.environ, **env, "PYTHONPATH": pythonpath},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def log_events(log: Path) -> list[dict[str, Any]]:
    events = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                events.append(json.loads(line))
    return events


class TreeCpu:
    """CPU seconds of a process group, sampled from /proc (the pool's workers are children of
    multiprocessing's forkserver, so the daemon's own rusage does not see them)."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.seen: dict[int, float] = {}
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> float:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # after the command: state ppid pgrp session ... utime(12) stime(13)
            if int(fields[2]) == self.pgid:
                cpu = (int(fields[11]) + int(fields[12])) / self.tick
                pid = int(entry.name)
                self.seen[pid] = max(self.seen.get(pid, 0.0), cpu)
        return self.total

    @property
    def total(self) -> float:
        return sum(self.seen.values())


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def machine() -> dict[str, Any]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_at_start": loadavg(),
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
