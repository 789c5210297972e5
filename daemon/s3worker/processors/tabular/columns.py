"""From string columns to typed numpy arrays: name variants, numbers, timestamps, rejects.

Conversions try pyarrow's vectorised cast first (the clean, common case) and fall back to
pandas' lenient parsers only for a chunk that has something odd in it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.processors.sniffing import norm
from s3worker.processors.tabular.reading import RAW_LIMIT, Chunk, Reject

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]
BoolArray = npt.NDArray[np.bool_]
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
)


PLAIN_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
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


def strings(table: pa.Table, column: str | None) -> pa.ChunkedArray:
    """A column as strings (empty cells are null); all-null when the table lacks it."""
    if column is None or column not in table.column_names:
        return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
    return table.column(column)


def to_float(col: pa.ChunkedArray) -> FloatArray:
    """Numbers as float64, NaN where missing or not a number (decimal commas accepted)."""
    try:
        return np.asarray(pc.cast(col, pa.float64()).to_numpy(), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Cast what looks like a plain number; only the odd rest goes through pandas.
    plain = pc.fill_null(pc.match_substring_regex(col, PLAIN_NUMBER), False)
    out = np.asarray(
        pc.cast(pc.if_else(plain, col, None), pa.float64()).to_numpy(), dtype=np.float64
    )
    odd = np.flatnonzero(~np.asarray(plain.to_numpy(zero_copy_only=False)) & ~missing(col))
    if odd.size:
        out[odd] = _lenient_float(pd.Series(col.take(pa.array(odd)).to_pylist(), dtype="str"))
    return out


def _lenient_float(s: pd.Series) -> FloatArray:
    out = pd.to_numeric(s, errors="coerce")
    comma = out.isna() & s.str.fullmatch(r"-?[\d.]*\d,\d+", na=False)
    if comma.any():
        fixed = s[comma].str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        out[comma] = pd.to_numeric(fixed, errors="coerce")
    return np.asarray(out.to_numpy(dtype=np.float64, na_value=np.nan))


def to_time(col: pa.ChunkedArray) -> TimeArray:
    """Timestamps as UTC datetime64[ns] (naive ones taken as UTC), NaT where unparseable."""
    # Readings and log lines repeat their timestamps: parse each distinct string once.
    enc = pc.dictionary_encode(col).combine_chunks()
    parsed = np.append(_parse_times(pa.chunked_array([enc.dictionary])), np.datetime64("NaT", "ns"))
    codes = pc.fill_null(enc.indices, len(enc.dictionary))
    return parsed[np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int64)]


def _parse_times(col: pa.ChunkedArray) -> TimeArray:
    for target in (pa.timestamp("ns"), pa.timestamp("ns", "UTC")):
        try:
            return _naive_ns(pc.cast(col, target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    # Some values are odd: parse the common ISO shapes in C++, the rest with pandas.
    out = np.full(len(col), np.datetime64("NaT"), dtype="datetime64[ns]")
    todo = ~missing(col)
    for fmt in ISO_FORMATS:
        if not todo.any():
            break
        parsed = _naive_ns(pc.strptime(col, format=fmt, unit="ns", error_is_null=True))
        hit = todo & ~np.isnat(parsed)
        out[hit] = parsed[hit]
        todo &= ~hit
    odd = np.flatnonzero(todo)
    if odd.size:
        out[odd] = _lenient_time(pd.Series(col.take(pa.array(odd)).to_pylist(), dtype="str"))
    return out


def _naive_ns(arr: pa.ChunkedArray) -> TimeArray:
    if arr.type.tz is not None:
        arr = pc.cast(arr, pa.timestamp("ns"))
    return np.asarray(arr.to_numpy(), dtype="datetime64[ns]")


def _lenient_time(s: pd.Series) -> TimeArray:
    out = pd.to_datetime(s, utc=True, format="ISO8601", errors="coerce")
    for fmt in DATE_FORMATS:
        todo = out.isna() & s.notna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(s[todo], utc=True, format=fmt, errors="coerce")
    todo = out.isna() & s.str.fullmatch(r"\d{9,13}(\.\d+)?", na=False)
    if todo.any():  # epoch seconds, or milliseconds when too large for seconds
        epoch = pd.to_numeric(s[todo])
        unit_ms = epoch > 1e11
        out[todo] = pd.to_datetime(np.where(unit_ms, epoch / 1000, epoch), unit="s", utc=True)
    return np.asarray(out.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]"))


def rejects_of(chunk: Chunk, problems: Mapping[str, BoolArray]) -> tuple[BoolArray, list[Reject]]:
    """Rows to keep, and a Reject for each bad row with every reason that applies to it."""
    bad = np.zeros(chunk.table.num_rows, dtype=bool)
    for mask in problems.values():
        bad |= mask
    keep = ~bad
    if not bad.any():
        return keep, list(chunk.rejects)
    rows = np.flatnonzero(bad)
    raw = chunk.table.take(pa.array(rows)).to_pylist()
    out = list(chunk.rejects)
    for i, record in zip(rows.tolist(), raw, strict=True):
        reason = "; ".join(name for name, mask in problems.items() if mask[i])
        out.append(Reject(chunk.start + i, reason, json.dumps(record)[:RAW_LIMIT]))
    return keep, out


def missing(col: pa.ChunkedArray) -> BoolArray:
    return np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
