"""`make package`: the same sources give the same bundle, byte for byte, hence one name (the
name is the stack's ArtifactKey: a new one replaces the canary on `make deploy`).

Builds from PyPI, so it runs with `make boot-test`, right after that built dist/'s bundle.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.boot

ROOT = Path(__file__).resolve().parents[1]


def test_a_second_build_of_the_same_sources_has_the_same_name(tmp_path: Path) -> None:
    first = sorted(p.name for p in (ROOT / "dist").glob("s3worker-x86_64-*.tar.gz"))
    assert len(first) == 1, "run `make package ARCH=x86_64` first (make boot-test does)"
    subprocess.run(
        ["make", "--no-print-directory", "package", "ARCH=x86_64", f"DIST={tmp_path}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    second = sorted(p.name for p in tmp_path.glob("s3worker-x86_64-*.tar.gz"))
    assert second == first


def test_the_worker_bundle_carries_the_daemon_and_not_the_operator_extra() -> None:
    import tarfile

    (bundle,) = (ROOT / "dist").glob("s3worker-x86_64-*.tar.gz")
    with tarfile.open(bundle) as tar:
        wheels = {Path(n).name.split("-")[0].lower() for n in tar.getnames() if n.endswith(".whl")}
    # What the daemon needs is there; boto3 (only the operator CLI uses it) is not.
    assert {"s3worker", "aiobotocore", "botocore", "pandas", "pyarrow", "structlog"} <= wheels
    assert not wheels & {"boto3", "s3transfer"}
