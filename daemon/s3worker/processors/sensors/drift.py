"""Drifts: a slow, steady departure of a series' level, judged on block medians.

Every `block` readings of a series (at readings k * block of the whole file) its baseline
median (of the W readings before) is one "block level"; two block sizes, W and 8W, see fast
and slow drifts. A drift is BLOCKS block levels in a row moving the same way, little by
little (no step takes more than MAX_STEP of the way: a step is a level shift), by more than
Z_DRIFT times the spread of the first block. The last BLOCKS - 1 levels of each series are
carried between chunks, so drifts straddle chunk boundaries like everything else.
"""

from __future__ import annotations

import numpy as np

from s3worker.processors.sensors.detect import Baseline, W
from s3worker.processors.sensors.findings import KINDS, Found
from s3worker.processors.sensors.floor import NoiseFloor
from s3worker.processors.sensors.tails import F64, I64, Ext, Tails

BLOCKS = 8  # block levels a drift spans: 7 steps of W readings
Z_DRIFT = 25.0
MAX_STEP = 0.5  # the largest step's share of the total change
AGAINST = 0.15  # the share of the total change allowed in the other direction


SCALES = (W, 8 * W)  # block sizes, multiples of W
Ends = tuple[I64, F64]  # rows that end a block of W readings, their spread


class Drifts:
    """The last block levels of each series (level, spread, time, reading index, record)."""

    def __init__(self, block: int) -> None:
        self.block = block
        cols = {"level": float, "spread": float, "ts": np.int64, "index": np.int64}
        self.tails = Tails(BLOCKS - 1, {**cols, "record": np.int64})

    def grow(self, n: int) -> None:
        self.tails.grow(n)

    def scan(
        self, ext: Ext, base: Baseline, floor: NoiseFloor, ref: F64, ends: Ends | None = None
    ) -> Found:
        """Drifts ending at the blocks this chunk completes (`ref`: each series' offset;
        `ends`: `block_ends` of this chunk, shared by the block sizes)."""
        at, spread = ends or block_ends(ext, base, floor)
        index = ext.i64("index")
        if self.block != W:  # every block size is a multiple of W
            mine = index[at] % self.block == 0
            at, spread = at[mine], spread[mine]
        blocks = self.tails.extend(
            ext.gid[at],
            {
                "level": base.med[at],
                "spread": spread,
                "ts": ext.i64("ts")[at],
                "index": index[at],
                "record": ext.i64("record")[at],
            },
        )
        self.tails.keep(blocks)
        return _drifts(blocks, ref)


def block_ends(ext: Ext, base: Baseline, floor: NoiseFloor) -> Ends:
    """The rows that end a block of W readings, and their spread: the ends of the larger
    blocks are among them, so the rows are found and their spread taken once per chunk."""
    index = ext.i64("index")
    at = np.flatnonzero(ext.new & (index >= 2 * W) & (index % W == 0))
    return at, base.spread(at, floor.at(at))


def _drifts(blocks: Ext, ref: F64) -> Found:
    j = np.flatnonzero(blocks.new & (blocks.pos >= BLOCKS - 1))
    level = blocks.f64("level")
    window = level[j[:, None] - np.arange(BLOCKS - 1, -1, -1)]  # oldest -> newest
    steps = np.diff(window, axis=1)
    total = window[:, -1] - window[:, 0]
    first = j - (BLOCKS - 1)
    z = total / blocks.f64("spread")[first]
    against = np.where(np.sign(steps) != np.sign(total)[:, None], np.abs(steps), 0).sum(axis=1)
    gradual = np.abs(steps).max(axis=1, initial=0.0) <= MAX_STEP * np.abs(total)
    hit = (np.abs(z) > Z_DRIFT) & gradual & (against <= AGAINST * np.abs(total))
    # The drift starts at the block before the level first moves AGAINST of the way.
    moved = (window - window[:, :1]) / np.where(total == 0, 1.0, total)[:, None] > AGAINST
    first = first + np.maximum(np.argmax(moved, axis=1) - 1, 0)
    first, j = first[hit], j[hit]
    offset = ref[blocks.gid[j]]
    return Found(
        gid=blocks.gid[j],
        kind=np.full(j.size, KINDS.index("drift"), dtype=np.int64),
        ts=blocks.i64("ts")[first],
        until=blocks.i64("ts")[j],
        first=blocks.i64("index")[first],
        last=blocks.i64("index")[j],
        value=level[j] + offset,
        expected=level[first] + offset,
        score=z[hit],
        record=blocks.i64("record")[first],
    )
