"""Parquet outputs: appended chunk by chunk in the declared schema, present even when empty."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from s3worker.processors.tabular.output import (
    REJECTED,
    REJECTED_SCHEMA,
    ParquetSink,
    RejectSink,
    write_frame,
    write_partitioned,
)
from s3worker.processors.tabular.rows import Reject

SCHEMA = pa.schema([("store", pa.string()), ("revenue", pa.float64())])


def test_a_sink_appends_chunks_in_its_schema_and_counts_rows(tmp_path: Path) -> None:
    # given a sink and chunks as a frame (extra column, ints) and as a table (columns swapped)
    sink = ParquetSink(tmp_path, "deep/out.parquet", SCHEMA)
    sink.write(pd.DataFrame({"revenue": [1, 2], "store": ["a", "b"], "extra": [0, 0]}))
    sink.write(pa.table({"revenue": [3.5], "store": ["c"]}))
    sink.write(pd.DataFrame({"store": [], "revenue": []}))
    # when closed
    rows = sink.close()
    # then one file in the declared schema holds every row, in order
    assert rows == {"deep/out.parquet": 3}
    table = pq.read_table(tmp_path / "deep" / "out.parquet")
    assert table.schema.remove_metadata() == SCHEMA
    assert table.to_pydict() == {"store": ["a", "b", "c"], "revenue": [1.0, 2.0, 3.5]}
    # the empty chunk added no (empty) row group
    assert pq.ParquetFile(tmp_path / "deep" / "out.parquet").metadata.num_row_groups == 2


def test_an_empty_sink_still_writes_its_file(tmp_path: Path) -> None:
    assert ParquetSink(tmp_path, "none.parquet", SCHEMA).close() == {"none.parquet": 0}
    table = pq.read_table(tmp_path / "none.parquet")
    assert table.num_rows == 0
    assert table.schema.remove_metadata() == SCHEMA


def test_rejects_are_written_with_record_reason_and_raw(tmp_path: Path) -> None:
    sink = RejectSink(tmp_path)
    sink.add([Reject(4, "date: missing", "a,,1"), Reject(None, "expected 2 columns", "x")])
    sink.add([])
    assert sink.close() == {REJECTED: 2}
    table = pq.read_table(tmp_path / REJECTED)
    assert table.schema.remove_metadata() == REJECTED_SCHEMA
    assert table.to_pydict() == {
        "record": [4, None],
        "reason": ["date: missing", "expected 2 columns"],
        "raw": ["a,,1", "x"],
    }


def test_write_frame_writes_a_whole_table(tmp_path: Path) -> None:
    rows = write_frame(
        tmp_path, "t.parquet", pd.DataFrame({"store": ["a"], "revenue": [2.0]}), SCHEMA
    )
    assert rows == {"t.parquet": 1}
    assert pd.read_parquet(tmp_path / "t.parquet").to_dict("list") == {
        "store": ["a"],
        "revenue": [2.0],
    }


def test_write_partitioned_makes_one_hive_folder_per_value(tmp_path: Path) -> None:
    # given rows of two days, out of order
    frame = pd.DataFrame(
        {
            "dt": ["2024-02-02", "2024-02-01", "2024-02-02"],
            "store": ["b", "a", "c"],
            "revenue": [2.0, 1.0, 3.0],
        }
    )
    # when partitioned by dt
    rows = write_partitioned(tmp_path, "sales", frame, SCHEMA)
    # then each day has its folder, its rows, and no dt column of its own
    assert rows == {
        "sales/dt=2024-02-01/part-0.parquet": 1,
        "sales/dt=2024-02-02/part-0.parquet": 2,
    }
    day = pq.read_table(tmp_path / "sales" / "dt=2024-02-02" / "part-0.parquet")
    assert day.column_names == ["store", "revenue"]
    assert day.to_pydict() == {"store": ["b", "c"], "revenue": [2.0, 3.0]}


def test_times_finer_than_the_schema_are_floored_not_refused(tmp_path: Path) -> None:
    # Given a chunk of nanosecond times, some with sub-millisecond digits, one before 1970
    ns = pa.array(
        [1_714_982_400_123_400_000, 1_714_986_000_000_999_000, -1_500_000, None],
        pa.timestamp("ns", "UTC"),
    )
    schema = pa.schema([("start", pa.timestamp("ms", "UTC")), ("n", pa.int32())])
    # When written to a millisecond column
    sink = ParquetSink(tmp_path, "t.parquet", schema)
    sink.write(pa.table({"start": ns, "n": pa.array([1, 2, 3, 4], pa.int64())}))
    sink.close()
    # Then each is floored to its millisecond (toward the past), not the chunk refused
    got = pq.read_table(tmp_path / "t.parquet")
    assert got.schema == schema
    assert got.column("start").cast(pa.int64()).to_pylist() == [
        1_714_982_400_123, 1_714_986_000_000, -2, None,
    ]  # fmt: skip


def test_the_cast_still_refuses_numbers_that_do_not_fit(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path, "t.parquet", pa.schema([("n", pa.int32())]))
    with pytest.raises(pa.ArrowInvalid):
        sink.write(pa.table({"n": pa.array([2**40], pa.int64())}))


def test_columns_given_dictionary_encoded_read_back_as_the_schema_says(tmp_path: Path) -> None:
    # given a schema of strings, numbers and UTC times, its strings handed over encoded
    schema = pa.schema(
        [("who", pa.string()), ("at", pa.timestamp("ms", "UTC")), ("n", pa.float64())]
    )
    who = pa.array(["b", None, "a", "b"]).dictionary_encode()
    at = pa.array([0, 1, None, 3], pa.timestamp("ms", "UTC"))
    chunk = pa.table({"who": who, "at": at, "n": [1.0, None, 2.0, 3.0]})
    # when written by a sink told so, and by one given the same values decoded
    encoded = ParquetSink(tmp_path, "encoded.parquet", schema, ("who",), encoded=("who",))
    encoded.write(chunk)
    encoded.close()
    plain = ParquetSink(tmp_path, "plain.parquet", schema, ("who",))
    plain.write(chunk.set_column(0, "who", who.cast(pa.string())))
    plain.close()
    # then both read back as the same table, with the schema's types and metadata
    got, want = (pq.read_table(tmp_path / f"{n}.parquet") for n in ("encoded", "plain"))
    assert got.schema == schema
    assert got.equals(want, check_metadata=True)
    assert got.to_pandas().equals(want.to_pandas())
