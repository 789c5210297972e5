"""`make help` and `make deploy`'s checks, run as a person runs them (no AWS, nothing built)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make(*targets: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *targets],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def phony_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {t for line in re.findall(r"^\.PHONY:(.*)$", text, re.M) for t in line.split()}


def test_help_lists_every_target() -> None:
    result = make("help")
    assert result.returncode == 0
    listed = set(re.findall(r"^make ([a-z-]+)", result.stdout, re.M))
    assert listed == phony_targets()


def test_deploy_without_stack_prints_usage_before_building() -> None:
    result = make("deploy")
    assert result.returncode == 2
    assert result.stdout.startswith("usage: make deploy STACK=name REGION=region")
    assert "pip" not in result.stdout + result.stderr  # the bundle was not built


def test_deploy_without_credentials_stops_before_building(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # No profile, no keys and no instance to ask: what a fresh laptop has.
    env |= {"HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"}
    result = make("deploy", "STACK=s", "REGION=eu-west-1", env=env)
    assert result.returncode == 2
    assert "no usable AWS credentials for eu-west-1" in result.stdout
    assert "pip" not in result.stdout + result.stderr
