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

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
