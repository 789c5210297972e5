"""CSV in newline-aligned blocks parsed by pyarrow, every column as strings, bad rows as rejects."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from s3worker.errors import BadDataError
from s3worker.processors.base import (
    GZIP_MAGIC,
    UNDECODABLE,
    UNDECODABLE_ERRORS,
    codec_of,
    open_text,
)
from s3worker.processors.options import Options
from s3worker.processors.sniffing import delimiter_of
from s3worker.processors.tabular.csvblocks import mapped_blocks, newline_blocks, ordered_map
from s3worker.processors.tabular.rows import (
    MAX_LINE_CHARS,
    RAW_LIMIT,
    Chunk,
    Reject,
    bounded_lines,
    undecodable,
)

CSV_BLOCK_BYTES = 8 << 20
LONG_ROW_BYTES = 64 << 10  # a batch averaging more per row is checked for over-long rows
MAX_COLUMNS = 4_096  # a wider header is refused (a header of a million names is a memory bomb)


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


def csv_batches(
    src: Path, encoding: str, options: Options
) -> Iterator[tuple[pa.RecordBatch, list[Reject]]]:
    """Every row as strings, a block of the file at a time, each with the rejects the block
    made; the blocks are parsed on threads (see csvblocks) and come in file order."""
    names, delimiter, skip = _csv_header(src, encoding, options)
    schema = pa.schema([(name, pa.string()) for name in names])

    def parse(block: memoryview, first: bool) -> tuple[pa.RecordBatch, list[Reject]]:
        return _parse_block(block, skip if first else 0, schema, delimiter, encoding)

    compression = "gzip" if is_gzip(src) else None
    if compression is None and encoding in ("utf-8", "utf-8-sig"):
        yield from ordered_map(parse, mapped_blocks(src, CSV_BLOCK_BYTES))
        return
    stream: Any = pa.input_stream(str(src), compression=compression)
    if encoding not in ("utf-8", "utf-8-sig"):
        stream = _Utf8Stream(stream, encoding)
    try:
        yield from ordered_map(parse, newline_blocks(stream, CSV_BLOCK_BYTES))
    finally:
        stream.close()


def _parse_block(
    block: memoryview, skip: int, schema: pa.Schema, delimiter: str, encoding: str
) -> tuple[pa.RecordBatch, list[Reject]]:
    """One newline-aligned block as one batch of strings, and its rejects in file order."""
    rejects: list[Reject] = []

    def invalid_row(row: Any) -> str:
        reason = f"expected {row.expected_columns} columns, found {row.actual_columns}"
        rejects.append(Reject(None, reason, str(row.text)[:RAW_LIMIT]))
        return "skip"

    names = schema.names

    def parsed(kind: pa.DataType) -> pa.Table:
        rejects.clear()  # a block read again (as binary) reports its bad rows again
        return pacsv.read_csv(
            pa.py_buffer(block),
            # One internal block per call (no boundary inside it: csvblocks cut at a line
            # break); no threads of its own: the blocks are parsed side by side instead.
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=skip, block_size=len(block) + 1, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=invalid_row),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, kind),
                strings_can_be_null=True,
                null_values=[""],  # only an empty cell is missing: "NaN" or "NA" is a value
            ),
        )

    # Strings, checked by the parser (a fifth less CPU than binary cast to strings); a block
    # with invalid UTF-8 is read again as binary, so that it rejects its rows rather than
    # the file (see _as_text).
    try:
        table = parsed(pa.string())
    except pa.ArrowInvalid as exc:
        if "utf8" not in str(exc).lower():
            raise
        table = parsed(pa.binary())
    read = table.to_batches()
    if len(read) != 1:  # none from a block of blank lines
        read = table.combine_chunks().to_batches() or [_empty(table.schema)]
    batch = read[0]
    if batch.nbytes > LONG_ROW_BYTES * max(batch.num_rows, 1):
        batch = _drop_long_rows(batch, rejects)
    return _as_text(batch, schema, delimiter, encoding, rejects), rejects


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


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
        if isinstance(first, str):  # a block read as strings: its bytes, cut as before
            first = first.encode("utf-8")
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


def is_gzip(src: Path) -> bool:
    with src.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


def rebatch(batches: Iterator[tuple[pa.RecordBatch, list[Reject]]], rows: int) -> Iterator[Chunk]:
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
