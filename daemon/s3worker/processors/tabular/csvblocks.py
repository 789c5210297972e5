"""A CSV byte stream cut into newline-aligned blocks, parsed on threads, handed over in order.

pyarrow's streaming CSV reader parses one block after another (on a 2-core machine it kept
about one core busy), while its whole-file `read_csv` would hold the whole file. Cutting the
stream at line breaks, as the streaming reader's own chunker does when values hold no line
breaks (`newlines_in_values=False`, our setting), gives blocks that parse independently: each
one goes to `pyarrow.csv.read_csv` on a thread of a small pool, a few at a time, so memory
stays bounded, and the results come back in file order. Each block has its own reject list,
so the rejects keep file order too.
"""

from __future__ import annotations

import mmap
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

T = TypeVar("T")
PARSERS = 2  # threads parsing blocks: the machine's cores (pyarrow releases the GIL)
AHEAD = 3  # blocks submitted at once: the parsers' and one parsed, waiting to be taken
# The streaming reader's message for a row past two blocks, which reading._guarded explains.
STRADDLING = "straddling object straddles two block boundaries"


def newline_blocks(stream: Any, block_bytes: int) -> Iterator[memoryview]:
    """`stream`'s bytes in pieces of about `block_bytes`, each ending at a line break (the
    last one at the end of the stream). A row may run over one block into the next, as in
    the streaming reader; a row longer than that is refused with the reader's own error.

    The pieces are views, not copies: a block is the bytes read up to their last line break,
    behind the row the block before left open, put together by numpy (which lets the other
    threads run while it copies; joining bytes held them up a few milliseconds a block)."""
    carry = b""  # the row the last block left open (no line break in it)
    while True:
        data = stream.read(block_bytes)
        if not data:
            if carry:
                yield memoryview(carry)
            return
        cut = data.rfind(b"\n")
        cut = max(cut, data.rfind(b"\r", cut + 1))  # only a later \r moves the cut
        if cut < 0:
            carry += data
            if len(carry) >= 2 * block_bytes:
                raise pa.ArrowInvalid(STRADDLING)
            continue
        yield _joined(carry, data, cut + 1)
        carry = data[cut + 1 :]


def mapped_blocks(src: Path, block_bytes: int) -> Iterator[memoryview]:
    """`newline_blocks` of an uncompressed file, cut at the same places, as views of the file
    mapped into memory: no read copies it and no join puts a row's two halves together (the
    parser threads read the pages themselves, with the GIL released). The stream's reads
    are emulated: window k is the file's bytes [k*block_bytes, (k+1)*block_bytes), cut at its
    last line break, a row open past two blocks is refused."""
    with src.open("rb") as f:
        size = f.seek(0, 2)
        if not size:
            return
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mm)
    try:
        start = 0  # the first byte of the next block (the open row's start)
        # Pages of blocks AHEAD + 1 behind are dropped from the mapping (they stay in the
        # page cache), or the RSS would grow to the file's size. A page still read is only
        # faulted in again: the bytes come back from the file, unchanged.
        starts: deque[int] = deque()
        dropped = 0
        for lo in range(0, size, block_bytes):
            hi = min(lo + block_bytes, size)
            cut = mm.rfind(b"\n", lo, hi)
            cut = max(cut, mm.rfind(b"\r", max(cut + 1, lo), hi))
            if cut < 0:
                if hi - start >= 2 * block_bytes:
                    raise pa.ArrowInvalid(STRADDLING)
                continue
            yield view[start : cut + 1]
            start = cut + 1
            starts.append(start)
            if len(starts) > AHEAD + 1:  # parsed: its pages leave the RSS (see below)
                done = starts.popleft() // mmap.PAGESIZE * mmap.PAGESIZE
                mm.madvise(mmap.MADV_DONTNEED, dropped, done - dropped)
                dropped = done
        if start < size:
            yield view[start:size]
    finally:
        with suppress(BufferError):  # a block still held (a parse cut short): unmapped by gc
            view.release()
            mm.close()


def _joined(head: bytes, data: bytes, n: int) -> memoryview:
    """`head` followed by the first `n` bytes of `data`."""
    if not head:
        return memoryview(data)[:n]
    out = np.empty(len(head) + n, dtype=np.uint8)
    out[: len(head)] = np.frombuffer(head, dtype=np.uint8)
    out[len(head) :] = np.frombuffer(data, dtype=np.uint8, count=n)
    return out.data


def ordered_map(work: Callable[[memoryview, bool], T], blocks: Iterator[memoryview]) -> Iterator[T]:
    """`work(block, first)` of every block, computed on PARSERS threads at most AHEAD
    blocks ahead of the consumer, handed over in the blocks' order. A failure is raised
    where its block would have been handed over; closing the iterator early cancels what is
    still queued and waits for what is running."""
    pending: deque[Future[T]] = deque()
    with ThreadPoolExecutor(PARSERS, thread_name_prefix="csv-parse") as pool:
        try:
            first = True
            for block in blocks:
                pending.append(pool.submit(work, block, first))
                first = False
                if len(pending) >= AHEAD:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
