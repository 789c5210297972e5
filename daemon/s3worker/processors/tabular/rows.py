"""What the readers hand over: chunks of string columns, rejects, bounded lines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import pyarrow as pa

MAX_LINE_CHARS = 8 << 20  # a JSON line, a log line or a CSV header longer than this: refused
RAW_LIMIT = 1000  # characters of a rejected row kept for the report


@dataclass
class Reject:
    """A row that never became a record: where (if known), why, and what it looked like."""

    record: int | None
    reason: str
    raw: str


@dataclass
class Chunk:
    """Up to `chunk_rows` records as string columns; `start` numbers the first record."""

    table: pa.Table
    start: int
    rejects: list[Reject] = field(default_factory=list)


def undecodable(encoding: str) -> str:
    """The reject reason of a row holding bytes `encoding` cannot decode."""
    return f"undecodable bytes for the file's encoding ({encoding})"


def bounded_lines(f: IO[str], limit: int = MAX_LINE_CHARS) -> Iterator[tuple[str, bool]]:
    """Lines of at most `limit` characters, and whether the line was longer (the rest of a
    long line is read and dropped, so memory holds at most `limit` characters)."""
    while line := f.readline(limit):
        if len(line) < limit or line.endswith("\n"):
            yield line, False
            continue
        while (rest := f.readline(limit)) and not rest.endswith("\n"):
            pass
        yield line, True
