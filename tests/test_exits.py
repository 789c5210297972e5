"""exits.py: one exit-code table, and the text `--help` prints from it."""

from __future__ import annotations

from s3worker import exits
from s3worker.errors import S3WorkerError


def test_every_code_is_distinct_and_described_once() -> None:
    codes = [code for code, _ in exits.TABLE]
    assert codes == [
        exits.OK, exits.FAILED, exits.USAGE, exits.PENDING, exits.UNREACHABLE, exits.INTERRUPTED,
    ]  # fmt: skip
    assert len(set(codes)) == len(codes)
    assert exits.OK == 0  # systemd's Restart=on-failure leaves 0 alone
    assert exits.INTERRUPTED == 130  # 128 + SIGINT, as shells report it


def test_describe_prints_one_aligned_line_per_code() -> None:
    text = exits.describe()
    header, *rows = text.splitlines()
    assert header == "exit codes:"
    assert len(rows) == len(exits.TABLE)
    for row, (code, meaning) in zip(rows, exits.TABLE, strict=True):
        assert row == f"  {code:<4} {meaning}"
    assert rows[-1] == "  130  interrupted (Ctrl-C, SIGTERM)"


def test_a_usage_error_is_one_of_the_products_errors() -> None:
    err = exits.UsageError("--out: no such directory")
    assert isinstance(err, S3WorkerError)
    assert str(err) == "--out: no such directory"
