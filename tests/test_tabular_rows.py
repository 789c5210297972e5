"""What the readers hand over: bounded lines (a long line cut and flagged), reject reasons."""

from __future__ import annotations

import io

import pyarrow as pa
from s3worker.processors.tabular.rows import Chunk, Reject, bounded_lines, undecodable


def test_lines_within_the_limit_come_as_they_are() -> None:
    f = io.StringIO("a,b\r\n1,2\nlast")
    assert list(bounded_lines(f, limit=10)) == [
        ("a,b\r\n", False),
        ("1,2\n", False),
        ("last", False),
    ]


def test_a_long_line_is_cut_at_the_limit_and_the_rest_of_it_dropped() -> None:
    # given a 25-character line between two short ones, and a limit of 8
    f = io.StringIO("short\n" + "x" * 25 + "\nnext\n")
    # when read
    lines = list(bounded_lines(f, limit=8))
    # then the long line is its first 8 characters, flagged; reading goes on after it
    assert lines == [("short\n", False), ("x" * 8, True), ("next\n", False)]


def test_a_line_exactly_at_the_limit_with_its_break_is_not_long() -> None:
    # 7 characters and the line break make 8: whole, not cut
    f = io.StringIO("1234567\n" + "y" * 8 + "z\n")
    assert list(bounded_lines(f, limit=8)) == [("1234567\n", False), ("y" * 8, True)]


def test_a_long_last_line_without_a_break_is_flagged() -> None:
    assert list(bounded_lines(io.StringIO("q" * 20), limit=5)) == [("q" * 5, True)]


def test_undecodable_reason_names_the_encoding() -> None:
    assert undecodable("cp1252") == "undecodable bytes for the file's encoding (cp1252)"


def test_a_chunk_starts_with_no_rejects_of_its_own() -> None:
    a, b = Chunk(pa.table({"x": ["1"]}), 0), Chunk(pa.table({"x": ["2"]}), 1)
    a.rejects.append(Reject(3, "why", "raw"))
    assert b.rejects == []
    assert a.rejects == [Reject(3, "why", "raw")]
