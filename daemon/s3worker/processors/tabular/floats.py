"""From string columns to float64: plain numbers cast in C++, the odd few read leniently.

The common case, digits with a sign, point or exponent, is cast by pyarrow in one go; values
with any other byte (`two`, `12,5`, `R$ 3,20`, ` 4`) are masked out of that cast and read by
pandas' parsers, each distinct one once per process.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
CAST_SLICE, CAST_LEAF = 16_384, 1_024  # rows cast at once after a failed cast; looked at closely
# A refused column whose first rows hold at most a quarter distinct values is converted per
# distinct value (dictionary-encoded): bisecting around 100 bad quantities in 250,000 rows cast
# most of the column five times over.
DISTINCT_PROBE = 8_192
PLAIN_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
CURRENCY = r"^\s*(R\$|US\$|[$€£¥])\s*|\s*(R\$|[$€£¥]|EUR|BRL|USD)\s*$"
ODD_MEMO = 4_096
_ODD_FLOATS: dict[str, float] = {}  # see _odd_memo


def to_float(col: pa.ChunkedArray, decimal: str | None = None) -> FloatArray:
    """Finite numbers as float64; NaN where missing, not a number, or infinite/overflowing
    (`inf`, `1e400`, `NaN` are not amounts). `decimal` "," reads `1.234,56`; "." reads
    `1,234.56`; None accepts plain numbers and decimal commas."""
    if decimal is not None:
        col = _decimal_point(col, decimal)
    parts = [_chunk_float(arr) for arr in col.chunks]
    out = np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)
    infinite = np.isinf(out)
    if infinite.any():  # `inf`, or a number past float64's range (`1e400`)
        out = np.where(infinite, np.nan, out)
    return out


def _chunk_float(arr: pa.Array) -> FloatArray:
    """One chunk: the values made of digits, signs, points and exponents cast in C++ in one
    go with the rest masked out as missing; those few rest (`two`, `12,5`, `R$ 3`) are read
    by `_odd_floats`. Only when the cast refuses one of the first (`1.2.3`) is the chunk
    read the slower way, `_mixed_float`."""
    odd = _odd_rows(arr)
    if odd is None:
        return _mixed_float(arr)
    try:
        out = np.asarray(
            pc.cast(_masked(arr, odd), pa.float64()).to_numpy(zero_copy_only=False),
            dtype=np.float64,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _mixed_float(arr)
    if odd.size:
        out[odd] = _odd_memo(arr.take(pa.array(odd)).to_pylist())
    return out


def _odd_memo(values: list[str]) -> FloatArray:
    """`_odd_floats` of each value, remembered (up to ODD_MEMO values per process): the
    same few odd strings come back in every chunk, and each call into pandas costs about a
    millisecond, more than casting the chunk's plain numbers."""
    todo = sorted({v for v in values if v not in _ODD_FLOATS})
    if todo:
        for value, number in zip(todo, _odd_floats(pa.array(todo, pa.string())), strict=True):
            if len(_ODD_FLOATS) < ODD_MEMO:
                _ODD_FLOATS[value] = float(number)
        if any(v not in _ODD_FLOATS for v in todo):  # the memo is full: no more remembered
            return _odd_floats(pa.array(values, pa.string()))
    return np.array([_ODD_FLOATS[v] for v in values], dtype=np.float64)


def _odd_rows(arr: pa.Array) -> npt.NDArray[np.int64] | None:
    """The rows holding a byte no plain number has (None: not a string array), found by
    comparing the data buffer's bytes: a regex match costs four times the cast itself, this
    a tenth of it."""
    if arr.type != pa.string():
        return None
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32, len(arr) + 1, arr.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    if data_buf is None or end == start:
        return np.empty(0, dtype=np.int64)
    data = np.frombuffer(data_buf, np.uint8, end - start, start)
    odd = (data - np.uint8(ord("0"))) > 9  # wraps below "0": not a digit
    for sign in b"+-.":
        odd &= data != sign
    odd &= (data | 0x20) != ord("e")  # e or E
    where = np.flatnonzero(odd)
    if not where.size:
        return np.empty(0, dtype=np.int64)
    rows = np.searchsorted(offsets[1:] - start, where, side="right")
    return np.unique(rows).astype(np.int64)


def _masked(arr: pa.Array, odd: npt.NDArray[np.int64]) -> pa.Array:
    """`arr` with the `odd` rows missing: the same string buffers, a new validity bitmap."""
    if not odd.size:
        return arr
    valid = np.zeros(arr.offset + len(arr), dtype=bool)
    valid[arr.offset :] = ~missing(arr)
    valid[arr.offset + odd] = False
    bitmap = pa.array(valid).buffers()[1]
    _, offsets_buf, data_buf = arr.buffers()
    buffers = [bitmap, offsets_buf, data_buf]
    return pa.Array.from_buffers(arr.type, len(arr), buffers, -1, arr.offset)


def _decimal_point(col: pa.ChunkedArray, decimal: str) -> pa.ChunkedArray:
    thousands = "." if decimal == "," else ","
    plain = pc.replace_substring(col, thousands, "")
    return pc.replace_substring(plain, ",", ".") if decimal == "," else plain


def _mixed_float(col: pa.ChunkedArray | pa.Array) -> FloatArray:
    """A column the plain cast refused: a few distinct values (quantities, durations, prices)
    are converted once each; otherwise `_sliced_float`."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    probe = arr.slice(0, DISTINCT_PROBE)
    if len(arr) < DISTINCT_PROBE or pc.count_distinct(probe).as_py() * 4 > len(probe):
        return _sliced_float(arr)
    enc = pc.dictionary_encode(arr)
    if len(enc.dictionary) * 4 > len(arr):
        return _sliced_float(arr)
    values = np.append(_sliced_float(enc.dictionary), np.nan)
    codes = pc.fill_null(enc.indices, len(enc.dictionary)).to_numpy(zero_copy_only=False)
    out: FloatArray = values[np.asarray(codes, dtype=np.int64)]
    return out


def _sliced_float(arr: pa.Array) -> FloatArray:
    """Cast slice by slice, halving the slices that fail, so that only short slices around
    the odd values get the regex and pandas (a bad amount in 10,000 made every row pay)."""
    out = np.empty(len(arr), dtype=np.float64)
    pending = [(lo, min(lo + CAST_SLICE, len(arr))) for lo in range(0, len(arr), CAST_SLICE)]
    odd: list[range] = []
    while pending:
        lo, hi = pending.pop()
        try:
            piece = pc.cast(arr.slice(lo, hi - lo), pa.float64())
            out[lo:hi] = piece.to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            if hi - lo <= CAST_LEAF:
                odd.append(range(lo, hi))
            else:
                pending += [(lo, (lo + hi) // 2), ((lo + hi) // 2, hi)]
    if odd:
        rows = np.concatenate([np.arange(r.start, r.stop) for r in odd])
        out[rows] = _odd_floats(arr.take(pa.array(rows)))
    return out


def _odd_floats(col: pa.Array) -> FloatArray:
    # Cast what looks like a plain number (trimmed: the cast refuses " 4", and made the
    # whole file fail); only the odd rest goes through pandas.
    plain = pc.fill_null(pc.match_substring_regex(col, PLAIN_NUMBER), False)
    trimmed = pc.utf8_trim_whitespace(pc.if_else(plain, col, None))
    out = np.asarray(
        pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False),
        dtype=np.float64,
    )
    odd = np.flatnonzero(~np.asarray(plain.to_numpy(zero_copy_only=False)) & ~missing(col))
    if odd.size:
        out[odd] = _lenient_float(pd.Series(col.take(pa.array(odd)).to_pylist(), dtype="str"))
    return out


def _lenient_float(s: pd.Series) -> FloatArray:
    s = s.str.replace(CURRENCY, "", regex=True)
    out = pd.to_numeric(s, errors="coerce")
    comma = out.isna() & s.str.fullmatch(r"-?[\d.]*\d,\d+", na=False)
    if comma.any():
        fixed = s[comma].str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        out[comma] = pd.to_numeric(fixed, errors="coerce")
    return np.asarray(out.to_numpy(dtype=np.float64, na_value=np.nan))


def missing(col: pa.ChunkedArray | pa.Array) -> BoolArray:
    """Which values are null, read off each chunk's validity bitmap (unpacked by numpy:
    pyarrow's `is_null().to_numpy()` took about 1 ms per 250,000 values, this a twentieth);
    types whose nulls are not a bitmap of their own go through `is_null`."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    out = np.empty(len(col), dtype=bool)
    at = 0
    for arr in chunks:
        n = len(arr)
        if not _bitmap_nulls(arr.type):
            out[at : at + n] = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        elif arr.null_count == 0:
            out[at : at + n] = False
        else:
            bitmap = np.frombuffer(arr.buffers()[0], np.uint8)
            bits = np.unpackbits(bitmap, count=arr.offset + n, bitorder="little")
            out[at : at + n] = bits[arr.offset :] == 0
        at += n
    return out


def _bitmap_nulls(t: pa.DataType) -> bool:
    """Whether a type's nulls are its validity bitmap (not a dictionary's, a union's...)."""
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_temporal(t)
    )
