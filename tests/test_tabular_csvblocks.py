"""Newline-aligned blocks, and parsing them on threads with the results in file order."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from s3worker.processors.tabular import csvblocks
from s3worker.processors.tabular.csvblocks import newline_blocks, ordered_map


def test_blocks_end_at_line_breaks_and_hold_every_byte_once() -> None:
    data = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(500)) + b"9,9"
    blocks = list(newline_blocks(io.BytesIO(data), 64))
    assert b"".join(blocks) == data
    assert all(bytes(b).endswith((b"\n", b"\r")) for b in blocks[:-1])
    assert len(blocks) > 50


def test_a_row_longer_than_a_block_runs_into_the_next() -> None:
    data = b"a\n" + b"x" * 100 + b"\nb\n"
    assert list(newline_blocks(io.BytesIO(data), 64)) == [b"a\n", b"x" * 100 + b"\nb\n"]


def test_a_row_past_two_blocks_is_refused_with_the_readers_error() -> None:
    with pytest.raises(pa.ArrowInvalid, match="straddl"):
        list(newline_blocks(io.BytesIO(b"a\n" + b"x" * 200 + b"\n"), 64))


def test_results_come_in_block_order_when_a_later_block_finishes_first() -> None:
    # given work on block 0 that cannot finish before block 1's has
    second_done = threading.Event()

    def work(block: bytes, first: bool) -> tuple[bytes, bool]:
        if block == b"0":
            assert second_done.wait(timeout=10)
        if block == b"1":
            second_done.set()
        return block, first

    # then the results still come as the blocks did, the first one flagged
    out = list(ordered_map(work, iter([b"0", b"1", b"2", b"3"])))
    assert out == [(b"0", True), (b"1", False), (b"2", False), (b"3", False)]


def test_a_failure_comes_at_its_blocks_turn() -> None:
    def work(block: bytes, first: bool) -> bytes:
        if block == b"2":
            raise ValueError("bad block")
        return block

    out = ordered_map(work, iter([b"0", b"1", b"2", b"3"]))
    assert [next(out), next(out)] == [b"0", b"1"]
    with pytest.raises(ValueError, match="bad block"):
        next(out)


def test_closing_early_leaves_the_rest_of_the_stream_unread() -> None:
    read: list[int] = []

    def blocks() -> Iterator[bytes]:
        for i in range(100):
            read.append(i)
            yield b"%d" % i

    out = ordered_map(lambda block, first: block, blocks())
    assert next(out) == b"0"
    out.close()
    # at most the blocks in flight were read beyond the one taken
    assert len(read) <= csvblocks.AHEAD + 1


@pytest.mark.parametrize(
    "data",
    [
        b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(500)) + b"9,9",
        b"a\n" + b"x" * 100 + b"\nb\n",
        b"ab\r\n1\r2\r\n" * 40 + b"end",  # 9 bytes: windows end after a \r too
    ],
)
def test_mapped_blocks_cut_where_the_stream_is_cut(tmp_path: Path, data: bytes) -> None:
    src = tmp_path / "f.csv"
    src.write_bytes(data)
    mapped = [bytes(b) for b in csvblocks.mapped_blocks(src, 64)]
    assert mapped == [bytes(b) for b in newline_blocks(io.BytesIO(data), 64)]


def test_mapped_blocks_refuse_a_row_past_two_blocks(tmp_path: Path) -> None:
    src = tmp_path / "f.csv"
    src.write_bytes(b"a\n" + b"x" * 200 + b"\n")
    with pytest.raises(pa.ArrowInvalid, match="straddl"):
        list(csvblocks.mapped_blocks(src, 64))
    src.write_bytes(b"")
    assert list(csvblocks.mapped_blocks(src, 64)) == []
