"""From string columns to typed numpy arrays: name variants, numbers, timestamps, rejects.

Conversions try pyarrow's vectorised cast first (the clean, common case) and fall back to
pandas' lenient parsers only for a chunk that has something odd in it. Numbers are read in
`floats` (re-exported here).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.processors.options import Options
from s3worker.processors.schema import Resolution, Schema, day_first, norm
from s3worker.processors.sniffing import SNIFF_ROWS
from s3worker.processors.tabular.floats import BoolArray, FloatArray, missing, to_float
from s3worker.processors.tabular.reading import RAW_LIMIT, Chunk, Reject

# The processors take every column conversion from here, numbers (`floats`) included.
__all__ = [
    "DATE_FORMATS",
    "ISO_FORMATS",
    "LENIENT_MEMO",
    "MONTH_FIRST",
    "TIME_WINDOW",
    "ZONED",
    "BoolArray",
    "FloatArray",
    "TimeArray",
    "date_formats",
    "missing",
    "raw_json",
    "rejects_of",
    "resolve",
    "resolve_roles",
    "strings",
    "to_float",
    "to_time",
    "to_time_checked",
    "with_time",
]
TimeArray = npt.NDArray[np.datetime64]
# Formats tried, in order, on what ISO 8601 does not parse; day-first before month-first
# because the Portuguese exports this product reads write dates that way.
DATE_FORMATS = (
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%d/%b/%Y:%H:%M:%S %z",  # Combined Log Format
    "%Y-%m-%d %I:%M%p",  # a date and a 12-hour time slot ("9:00AM")
    "%Y-%m-%d %I:%M %p",
    "%d/%m/%Y %I:%M %p",
    "%d/%m/%Y %I:%M:%S %p",
    "%Y-%m-%d %I:%M:%S %p",
)


ZONED = r"([Zz]|[+-]\d{2}:?\d{2}|^\s*\d+(\.\d+)?)\s*$"  # an offset, or epoch seconds
# Timestamps outside this window are rejected as out of range: well inside what pandas'
# nanoseconds hold (1677-2262), wide enough for birth dates and long contracts.
TIME_WINDOW = (np.datetime64("1900-01-01", "us"), np.datetime64("2200-01-01", "us"))
MONTH_FIRST = (
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%m/%d/%y %H:%M",
    "%m/%d/%y",
    "%m/%d/%Y %I:%M:%S %p",  # US exports: a date and a 12-hour clock ("3:50:00 PM")
    "%m/%d/%Y %I:%M %p",
)
LENIENT_MEMO = 4_096
_LENIENT: dict[tuple[tuple[str, ...], str], np.datetime64] = {}  # see _lenient_memo
# A column whose first RUN_PROBE values come in runs of RUN_LENGTH or more is read by runs
# (see _runs).
RUN_PROBE, RUN_LENGTH = 4_096, 8
ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%z",
)


def resolve(table: pa.Table, aliases: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Canonical field -> the table's column holding it (first alias wins)."""
    by_norm: dict[str, str] = {}
    for column in table.column_names:
        by_norm.setdefault(norm(column), column)
    found: dict[str, str] = {}
    for field, names in aliases.items():
        for alias in names:
            if alias in by_norm and by_norm[alias] not in found.values():
                found[field] = by_norm[alias]
                break
    return found


def resolve_roles(schema: Schema, table: pa.Table, options: Options) -> Resolution:
    """The schema resolved on a chunk's first rows (names, words, then content)."""
    head = table.slice(0, SNIFF_ROWS)
    cols = [head.column(c).to_pylist() for c in head.column_names]
    rows = [list(r) for r in zip(*cols, strict=True)]
    return schema.resolve(table.column_names, rows, options.mapping)


def date_formats(table: pa.Table, column: str | None, options: Options) -> tuple[str, ...]:
    """Formats to try first on a date column: the user's, or month-first when the values
    show it (`3/25/2019`); day-first stays the default for the ambiguous `1/5/2019`."""
    if options.date_format:
        return (options.date_format,)
    if column is None:
        return ()
    values = [v for v in table.column(column).slice(0, 5_000).to_pylist() if v]
    return MONTH_FIRST if day_first(values) is False else ()


def with_time(date: pa.ChunkedArray, time: pa.ChunkedArray | None) -> pa.ChunkedArray:
    """`Date` and `Time` columns as one `date time` text column (the date alone where no time)."""
    if time is None:
        return date
    joined = pc.binary_join_element_wise(date, time, " ")
    return pc.if_else(pc.is_null(time), date, joined)


def strings(table: pa.Table, column: str | None) -> pa.ChunkedArray:
    """A column as strings (empty cells are null); all-null when the table lacks it."""
    if column is None or column not in table.column_names:
        return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
    return table.column(column)


def to_time(col: pa.ChunkedArray, formats: Sequence[str] = (), tz: str | None = None) -> TimeArray:
    """Timestamps as UTC datetime64[ns]; NaT where unparseable or outside TIME_WINDOW."""
    return to_time_checked(col, formats, tz)[0]


def to_time_checked(
    col: pa.ChunkedArray, formats: Sequence[str] = (), tz: str | None = None
) -> tuple[TimeArray, BoolArray]:
    """`to_time`, and which values parsed but fell outside TIME_WINDOW (year 9999, 0001...).

    `formats` are tried first; naive timestamps are in `tz` (UTC when None)."""
    # Readings and log lines repeat their timestamps: parse each distinct string once.
    runs = _runs(col)
    enc = pc.dictionary_encode(col if runs is None else runs[0]).combine_chunks()
    parsed = _parse_times(pa.chunked_array([enc.dictionary]), formats)
    if tz is not None:
        parsed = _localise(enc.dictionary, parsed, tz)
    lo, hi = TIME_WINDOW
    outside = ~np.isnat(parsed) & ((parsed < lo) | (parsed >= hi))
    if outside.any():
        parsed = np.where(outside, np.datetime64("NaT"), parsed)
    times = np.append(parsed.astype("datetime64[ns]"), np.datetime64("NaT", "ns"))
    codes = np.asarray(
        pc.fill_null(enc.indices, len(enc.dictionary)).to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )

    def rows(per_code: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """A value per row: by code, then (read by runs) each repeated over its run."""
        return per_code[codes] if runs is None else np.repeat(per_code[codes], runs[1])

    out = rows(times)
    return out, rows(np.append(outside, False)) if outside.any() else np.zeros(len(out), bool)


def _runs(col: pa.ChunkedArray) -> tuple[pa.ChunkedArray, npt.NDArray[np.int32]] | None:
    """The column as runs of equal values (each run's value, and its length) when its first
    RUN_PROBE values come in runs RUN_LENGTH long or more, else None.

    Sorted readings and logs repeat each timestamp row after row: finding the runs costs
    a third of hashing every value, and only the runs' values are then dictionary-encoded.
    Times in no order (bookings) would pay for both, so they are not run-encoded."""
    head = pc.run_end_encode(col.slice(0, RUN_PROBE))
    if sum(len(c.values) for c in head.chunks) * RUN_LENGTH > min(len(col), RUN_PROBE):
        return None
    ree = pc.run_end_encode(col).chunks
    values = pa.chunked_array([c.values for c in ree], col.type)
    lengths = [np.diff(c.run_ends.to_numpy(), prepend=0) for c in ree]
    return values, np.concatenate(lengths) if lengths else np.empty(0, dtype=np.int32)


def _parse_times(col: pa.ChunkedArray, formats: Sequence[str] = ()) -> TimeArray:
    """Microseconds (so year 9999 or 0001 parses instead of overflowing nanoseconds)."""
    if not formats:
        for target in (pa.timestamp("us"), pa.timestamp("us", "UTC")):
            try:
                # Arrow takes thirty times longer over a value it refuses than over one it
                # reads: the first value alone tells the cast that would refuse them all
                # (offsets cast as naive, or naive times as zoned) and spares it.
                pc.cast(col.slice(0, 1), target)
                return _naive_us(pc.cast(col, target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
    # Some values are odd: parse the common ISO shapes in C++, the rest with pandas.
    out = np.full(len(col), np.datetime64("NaT"), dtype="datetime64[us]")
    todo = ~missing(col)
    if formats:
        out[todo] = _lenient_memo(col.filter(pa.array(todo)).to_pylist(), tuple(formats))
        todo &= np.isnat(out)
    for fmt in ISO_FORMATS:
        if not todo.any():
            break
        parsed = _naive_us(pc.strptime(col, format=fmt, unit="us", error_is_null=True))
        hit = todo & ~np.isnat(parsed)
        out[hit] = parsed[hit]
        todo &= ~hit
    odd = np.flatnonzero(todo)
    if odd.size:
        out[odd] = _lenient_memo(col.take(pa.array(odd)).to_pylist(), ())
    return out


def _lenient_memo(values: list[str], formats: tuple[str, ...]) -> TimeArray:
    """`_lenient_time` of each value, remembered (up to LENIENT_MEMO values per process): the
    same odd strings come back in every chunk (a bad date, a local format), and pandas'
    format-by-format attempts cost milliseconds even for one value."""
    out = np.empty(len(values), dtype="datetime64[us]")
    todo = []
    for i, value in enumerate(values):
        known = _LENIENT.get((formats, value))
        if known is None:
            todo.append(i)
        else:
            out[i] = known
    if todo:
        parsed = _lenient_time(pd.Series([values[i] for i in todo], dtype="str"), formats)
        out[todo] = parsed
        for i, when in zip(todo, parsed, strict=True):
            if len(_LENIENT) < LENIENT_MEMO:
                _LENIENT[(formats, values[i])] = when
    return out


def _naive_us(arr: pa.ChunkedArray) -> TimeArray:
    if arr.type.tz is not None:
        arr = pc.cast(arr, pa.timestamp("us"))
    return np.asarray(arr.to_numpy(), dtype="datetime64[us]")


def _localise(text: pa.Array, parsed: TimeArray, tz: str) -> TimeArray:
    """Naive values (no offset, not epoch numbers) were local time in `tz`: to UTC."""
    zoned = pc.fill_null(pc.match_substring_regex(text, ZONED), True)
    naive = ~np.asarray(zoned.to_numpy(zero_copy_only=False), dtype=bool) & ~np.isnat(parsed)
    if naive.any():
        local = pd.DatetimeIndex(parsed[naive]).tz_localize(
            tz, ambiguous="NaT", nonexistent="shift_forward"
        )
        parsed = parsed.copy()
        parsed[naive] = local.tz_convert(None).to_numpy(dtype="datetime64[us]")
    return parsed


def _lenient_time(s: pd.Series, formats: Sequence[str] = ()) -> TimeArray:
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    for fmt in formats or ("ISO8601", *DATE_FORMATS):
        todo = out.isna() & s.notna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(s[todo], utc=True, format=fmt, errors="coerce")
    todo = out.isna() & s.str.fullmatch(r"\d{9,13}(\.\d+)?", na=False)
    if todo.any() and not formats:  # epoch seconds, or milliseconds when too large for seconds
        epoch = pd.to_numeric(s[todo])
        unit_ms = epoch > 1e11
        out[todo] = pd.to_datetime(np.where(unit_ms, epoch / 1000, epoch), unit="s", utc=True)
    return np.asarray(out.dt.tz_convert(None).to_numpy(dtype="datetime64[us]"))


def rejects_of(chunk: Chunk, problems: Mapping[str, BoolArray]) -> tuple[BoolArray, list[Reject]]:
    """Rows to keep, and a Reject for each bad row with every reason that applies to it.

    The reasons are joined once per combination of problems, not per row, and the rows'
    JSON is put together column by column (`raw_json`)."""
    bad = np.zeros(chunk.table.num_rows, dtype=bool)
    for mask in problems.values():
        bad |= mask
    keep = ~bad
    if not bad.any():
        return keep, list(chunk.rejects)
    rows = np.flatnonzero(bad)
    names = list(problems)
    which = np.zeros(rows.size, dtype=np.int64)  # bit k: the k-th problem applies
    for k, name in enumerate(names):
        which |= np.asarray(problems[name], dtype=bool)[rows].astype(np.int64) << k
    codes, per_row = np.unique(which, return_inverse=True)
    reasons = ["; ".join(n for k, n in enumerate(names) if c >> k & 1) for c in codes.tolist()]
    raw = raw_json(chunk.table.take(pa.array(rows)))
    out = list(chunk.rejects)
    first = chunk.start
    out.extend(
        Reject(first + i, reasons[r], text)
        for i, r, text in zip(rows.tolist(), per_row.tolist(), raw, strict=True)
    )
    return keep, out


# A JSON string's text as `json.dumps` writes it when it holds only these characters
# (printable ASCII but the quote and the backslash): the value itself, quoted.
_PLAIN = r"^[ !#-\[\]-~]*$"


def raw_json(table: pa.Table) -> list[str]:
    """Each row as `json.dumps` of its record (column name -> value) writes it, cut to
    RAW_LIMIT characters. String columns are quoted as Arrow columns, only values with
    other characters than plain ASCII through `json.dumps`; other tables row by row."""
    names = table.column_names
    if len(set(names)) < len(names) or not all(pa.types.is_string(t) for t in table.schema.types):
        return [json.dumps(record)[:RAW_LIMIT] for record in table.to_pylist()]
    parts: list[Any] = []
    for name, column in zip(names, table.columns, strict=True):
        col = column.combine_chunks()
        text = pc.binary_join_element_wise('"', col, '"', "")
        odd = pc.invert(pc.fill_null(pc.match_substring_regex(col, _PLAIN), True))
        if pc.any(odd).as_py():
            quoted = [json.dumps(v) for v in col.filter(odd).to_pylist()]
            text = pc.replace_with_mask(text, odd, pa.array(quoted, pa.string()))
        parts += [", " if parts else "{", json.dumps(name) + ": ", pc.fill_null(text, "null")]
    if not parts:
        return ["{}"] * table.num_rows
    joined = pc.binary_join_element_wise(*parts, "}", "")
    if not isinstance(joined, pa.Array):  # a table of no row
        return []
    return pc.utf8_slice_codeunits(joined, 0, RAW_LIMIT).to_pylist()  # type: ignore[no-any-return]
