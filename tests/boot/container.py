"""One booted worker: the cached rootfs under a per-run overlay, systemd as PID 1 in
systemd-nspawn, a loop device as its EBS scratch volume (linked as /dev/sdb: machine.py).

Everything started here is ended by PID in `close()`, whatever failed before it: the container
(nspawn, then its PID 1), the overlay mount, the loop device.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A clean environment for commands run inside: nothing of the test process leaks in.
INSIDE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
SCRATCH_BYTES = 2 * 1024**3  # sparse; XFS wants >= 300 MB
LEADER_TIMEOUT_SECONDS = 30
SHUTDOWN_TIMEOUT_SECONDS = 60


@dataclass
class Container:
    lower: Path
    workdir: Path
    name: str
    console: Path = field(init=False)
    merged: Path = field(init=False)
    loop: str | None = None
    process: subprocess.Popen[bytes] | None = None
    leader: int | None = None
    _mounted: bool = False

    def __post_init__(self) -> None:
        self.merged = self.workdir / "merged"
        self.console = self.workdir / "console.log"

    # -- set-up ----------------------------------------------------------------------------

    def mount(self) -> Path:
        """The writable per-run tree: an overlay, so the cached rootfs is never written."""
        for sub in ("upper", "work", "merged"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        upper, work = self.workdir / "upper", self.workdir / "work"
        options = f"lowerdir={self.lower},upperdir={upper},workdir={work}"
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(self.merged)], check=True
        )
        self._mounted = True
        return self.merged

    def attach_scratch(self) -> str:
        image = self.workdir / "scratch.img"
        with image.open("wb") as f:
            f.truncate(SCRATCH_BYTES)
        self.loop = subprocess.run(
            ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
        ).stdout.strip()
        return self.loop

    def boot(self) -> int:
        """systemd-nspawn --boot on the host's network; returns the container's PID 1 (host pid)."""
        assert self.loop
        assert self._mounted
        command = [
            "systemd-nspawn",
            "--boot",
            "--register=no",
            "--keep-unit",
            f"--machine={self.name}",
            f"--directory={self.merged}",
            f"--bind={self.loop}",  # the kernel's name, as /dev/nvme1n1 on EC2 (see machine.py)
            "--console=read-only",
            "--link-journal=no",
        ]
        with self.console.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.leader = self._find_leader()
        return self.leader

    def _find_leader(self) -> int:
        assert self.process
        deadline = time.monotonic() + LEADER_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"systemd-nspawn exited {self.process.returncode}: {self.tail()}"
                )
            for pid in _children(self.process.pid):
                if _ns_pid(pid) == 1:
                    return pid
            time.sleep(0.1)
        raise TimeoutError(f"no container PID 1 after {LEADER_TIMEOUT_SECONDS} s: {self.tail()}")

    # -- inside ----------------------------------------------------------------------------

    def run(
        self, *command: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """A command inside, as root, in all the container's namespaces (as machinectl shell)."""
        assert self.leader
        return subprocess.run(
            ["nsenter", f"--target={self.leader}", "--all", "--root", "--wd", *command],
            env=INSIDE_ENV,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def journal(self, *filters: str) -> list[dict[str, Any]]:
        """The container's journal (persistent, in the overlay), as journalctl -o json gives it."""
        out = subprocess.run(
            [
                "journalctl",
                f"--directory={self.merged}/var/log/journal",
                "-o",
                "json",
                "--no-pager",
                *filters,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- tear-down -------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self._stop()
        finally:
            if self._mounted:
                subprocess.run(["umount", "--lazy", str(self.merged)], check=False)
                self._mounted = False
            if self.loop:
                subprocess.run(["losetup", "--detach", self.loop], check=False)
                self.loop = None

    def _stop(self) -> None:
        """SIGTERM to nspawn asks PID 1 for a clean shutdown; past the bound, SIGKILL both."""
        if not self.running():
            return
        assert self.process
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(SHUTDOWN_TIMEOUT_SECONDS)
            return
        except subprocess.TimeoutExpired:
            pass
        for pid in (self.leader, self.process.pid):
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.process.wait(10)

    def remove(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _ns_pid(pid: int) -> int | None:
    """The pid in the innermost PID namespace (the last NSpid field)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except OSError:
        return None
    return None
