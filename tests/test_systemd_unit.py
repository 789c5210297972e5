"""systemd/s3worker.service: the real systemd-analyze checks and the daemon's contract.

systemd-analyze comes from `make tools` (part of `make test`); a missing one fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd/s3worker.service"
EXEC_START = "/opt/s3worker/venv/bin/s3worker"
MAX_EXPOSURE = 2.5
DAEMON_DRAIN_SECONDS = 90  # S3WORKER_DRAIN_SECONDS default (DESIGN.md)


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze is missing: run `make tools` (make test does)"
    return path


def directives(text: str) -> dict[str, list[str]]:
    """Key -> values (a key may repeat, e.g. SystemCallFilter=)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture
def installable_unit(tmp_path: Path) -> Path:
    """The unit as verify can check it here: ExecStart must exist and be executable.

    /opt/s3worker/venv exists only on a worker, so verify runs on a copy whose ExecStart points
    at a stub executable in a temporary directory; every other line is the shipped unit's.
    """
    stub = tmp_path / "venv/bin/s3worker"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = UNIT.read_text()
    assert f"ExecStart={EXEC_START} run" in text
    unit = tmp_path / "s3worker.service"
    unit.write_text(text.replace(f"ExecStart={EXEC_START}", f"ExecStart={stub}"))
    return unit


def test_systemd_analyze_verify_is_clean(installable_unit: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "verify", str(installable_unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    # verify exits 0 on unknown keys and only warns: any output is a failure here.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
    assert result.stdout.strip() == ""


def test_security_exposure_is_at_most_2_5() -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        cwd=UNIT.parent,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for s3worker\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:]
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_unit_follows_the_daemon_contract() -> None:
    unit = directives(UNIT.read_text())

    def one(key: str) -> str:
        assert len(unit.get(key, [])) == 1, key
        return unit[key][0]

    assert one("Type") == "notify"
    assert one("Restart") == "on-failure"
    assert int(one("WatchdogSec")) > 0
    assert int(one("TimeoutStopSec")) > DAEMON_DRAIN_SECONDS
    assert one("EnvironmentFile") == "/etc/s3worker/s3worker.env"
    assert one("ExecStart") == f"{EXEC_START} run"
    assert one("User") == "s3worker"
    assert one("ProtectSystem") == "strict"
    assert one("ReadWritePaths") == "/var/lib/s3worker"
    assert one("RequiresMountsFor") == "/var/lib/s3worker"
    assert one("NoNewPrivileges") == "yes"
    assert one("PrivateTmp") == "yes"
    assert one("CapabilityBoundingSet") == ""
    assert "network-online.target" in one("After")
    # A crash loop powers the machine off (the launch template makes that a termination).
    assert one("StartLimitAction") == "poweroff"
