"""Group-by on integer key columns: factorize once, then bincount any number of sums.

Keys are folded into one int64 when their ranges allow it; a folded range no larger than a
few times the row count is grouped by direct addressing (a bincount), a larger one is hashed
(pandas' factorize, linear time) rather than sorted. Keys too wide to fold fall back to a
lexsort. The order of the groups is not part of the contract (sums are in row order within
each group whatever it is).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
FOLD_LIMIT = 1 << 62
DENSE_FACTOR = 4  # a folded range up to this many times the rows is addressed directly


def factorize(keys: Sequence[I64]) -> tuple[list[I64], I64]:
    """The distinct key rows and, for each input row, the index of its group."""
    n = keys[0].size if keys else 0
    if n == 0:
        return [np.zeros(0, dtype=np.int64) for _ in keys], np.zeros(0, dtype=np.int64)
    lows = [int(k.min()) for k in keys]
    spans = [int(k.max()) - lo + 1 for k, lo in zip(keys, lows, strict=True)]
    space = int(np.prod(np.array(spans, dtype=object)))
    if space < FOLD_LIMIT:
        folded = np.zeros(n, dtype=np.int64)
        for k, lo, span in zip(keys, lows, spans, strict=True):
            folded = folded * span + (k - lo)
        if space <= DENSE_FACTOR * n:
            return _dense(folded, space, lows, spans)
        inverse, uniques = pd.factorize(folded)
        row = np.zeros(uniques.size, dtype=np.int64)
        row[inverse] = np.arange(n)  # some row of each group: all of them share its keys
        return [k[row] for k in keys], np.asarray(inverse, dtype=np.int64)
    order = np.lexsort(tuple(reversed(keys)))
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        sorted_k = k[order]
        change[1:] |= sorted_k[1:] != sorted_k[:-1]
    group = np.cumsum(change) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group
    starts = order[change]
    return [k[starts] for k in keys], inverse


def _dense(folded: I64, space: int, lows: list[int], spans: list[int]) -> tuple[list[I64], I64]:
    """Groups of folded keys in [0, space): the present values, in key order."""
    present = np.bincount(folded, minlength=space) > 0
    ids = np.cumsum(present) - 1
    rest = np.flatnonzero(present)
    distinct: list[I64] = []
    for lo, span in zip(reversed(lows), reversed(spans), strict=True):
        rest, digit = np.divmod(rest, span)
        distinct.insert(0, digit + lo)
    return distinct, ids[folded]


def sums(group: I64, size: int, values: Sequence[npt.NDArray[np.generic]]) -> list[F64]:
    """Per-group sums of each value column (float64), in input order within a group."""
    return [
        np.asarray(np.bincount(group, weights=v, minlength=size), dtype=np.float64) for v in values
    ]


def group_sum(
    keys: Sequence[I64], values: Sequence[npt.NDArray[np.generic]]
) -> tuple[list[I64], list[F64]]:
    """Rows with equal keys added up: (distinct keys), (the sums of each value column)."""
    distinct, group = factorize(keys)
    return distinct, sums(group, distinct[0].size if distinct else 0, values)
