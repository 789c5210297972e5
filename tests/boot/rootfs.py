"""The worker's OS for the boot test: a Debian bookworm tree from debootstrap, cached.

`python -m tests.boot.rootfs` (run by `make boot-test` before pytest) builds it once under
.cache/boot/rootfs-<key>, where the key hashes everything that goes into it (suite, mirror,
packages, this recipe's version); a changed recipe builds a new tree and removes old ones.
Each boot runs on a throw-away overlay of it (see container.py), so the cache stays clean.

What the worker's image must provide, and why each package is here:
- systemd, systemd-sysv, dbus, udev: systemd as PID 1 (udevadm is called by the boot script);
- python3.11, python3.11-venv: the boot script's `python3.11 -m venv` (bookworm's python3 is
  3.11, installed as /usr/bin/python3.11, as on Amazon Linux 2023 with python3.11);
- curl: the user data's IMDSv2 calls; xfsprogs: mkfs.xfs for the scratch volume;
- util-linux, mount, passwd (useradd), bsdutils (logger), tar, gzip: in debootstrap's minbase.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "boot"
SUITE = "bookworm"
# The Debian registry this machine's apt uses (/etc/apt/sources.list.d/debian.sources).
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "udev",
    "python3.11",
    "python3.11-venv",
    "python3-distutils",  # provides python3.11-distutils (venv needs it): debootstrap does not
    "python3-lib2to3",  # resolve virtual packages, nor this dependency of python3-distutils
    "curl",
    "ca-certificates",
    "xfsprogs",
    "procps",
)
RECIPE_VERSION = 1  # bump when `_configure` changes
BUILD_TIMEOUT_SECONDS = 1800


def key() -> str:
    recipe = {"suite": SUITE, "mirror": MIRROR, "packages": PACKAGES, "v": RECIPE_VERSION}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def path() -> Path:
    return CACHE / f"rootfs-{key()}"


def ensure() -> Path:
    """The cached tree, built when missing (a partial build is never left under the key)."""
    target = path()
    if (target / "usr/lib/systemd/systemd").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(partial),
            MIRROR,
        ],
        check=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    _configure(partial)
    partial.rename(target)
    for old in CACHE.glob("rootfs-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _configure(tree: Path) -> None:
    """What an EC2 image has and debootstrap does not: a persistent journal, no machine id
    (each boot gets a fresh one, as a new instance does), and the apt caches dropped."""
    (tree / "var/log/journal").mkdir(parents=True, exist_ok=True)
    (tree / "etc/machine-id").write_text("")
    shutil.rmtree(tree / "var/cache/apt/archives", ignore_errors=True)
    (tree / "var/cache/apt/archives/partial").mkdir(parents=True)


if __name__ == "__main__":
    print(ensure())
    sys.exit(0)
