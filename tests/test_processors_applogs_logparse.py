"""applogs.logparse: the fast paths give what the full patterns give."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from s3worker.processors.applogs.logparse import REQUEST_TIME, _forwarded_or, _request_time

RESTS = [" 0.049", " 12", "", ' "-" 0.250', " rt=0.250 uct=0.001", " 1.5 0.2", " .5", " 5.", " 1e3"]


def test_request_time_is_what_the_full_pattern_extracts() -> None:
    rest = pa.array(RESTS)
    full = pc.struct_field(pc.extract_regex(rest, REQUEST_TIME), "rtime")
    assert _request_time(rest).to_pylist() == full.to_pylist()
    assert _request_time(rest).to_pylist()[:5] == ["0.049", "12", None, "0.250", "0.250"]


def test_no_forwarded_for_leaves_the_peer_address() -> None:
    clients = pa.array(["10.0.0.1", "-", "10.0.0.2"])
    none = pa.nulls(3, pa.string())
    assert _forwarded_or(none, clients).to_pylist() == ["10.0.0.1", None, "10.0.0.2"]
    some = pa.array([None, "203.0.113.9, 10.0.0.9", None], pa.string())
    assert _forwarded_or(some, clients).to_pylist() == ["10.0.0.1", "203.0.113.9", "10.0.0.2"]
