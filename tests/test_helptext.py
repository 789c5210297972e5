"""helptext.py: what `--help` says beyond the flags (variables, examples, exit codes)."""

from __future__ import annotations

import re
from pathlib import Path

from s3worker import helptext
from s3worker.exits import describe

CONFIG = Path(__file__).resolve().parents[1] / "daemon" / "s3worker" / "config.py"


def test_the_variables_are_exactly_those_config_reads() -> None:
    read = set(re.findall(r'"(S3WORKER_[A-Z_]+)"', CONFIG.read_text()))
    listed = [name for name, _, _ in helptext.VARIABLES]
    assert len(listed) == len(set(listed))
    assert {n for n in listed if n.startswith("S3WORKER_")} == read
    assert "AWS_REGION" in listed


def test_run_epilog_aligns_each_variable_with_its_meaning_and_default() -> None:
    text = helptext.run_epilog()
    width = max(len(name) for name, _, _ in helptext.VARIABLES)
    assert text.startswith("environment (on an instance: /etc/s3worker/s3worker.env")
    for name, meaning, default in helptext.VARIABLES:
        assert f"\n  {name:<{width}}  {meaning} [{default}]\n" in text
    assert "  S3WORKER_IDLE_ACTION " in text
    assert text.endswith(describe())


def test_top_epilog_is_the_examples_then_the_exit_codes() -> None:
    text = helptext.top_epilog()
    examples, codes = text.split("\n\n")
    assert examples == helptext.EXAMPLES
    assert codes == describe()
    commands = re.findall(r"^  s3worker (\w+)", helptext.EXAMPLES, re.M)
    for command in ("sample", "process", "upload", "status", "results", "query", "dlq"):
        assert command in commands
