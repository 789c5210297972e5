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

import codecs
import csv
import gzip
import json
import queue
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from s3worker.errors import BadDataError
from s3worker.processors.base import (
    GZIP_MAGIC,
    UNDECODABLE,
    UNDECODABLE_ERRORS,
    Sample,
    codec_of,
    describe_gzip_damage,
    gzip_damage,
    open_text,
    read_sample,
)
from s3worker.processors.options import Options
from s3worker.processors.sniffing import delimiter_of, detect_format

CSV_BLOCK_BYTES = 8 << 20  # also the longest CSV row pyarrow can read
JSON_BLOCK_CHARS = 1 << 20
MAX_LINE_CHARS = 8 << 20  # a JSON line, a log line or a CSV header longer than this: refused
MAX_JSON_VALUE_CHARS = 64 << 20  # one element of a JSON array
LONG_ROW_BYTES = 64 << 10  # a batch averaging more per row is checked for over-long rows
MAX_COLUMNS = 4_096  # a wider header is refused (a header of a million names is a memory bomb)
RAW_LIMIT = 1000  # characters of a rejected row kept for the report
T = TypeVar("T")


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


def input_format(src: Path, sample: Sample | None = None) -> str:
    """`csv`, `json`, `jsonl`, `clf` or `text`, decided from the (gunzipped) content."""
    return detect_format((sample or read_sample(src, key=src.name)).text)


def input_encoding(src: Path, sample: Sample | None = None) -> str:
    """The text encoding the reader uses for `src` (reported in each processor's summary)."""
    return (sample or read_sample(src, key=src.name)).encoding


def undecodable(encoding: str) -> str:
    """The reject reason of a row holding bytes `encoding` cannot decode."""
    return f"undecodable bytes for the file's encoding ({encoding})"


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
        yield from _guarded(src, _rebatch(_csv_batches(src, encoding, options), chunk_rows))
    elif fmt == "jsonl":
        with open_text(src, encoding) as f:
            yield from _guarded(src, _records_to_chunks(_jsonl_records(f, encoding), chunk_rows))
    elif fmt == "json":
        with open_text(src, encoding) as f:
            records = _json_array_records(f, encoding)
            yield from _guarded(src, _records_to_chunks(records, chunk_rows))
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


# --- CSV -------------------------------------------------------------------------------


def _csv_header(src: Path, encoding: str, options: Options) -> tuple[list[str], str, int]:
    """Column names, delimiter and rows to skip (1, or 0 when the options give the header)."""
    with open_text(src, encoding) as f:
        line, too_long = next(bounded_lines(f), ("", False))
    if too_long:
        raise BadDataError(
            f"the first line is longer than {MAX_LINE_CHARS >> 20} MiB characters: not a CSV "
            "header (a file without line breaks?)"
        )
    header = line.lstrip("\ufeff").rstrip("\r\n").replace(UNDECODABLE, "\ufffd")
    delimiter = options.delimiter or delimiter_of(header) or ","
    if options.header is not None:
        return list(options.header), delimiter, 0
    names = next(csv.reader([header], delimiter=delimiter), [])
    if len(names) > MAX_COLUMNS:
        raise BadDataError(
            f"the header has {len(names):,} columns; at most {MAX_COLUMNS:,} are read "
            "(a header that wide is usually not a header: check the delimiter, or name the "
            "columns with the header option)"
        )
    # Duplicate or empty names would make pyarrow's column_types ambiguous.
    seen: dict[str, int] = {}
    unique = []
    for i, name in enumerate(names):
        base = name.strip() or f"column_{i}"
        seen[base] = seen.get(base, 0) + 1
        unique.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return unique, delimiter, 1


def _csv_batches(
    src: Path, encoding: str, options: Options
) -> Iterator[tuple[pa.RecordBatch, list[Reject]]]:
    names, delimiter, skip = _csv_header(src, encoding, options)
    rejects: list[Reject] = []

    def invalid_row(row: Any) -> str:
        reason = f"expected {row.expected_columns} columns, found {row.actual_columns}"
        rejects.append(Reject(None, reason, str(row.text)[:RAW_LIMIT]))
        return "skip"

    compression = "gzip" if _is_gzip(src) else None
    stream: Any = pa.input_stream(str(src), compression=compression)
    if encoding not in ("utf-8", "utf-8-sig"):
        stream = _Utf8Stream(stream, encoding)
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(
            column_names=names, skip_rows=skip, block_size=CSV_BLOCK_BYTES, use_threads=True
        ),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=invalid_row),
        # Binary, so that invalid UTF-8 rejects its row rather than the file (see _as_text).
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.binary()),
            strings_can_be_null=True,
            null_values=[""],  # only an empty cell is missing: "NaN" or "NA" is a value
        ),
    )
    schema = pa.schema([(name, pa.string()) for name in names])
    for read in reader:
        long = read.nbytes > LONG_ROW_BYTES * max(read.num_rows, 1)
        batch = _drop_long_rows(read, rejects) if long else read
        yield _as_text(batch, schema, delimiter, encoding, rejects), rejects[:]
        rejects.clear()
    if rejects:
        yield pa.RecordBatch.from_pylist([], schema=schema), rejects[:]


def _drop_long_rows(batch: pa.RecordBatch, rejects: list[Reject]) -> pa.RecordBatch:
    """Rows longer than MAX_LINE_CHARS bytes become rejects (checked only in batches whose
    average row is suspiciously long, so ordinary files pay nothing)."""
    lengths = np.zeros(batch.num_rows, dtype=np.int64)
    for col in batch.columns:
        lengths += np.asarray(pc.fill_null(pc.binary_length(col), 0).to_numpy(), dtype=np.int64)
    long = lengths > MAX_LINE_CHARS
    if not long.any():
        return batch
    for i in np.flatnonzero(long).tolist():
        first = next((v for v in batch.slice(i, 1).to_pylist()[0].values() if v), b"")
        raw = first[:RAW_LIMIT].decode("utf-8", errors="replace")
        reason = f"row longer than {MAX_LINE_CHARS >> 20} MiB ({int(lengths[i]):,} bytes)"
        rejects.append(Reject(None, reason, raw))
    return batch.filter(pa.array(~long))


def _as_text(
    batch: pa.RecordBatch, schema: pa.Schema, delimiter: str, encoding: str, rejects: list[Reject]
) -> pa.RecordBatch:
    """The batch as strings; rows with bytes that are not UTF-8 go to `rejects`, not on.

    Transcoded input carries its undecodable bytes through as invalid UTF-8 (see _Utf8Stream),
    so one check covers every encoding. The cast is vectorised; rows are looked at one by one
    only in a batch that fails it.
    """
    try:
        return pa.RecordBatch.from_arrays(
            [col.cast(pa.string()) for col in batch.columns], schema=schema
        )
    except pa.ArrowInvalid:
        pass
    rows = batch.to_pylist()
    bad = [i for i, row in enumerate(rows) if not all(_utf8(v) for v in row.values())]
    for i in bad:
        raw = delimiter.join(
            (v or b"").decode("utf-8", errors="backslashreplace") for v in rows[i].values()
        )
        rejects.append(Reject(None, undecodable(encoding), raw[:RAW_LIMIT]))
    keep = np.ones(batch.num_rows, dtype=bool)
    keep[bad] = False
    return _as_text(batch.filter(pa.array(keep)), schema, delimiter, encoding, rejects)


def _utf8(value: bytes | None) -> bool:
    try:
        (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _Utf8Stream:
    """A byte stream in `encoding` read as UTF-8; undecodable bytes come out as invalid UTF-8."""

    def __init__(self, raw: Any, encoding: str) -> None:
        codec, self._bom = codec_of(encoding)
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(codec)(UNDECODABLE_ERRORS)
        self._out = b""
        self._eof = False
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._out) < size):
            block = self._raw.read(CSV_BLOCK_BYTES)
            if self._bom:
                block, self._bom = block[self._bom :], 0
            self._eof = not block
            text = self._decoder.decode(block, final=self._eof)
            self._out += text.encode("utf-8", errors="surrogateescape")
        if size < 0:
            size = len(self._out)
        data, self._out = self._out[:size], self._out[size:]
        return data

    def close(self) -> None:
        self.closed = True
        self._raw.close()


def _is_gzip(src: Path) -> bool:
    with src.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


def _rebatch(batches: Iterator[tuple[pa.RecordBatch, list[Reject]]], rows: int) -> Iterator[Chunk]:
    """Re-cut the reader's byte-sized blocks into chunks of exactly `rows` records."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    rejects: list[Reject] = []
    start = 0
    for batch, new_rejects in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        rejects.extend(new_rejects)
        while pending_rows >= rows:
            table = pa.Table.from_batches(pending)
            yield Chunk(table.slice(0, rows), start, rejects)
            start += rows
            rejects = []
            rest = table.slice(rows)
            pending, pending_rows = rest.to_batches(), rest.num_rows
    if pending_rows or rejects:
        schema = pending[0].schema if pending else pa.schema([])
        yield Chunk(pa.Table.from_batches(pending, schema=schema), start, rejects)


# --- JSON ------------------------------------------------------------------------------


def _jsonl_records(f: IO[str], encoding: str) -> Iterator[object | Reject]:
    for number, (line, too_long) in enumerate(bounded_lines(f)):
        text = line.strip()
        if too_long:
            reason = f"line {number + 1} is longer than {MAX_LINE_CHARS >> 20} MiB characters"
            yield Reject(None, reason, text[:RAW_LIMIT])
            continue
        if not text:
            continue
        if UNDECODABLE in text:
            raw = text.replace(UNDECODABLE, "\ufffd")[:RAW_LIMIT]
            yield Reject(None, f"{undecodable(encoding)} on line {number + 1}", raw)
            continue
        try:
            yield json.loads(text)
        except ValueError as exc:
            yield Reject(
                None, f"invalid JSON on line {number + 1}: {exc.args[0]}", text[:RAW_LIMIT]
            )


def _json_array_records(f: IO[str], encoding: str) -> Iterator[object | Reject]:
    """The elements of a top-level array, decoded one by one so memory stays bounded."""
    reader = _JsonArrayReader(f, encoding)
    if not reader.opens_array():
        yield from _wrapped_records(reader.rest())
        return
    yield from reader


def _wrapped_records(text: str) -> Iterator[object]:
    """`{"records": [...]}` (any key holding a list of objects) or one single object."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise BadDataError(f"invalid JSON: {exc}") from None
    if isinstance(obj, dict):
        lists = [v for v in obj.values() if isinstance(v, list)]
        yield from lists[0] if len(lists) == 1 else [obj]
    else:
        yield obj


class _JsonArrayReader:
    """Walks `[elem, elem, ...]` over a text stream with a bounded buffer."""

    def __init__(self, f: IO[str], encoding: str) -> None:
        self._f = f
        self._encoding = encoding
        self._buf = ""
        self._pos = 0
        self._start = 0
        self._eof = False
        self._decoder = json.JSONDecoder()

    def _fill(self) -> bool:
        if self._eof:
            return False
        more = self._f.read(JSON_BLOCK_CHARS)
        self._eof = not more
        self._buf = self._buf[self._pos :] + more
        self._pos = 0
        return bool(more)

    def _skip(self, chars: str = " \t\r\n\ufeff") -> str:
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in chars:
                self._pos += 1
            if self._pos < len(self._buf) or not self._fill():
                return self._buf[self._pos : self._pos + 1]

    def opens_array(self) -> bool:
        if self._skip() == "[":
            self._pos += 1
            return True
        return False

    def rest(self) -> str:
        while self._fill():
            pass
        return self._buf[self._pos :]

    def __iter__(self) -> Iterator[object | Reject]:
        while True:
            head = self._skip(" \t\r\n,")
            if head in ("]", ""):
                return
            yield self._decode()

    def _decode(self) -> object | Reject:
        obj = self._decode_next()
        start = self._start  # where the element began (a _fill may have moved it)
        if self._buf.find(UNDECODABLE, start, self._pos) < 0:
            return obj
        raw = self._buf[start : self._pos].replace(UNDECODABLE, "\ufffd")[:RAW_LIMIT]
        return Reject(None, undecodable(self._encoding), raw)

    def _decode_next(self) -> object:
        while True:
            try:
                obj, end = self._decoder.raw_decode(self._buf, self._pos)
            except ValueError as exc:
                if len(self._buf) - self._pos > MAX_JSON_VALUE_CHARS:
                    raise BadDataError(
                        f"a JSON array element is larger than {MAX_JSON_VALUE_CHARS >> 20} MiB "
                        "characters (or never ends): split it, or write JSON lines"
                    ) from None
                if self._fill():
                    continue
                raise BadDataError(f"invalid JSON array: {exc}") from None
            if end == len(self._buf) and self._fill():
                continue  # a number cut at the buffer's edge: decode it whole
            self._start, self._pos = self._pos, end
            return obj


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _records_to_chunks(records: Iterator[object | Reject], rows: int) -> Iterator[Chunk]:
    batch: list[dict[str, object]] = []
    rejects: list[Reject] = []
    start = 0
    for record in records:
        if isinstance(record, Reject):
            rejects.append(record)
        elif not isinstance(record, dict):
            rejects.append(Reject(None, "not a JSON object", json.dumps(record)[:RAW_LIMIT]))
        else:
            batch.append(record)
        if len(batch) >= rows:
            yield Chunk(_table_of(batch), start, rejects)
            start += len(batch)
            batch, rejects = [], []
    if batch or rejects:
        yield Chunk(_table_of(batch), start, rejects)


def _table_of(records: list[dict[str, object]]) -> pa.Table:
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = {name: pa.array([_cell(r.get(name)) for r in records], pa.string()) for name in names}
    return pa.table(columns) if columns else pa.table({})
