"""Combined/Common Log Format lines cut by their bytes: numpy over a chunk's buffer.

Nearly every CLF line has one shape: `client ident user [time] "request" status bytes
"referer" "agent"`, then whatever nginx appends. Where its fields start and end follows
from the positions of the quotes and spaces in the chunk's bytes (one numpy pass finds
each kind), and each field is taken out as an Arrow string column with one copy (`spans`).
That replaces RE2 sub-match extraction and `split_pattern` over whole lines, which copy
every line several times (the old cut was 70% of the processor's time on a 150 MB log).

A line of any other shape (escaped quotes, whitespace other than spaces, a `-` status,
a request target that is not a path) is left to the pattern (`logparse.clf_parts`), so
every line gets the same fields either way: this only decides which lines are plain.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from s3worker.processors.tabular.columns import BoolArray

Positions = npt.NDArray[np.int64]
QUOTE, SPACE, BACKSLASH, SLASH = ord('"'), ord(" "), ord("\\"), ord("/")
LBRACKET, RBRACKET, ZERO, NINE = ord("["), ord("]"), ord("0"), ord("9")
# The fields a plain line gives: as `clf_parts` extracts them, with the request already
# split as `logparse._request` splits it (method and target).
FIELDS = ("client", "time", "method", "target", "status", "agent", "rest")
NONE = np.iinfo(np.int64).max // 2  # the position of a mark a line does not have


class _Bytes:
    """A chunk's bytes, and where the quotes, spaces and other marks in it are (positions
    from the chunk's first byte: adding its offset to a million spaces costs more than
    to the few cut positions)."""

    def __init__(self, data: npt.NDArray[np.uint8]) -> None:
        self.data = data
        # Each ended by NONE, so that the k-th after any position is one clipped take.
        self.quotes = np.append(np.flatnonzero(data == QUOTE), NONE)
        self.spaces = np.append(np.flatnonzero(data == SPACE), NONE)
        self.odd = self.rare(data < SPACE)  # tabs, CR, other control characters
        self.brackets = np.append(np.flatnonzero(data == RBRACKET), NONE)
        self._backslashes: Positions | None = None

    @staticmethod
    def rare(mask: BoolArray) -> Positions:
        """np.flatnonzero of a mask that is mostly all False (found only if any is True)."""
        return np.flatnonzero(mask) if mask.any() else np.zeros(0, dtype=np.int64)

    @property
    def backslashes(self) -> Positions:
        """Found when first asked for: only Common Log Format lines need them."""
        if self._backslashes is None:
            self._backslashes = self.rare(self.data == BACKSLASH)
        return self._backslashes

    def at(self, index: Positions) -> npt.NDArray[np.uint8]:
        """The byte at each position, clipped to the chunk. Clipping never decides a line:
        each check on a byte is ANDed with checks that place its position inside the line
        (a quote count, the spaces' places), so a clipped position only meets lines that
        are not plain anyway."""
        if not len(self.data):
            return np.zeros(len(index), dtype=np.uint8)
        return np.take(self.data, index, mode="clip")


def scan(lines: pa.Array) -> tuple[dict[str, pa.Array], BoolArray]:
    """The fields of every plain CLF line (empty strings on other lines), and which are."""
    buffer, offsets = _layout(lines)
    start, end = offsets[:-1], offsets[1:]
    if not len(start) or buffer is None or not buffer.size:  # no bytes: every line empty
        return {name: pa.array([""] * len(start), pa.string()) for name in FIELDS}, np.zeros(
            len(start), dtype=bool
        )
    first, last = int(offsets[0]), int(offsets[-1])
    start, end = start - first, end - first
    cuts, plain = _cuts(_Bytes(np.frombuffer(buffer, dtype=np.uint8)[first:last]), start, end)
    fields = {
        name: spans(buffer, np.where(plain, a, start) + first, np.where(plain, z, start) + first)
        for name, (a, z) in cuts.items()
    }
    return fields, plain


def _cuts(
    b: _Bytes, start: Positions, end: Positions
) -> tuple[dict[str, tuple[Positions, Positions]], BoolArray]:
    """Where each field of a line lies, from the line's first quote and first space: a
    plain line has its quotes and spaces in known places, which is checked, not assumed."""
    qa = _first_at_or_after(b.quotes, start, end)
    count = np.diff(qa, append=len(b.quotes) - 1)  # quotes in the line (NONE is none)
    q = [_nth(b.quotes, qa, k) for k in range(6)]
    combined = (count >= 6) & (q[4] == q[3] + 2) & (b.at(q[3] + 1) == SPACE)
    combined &= (b.at(q[3] - 1) != BACKSLASH) & (b.at(q[5] - 1) != BACKSLASH)
    common = count == 2
    if common.any():
        common &= _within(b.backslashes, q[1], end) == 0
    plain = (combined | common) & (b.at(q[1] - 1) != BACKSLASH)
    plain &= _within(b.odd, start, end) == 0
    # client ident user [time with one space] "method target protocol" status bytes "...
    sa = _first_at_or_after(b.spaces, start, end)
    sp = [_nth(b.spaces, sa, k) for k in range(10)]
    plain &= (sp[4] == q[0] - 1) & (sp[6] < q[1]) & (sp[7] == q[1] + 1) & (sp[8] == q[1] + 5)
    plain &= np.where(combined, sp[9] == q[2] - 1, sp[9] >= end)
    plain &= sp[8] + 1 < np.where(combined, q[2] - 1, end)  # a size, `-` or bytes
    time_start, time_end = sp[2] + 2, q[0] - 2
    plain &= (sp[0] > start) & (sp[1] > sp[0] + 1) & (sp[2] > sp[1] + 1)
    plain &= (b.at(sp[2] + 1) == LBRACKET) & (b.at(time_end) == RBRACKET)
    plain &= _nth(b.brackets, _first_at_or_after(b.brackets, start, end), 0) == time_end
    plain &= (sp[5] > q[0] + 1) & (b.at(sp[5] + 1) == SLASH)
    for k in (2, 3, 4):  # a three-digit status (a `-` one goes through the pattern)
        digit = b.at(q[1] + k)
        plain &= (digit >= ZERO) & (digit <= NINE)
    cuts = {
        "client": (start, sp[0]),
        "time": (time_start, time_end),
        "method": (q[0] + 1, sp[5]),
        "target": (sp[5] + 1, sp[6]),
        "status": (q[1] + 2, q[1] + 5),
        "agent": (np.where(combined, q[4] + 1, end), np.where(combined, q[5], end)),
        "rest": (np.where(combined, q[5] + 1, end), end),
    }
    return cuts, plain


def _first_at_or_after(positions: Positions, start: Positions, end: Positions) -> Positions:
    """For each line, the index of its first position (lines are contiguous: a line's end
    is the next one's start, so one search serves both ends)."""
    return np.searchsorted(positions, np.append(start, end[-1:]))[:-1]


def _nth(positions: Positions, first: Positions, k: int) -> Positions:
    """positions[first + k], or NONE (past every line) where there is none: `positions`
    ends with NONE."""
    return np.take(positions, first + k, mode="clip")


def _within(positions: Positions, first: Positions, stop: Positions) -> Positions:
    """How many positions lie in [first, stop) (0 where stop <= first)."""
    n = np.searchsorted(positions, stop) - np.searchsorted(positions, first)
    return np.asarray(np.maximum(n, 0), dtype=np.int64)


def _layout(lines: pa.Array) -> tuple[pa.Buffer | None, Positions]:
    """The data buffer of a string array, and the line offsets into it."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if lines.type != pa.string():
        lines = lines.cast(pa.string())
    _, offsets, data = lines.buffers()[:3]
    where = np.frombuffer(offsets, dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return data, where.astype(np.int64)


def spans(buffer: pa.Buffer, first: Positions, stop: Positions) -> pa.Array:
    """The strings buffer[first[i]:stop[i]], in order and not overlapping, copied once:
    an array of those strings and the gaps between them, shares the buffer; every other
    element is taken."""
    n = len(first)
    if not n:
        return pa.array([], pa.string())
    offsets = np.empty(2 * n, dtype=np.int32)
    offsets[0::2], offsets[1::2] = first, stop
    both = pa.StringArray.from_buffers(2 * n - 1, pa.py_buffer(offsets), buffer)
    return both.take(pa.array(np.arange(0, 2 * n, 2, dtype=np.int64)))
