"""JSON lines and JSON arrays, decoded record by record in bounded memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

import pyarrow as pa

from s3worker.errors import BadDataError
from s3worker.processors.base import UNDECODABLE
from s3worker.processors.tabular.rows import (
    MAX_LINE_CHARS,
    RAW_LIMIT,
    Chunk,
    Reject,
    bounded_lines,
    undecodable,
)

JSON_BLOCK_CHARS = 1 << 20
MAX_JSON_VALUE_CHARS = 64 << 20  # one element of a JSON array


def jsonl_records(f: IO[str], encoding: str) -> Iterator[object | Reject]:
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


def json_array_records(f: IO[str], encoding: str) -> Iterator[object | Reject]:
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


def records_to_chunks(records: Iterator[object | Reject], rows: int) -> Iterator[Chunk]:
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
