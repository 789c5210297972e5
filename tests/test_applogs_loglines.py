"""A log file's lines, `chunk_rows` at a time: numbered, decoded, undecodable ones marked."""

from __future__ import annotations

import gzip
from itertools import pairwise
from pathlib import Path

import pytest
from s3worker.processors.applogs import loglines
from s3worker.processors.applogs.loglines import iter_log_lines

Chunks = list[tuple[int, list[str], list[int]]]


def read(src: Path, chunk_rows: int, encoding: str = "utf-8") -> Chunks:
    """The chunks as lists, checked to be at most `chunk_rows` lines, numbered in sequence."""
    chunks = [(start, lines.to_pylist(), bad) for start, lines, bad in iter_log_lines(
        src, chunk_rows, encoding
    )]  # fmt: skip
    for (start, lines, _), (after, _, _) in pairwise(chunks):
        assert after == start + len(lines)  # no gap, no overlap
    assert all(0 < len(lines) <= chunk_rows for _, lines, _ in chunks)
    return chunks


def lines_of(chunks: Chunks) -> list[str]:
    return [line for _, lines, _ in chunks for line in lines]


def bad_lines(chunks: Chunks) -> list[int]:
    """The numbers of the lines marked undecodable."""
    return [start + i for start, _, bad in chunks for i in bad]


@pytest.mark.parametrize("packed", [False, True])
def test_lines_come_in_numbered_chunks_with_empty_lines_kept(tmp_path: Path, packed: bool) -> None:
    body = "GET /a\n\nGET /b\r\nGET /ç\nGET /d\n".encode()
    src = tmp_path / "access.log"
    src.write_bytes(gzip.compress(body) if packed else body)
    lines = ["GET /a", "", "GET /b", "GET /ç", "GET /d"]  # CRLF ends a line as LF does
    assert read(src, 100) == [(0, lines, [])]
    small = read(src, 2)
    assert lines_of(small) == lines
    assert bad_lines(small) == []


def test_a_last_line_without_a_newline_is_read_and_an_empty_file_gives_nothing(
    tmp_path: Path,
) -> None:
    src = tmp_path / "access.log"
    src.write_bytes(b"one\ntwo")
    assert read(src, 10) == [(0, ["one", "two"], [])]
    src.write_bytes(b"")
    assert read(src, 10) == []
    src.write_bytes(gzip.compress(b""))
    assert read(src, 10) == []


def test_a_line_that_is_not_utf8_is_marked_where_it_is_in_its_chunk(tmp_path: Path) -> None:
    src = tmp_path / "access.log"
    src.write_bytes(b"ok 1\nok 2\nok 3\nbad \xff byte\nok 5\n")
    for chunk_rows in (2, 3, 100):
        chunks = read(src, chunk_rows)
        assert lines_of(chunks) == ["ok 1", "ok 2", "ok 3", "bad \ufffd byte", "ok 5"]
        assert bad_lines(chunks) == [3]


def test_chunks_span_the_blocks_the_reader_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks far smaller than a chunk: lines are carried from block to block in order
    monkeypatch.setattr(loglines, "BLOCK_BYTES", 1 << 10)
    lines = [f"10.0.0.{i % 250} GET /page/{i}" for i in range(5_000)]
    src = tmp_path / "access.log"
    src.write_text("\n".join(lines) + "\n")
    chunks = read(src, 1_234)
    assert lines_of(chunks) == lines
    assert len(chunks) >= 5


def test_a_line_holding_the_separator_is_kept_whole_at_its_blocks_end(tmp_path: Path) -> None:
    src = tmp_path / "access.log"
    src.write_bytes(b"first\nodd \x1f line\nlast\n")
    assert lines_of(read(src, 10)) == ["first", "last", "odd \x1f line"]


def test_each_line_holding_the_separator_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loglines, "BLOCK_BYTES", 1 << 10)
    lines = [f"line {i}" if i % 300 else f"odd \x1f {i}" for i in range(1, 1_000)]
    src = tmp_path / "access.log"
    src.write_text("\n".join(lines) + "\n")
    read_back = lines_of(read(src, 10_000))
    assert sorted(read_back) == sorted(lines)
    assert [line for line in read_back if "\x1f" in line] == ["odd \x1f 300", "odd \x1f 600",
                                                             "odd \x1f 900"]  # fmt: skip


def test_another_encoding_goes_through_the_transcoding_reader(tmp_path: Path) -> None:
    src = tmp_path / "access.log"
    src.write_bytes("GET /situação\nGET /ação\n".encode("cp1252"))
    assert read(src, 10, encoding="cp1252") == [(0, ["GET /situação", "GET /ação"], [])]
    utf16 = tmp_path / "utf16.log"
    utf16.write_bytes("GET /ç\r\nGET /b\r\n".encode("utf-16"))
    assert read(utf16, 1, encoding="utf-16-le") == [(0, ["GET /ç"], []), (1, ["GET /b"], [])]


def test_lines_come_in_order_in_runs_of_at_most_chunk_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a log the reader splits into several blocks
    monkeypatch.setattr(loglines, "BLOCK_BYTES", 1 << 10)
    lines = [
        f'10.0.0.{i % 250} - - [17/May/2015:10:05:03 +0000] "GET /{i} HTTP/1.1" 200 1'
        for i in range(500)
    ]
    src = tmp_path / "access.log"
    src.write_text("\n".join(lines) + "\n")
    # when
    runs = list(iter_log_lines(src, 7, "utf-8"))
    # then
    assert all(len(run) <= 7 for _, run, _ in runs)
    assert len({len(run) for _, run, _ in runs}) > 1  # cut where the blocks end
    expected = 0
    for start, run, _ in runs:
        assert start == expected
        expected += len(run)
    assert [line for _, run, _ in runs for line in run.to_pylist()] == lines
