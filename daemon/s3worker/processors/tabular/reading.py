"""Stream any supported input as chunks of string columns, whatever its text format.

CSV goes through pyarrow's streaming reader (fast, multi-threaded parsing); JSON lines and
JSON arrays are decoded record by record. Every column comes out as strings: typing is the
processor's business, so one bad value rejects one row instead of failing the whole file.
Rows the parser cannot split (wrong column count, invalid JSON) are handed over as rejects.

The encoding is detected from the first bytes (`base.detect_encoding`): UTF-8 goes to pyarrow
as is, anything else is transcoded to UTF-8 on the way in. A row holding bytes its encoding
cannot decode is rejected with that reason; the rest of the file is read.
"""

from __future__ import annotations

import gzip
import queue
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import pyarrow as pa

from s3worker.errors import BadDataError
from s3worker.processors.base import (
    UNDECODABLE,
    Sample,
    describe_gzip_damage,
    gzip_damage,
    open_text,
    read_sample,
)
from s3worker.processors.options import Options
from s3worker.processors.sniffing import detect_format
from s3worker.processors.tabular.csvread import CSV_BLOCK_BYTES, csv_batches, rebatch
from s3worker.processors.tabular.jsonread import (
    json_array_records,
    jsonl_records,
    records_to_chunks,
)
from s3worker.processors.tabular.rows import (
    RAW_LIMIT,
    Chunk,
    Reject,
    bounded_lines,
    undecodable,
)

# The processors import these from here, the module they read files with.
__all__ = [
    "RAW_LIMIT",
    "Chunk",
    "Reject",
    "input_encoding",
    "input_format",
    "iter_chunks",
    "iter_lines",
    "prefetch",
    "undecodable",
]
T = TypeVar("T")


def input_format(src: Path, sample: Sample | None = None) -> str:
    """`csv`, `json`, `jsonl`, `clf` or `text`, decided from the (gunzipped) content."""
    return detect_format((sample or read_sample(src, key=src.name)).text)


def input_encoding(src: Path, sample: Sample | None = None) -> str:
    """The text encoding the reader uses for `src` (reported in each processor's summary)."""
    return (sample or read_sample(src, key=src.name)).encoding


def iter_chunks(
    src: Path, chunk_rows: int, sample: Sample | None = None, options: Options | None = None
) -> Iterator[Chunk]:
    """Every record of a CSV, JSON or JSON-lines file (gzip or not), `chunk_rows` at a time.

    `sample` is what routing read (read again only when not given); `options` may name the
    delimiter or, for a header-less CSV, the columns."""
    sample = sample or read_sample(src, key=src.name)
    options = options or Options()
    fmt, encoding = detect_format(sample.text), sample.encoding
    if options.header is not None and fmt not in ("json", "jsonl"):
        fmt = "csv"
    if fmt == "csv":
        yield from _guarded(src, rebatch(csv_batches(src, encoding, options), chunk_rows))
    elif fmt == "jsonl":
        with open_text(src, encoding) as f:
            yield from _guarded(src, records_to_chunks(jsonl_records(f, encoding), chunk_rows))
    elif fmt == "json":
        with open_text(src, encoding) as f:
            records = json_array_records(f, encoding)
            yield from _guarded(src, records_to_chunks(records, chunk_rows))
    elif sample.damaged_at is not None:
        raise BadDataError(describe_gzip_damage(sample.damaged_at, src.stat().st_size))
    else:
        raise BadDataError(f"expected CSV, JSON or JSON lines, found {fmt} content")


def iter_lines(src: Path, chunk_rows: int) -> Iterator[tuple[int, list[str], list[int]]]:
    """Text lines in lists of `chunk_rows`, with the line number of the first, and the
    positions in the list of lines with undecodable bytes (shown there as U+FFFD).
    A line longer than MAX_LINE_CHARS is cut there (and the rest of it skipped)."""
    with open_text(src) as f:
        yield from _guarded(src, _line_batches(f, chunk_rows))


def _line_batches(f: IO[str], chunk_rows: int) -> Iterator[tuple[int, list[str], list[int]]]:
    batch: list[str] = []
    bad: list[int] = []
    start = 0
    for number, (line, _) in enumerate(bounded_lines(f)):
        if not batch:
            start = number
        text = line.rstrip("\r\n")
        if UNDECODABLE in text:
            bad.append(len(batch))
            text = text.replace(UNDECODABLE, "\ufffd")
        batch.append(text)
        if len(batch) >= chunk_rows:
            yield start, batch, bad
            batch, bad = [], []
    if batch:
        yield start, batch, bad


def _guarded(src: Path, items: Iterator[T]) -> Iterator[T]:
    """`items`, with a broken gzip stream or an over-long CSV row reported as what it is."""
    try:
        yield from items
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BadDataError(_gzip_message(src, exc)) from None
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        text = str(exc)
        if "straddl" in text:
            raise BadDataError(
                f"a CSV row is longer than {CSV_BLOCK_BYTES >> 20} MiB (the reader's block "
                "size): usually a missing line break or an unclosed quote; keep rows shorter"
            ) from None
        if any(w in text.lower() for w in ("gzip", "zlib", "inflate", "compress")):
            raise BadDataError(_gzip_message(src, exc)) from None
        raise


def _gzip_message(src: Path, exc: BaseException) -> str:
    return f"{describe_gzip_damage(gzip_damage(src), src.stat().st_size)} ({exc})"


def prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """`items`, produced by a background thread at most `depth` ahead of the consumer.

    Parsing and converting the next chunk (pyarrow and numpy, which release the GIL) then
    overlaps the analysis of this one, on a second core. Memory: `depth` + 2 chunks at most.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _offer(slots, ("item", item), stop):
                    return
            _offer(slots, ("end", None), stop)
        except BaseException as exc:  # handed to the consumer, raised there
            _offer(slots, ("error", exc), stop)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


def _offer(
    slots: queue.Queue[tuple[str, Any]], item: tuple[str, Any], stop: threading.Event
) -> bool:
    """Put unless the consumer has gone (it stops taking, and says so through `stop`)."""
    while not stop.is_set():
        try:
            slots.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False
