"""applogs.traffic: distinct values by sorting give what np.unique gives."""

from __future__ import annotations

import numpy as np
from s3worker.processors.applogs.traffic import distinct


def test_distinct_is_np_unique() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 2**63, 500, dtype=np.uint64)[rng.integers(0, 500, 20_000)]
    assert np.array_equal(distinct(values), np.unique(values))
    assert distinct(np.zeros(0, dtype=np.uint64)).size == 0
    assert distinct(np.array([7, 7, 7], dtype=np.uint64)).tolist() == [7]
