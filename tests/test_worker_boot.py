"""deploy/worker-boot.sh on this machine, in a private mount namespace, with a real loop device,
real mkfs.xfs/blkid/mount/mountpoint; only what would change the host is stubbed (systemctl,
useradd, chown, python3.11: recorded, not run). Root only, so it runs with `make boot-test`.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.boot

ROOT = Path(__file__).resolve().parents[1]
BOOT_SCRIPT = ROOT / "deploy/worker-boot.sh"
STUBS = ("systemctl", "useradd", "chown", "python3.11", "dnf")


@contextlib.contextmanager
def attached(image: Path) -> Iterator[str]:
    """A sparse 512 MiB file as a block device."""
    with image.open("wb") as f:
        f.truncate(512 * 1024**2)
    loop = subprocess.run(
        ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield loop
    finally:
        subprocess.run(["losetup", "--detach", loop], check=False)


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[str]:
    with attached(tmp_path / "scratch.img") as loop:
        yield loop


def run_boot(tmp_path: Path, device: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in STUBS:
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >>{tmp_path}/calls\n')
        stub.chmod(0o755)
    boot_env = tmp_path / "boot.env"
    scratch = tmp_path / "scratch"
    boot_env.write_text(
        f"ARTIFACT_URL=s3://artifacts/bundle.tar.gz\nSCRATCH_DEVICE={device}\nSCRATCH_DIR={scratch}\n"
    )
    fstab = tmp_path / "fstab"
    fstab.write_text("")
    inside = (
        f"mount --bind {fstab} /etc/fstab && mount -t tmpfs tmpfs /opt && "
        f"exec bash {BOOT_SCRIPT} {boot_env}"
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation=private", "bash", "-c", inside],
        env={"PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_boot_fails_when_mount_exits_0_without_mounting_the_scratch(
    tmp_path: Path, loop_device: str
) -> None:
    # Given a volume that already has a file system, but not the boot's label: blkid finds a
    # file system (no mkfs), and `mount` with fstab's nofail finds no LABEL=s3w-scratch and
    # exits 0 without mounting anything.
    subprocess.run(["mkfs.xfs", "-q", "-L", "not-scratch", loop_device], check=True)
    result = run_boot(tmp_path, loop_device)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "is not mounted" in output, output
    assert_stopped_before_the_root_disk(tmp_path)


def test_boot_fails_when_the_label_names_another_volume(tmp_path: Path, loop_device: str) -> None:
    # Given another attached volume carrying the boot's label (a restored snapshot of a worker's
    # scratch, or another test's volume on this host) and a scratch device with a foreign file
    # system: `mount LABEL=s3w-scratch` mounts the other volume and exits 0. The boot must see
    # that its own device is not the one mounted, and stop.
    subprocess.run(["mkfs.xfs", "-q", "-L", "not-scratch", loop_device], check=True)
    with attached(tmp_path / "other.img") as other:
        subprocess.run(["mkfs.xfs", "-q", "-L", "s3w-scratch", other], check=True)
        result = run_boot(tmp_path, loop_device)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"is not mounted from {loop_device}" in output, output
    assert_stopped_before_the_root_disk(tmp_path)


def assert_stopped_before_the_root_disk(tmp_path: Path) -> None:
    calls = (tmp_path / "calls").read_text() if (tmp_path / "calls").exists() else ""
    assert "useradd" not in calls, calls  # the boot stopped before using the scratch dir
    assert "enable" not in calls, calls
