"""Parquet outputs written incrementally, so no output is ever held whole in memory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from s3worker.processors.tabular.reading import Reject

REJECTED = "rejected.parquet"
REJECTED_SCHEMA = pa.schema([("record", pa.int64()), ("reason", pa.string()), ("raw", pa.string())])
# A time unit's rank (finer is higher) and the name pyarrow's floor_temporal knows it by.
UNIT_RANK = {"s": 0, "ms": 1, "us": 2, "ns": 3}
FLOOR_UNIT = {"s": "second", "ms": "millisecond", "us": "microsecond", "ns": "nanosecond"}


class ParquetSink:
    """One Parquet file with a fixed schema, appended to chunk by chunk; exists even if empty."""

    def __init__(
        self,
        out_dir: Path,
        name: str,
        schema: pa.Schema,
        dictionary: Sequence[str] | None = None,
        encoded: Sequence[str] = (),
    ) -> None:
        """`dictionary`: the columns to dictionary-encode (default every one). Naming the
        low-cardinality ones spares the writer building dictionaries it then drops (ids,
        amounts, times: a quarter of the appointments writer's time).

        `encoded`: string columns the caller hands over dictionary-encoded (int32 indices),
        whose dictionary the writer takes as it is instead of hashing every value again. The
        Arrow schema is then not stored in the file (it would name them dictionaries): for a
        schema of strings, int64, float64 and UTC timestamps, the file's Parquet types read
        back as `schema` all the same."""
        self.name = name
        self.schema = schema
        self.rows = 0
        self._path = out_dir / name
        self._path.parent.mkdir(parents=True, exist_ok=True)
        encode: bool | list[str] = True if dictionary is None else list(dictionary)
        self._given = pa.schema(
            [f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in encoded else f
             for f in schema]
        )  # fmt: skip
        self._writer = pq.ParquetWriter(
            self._path,
            self._given,
            compression="zstd",
            use_dictionary=encode,
            store_schema=not encoded,
        )

    def write(self, data: pd.DataFrame | pa.Table) -> None:
        table = (
            data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        )
        if table.num_rows == 0:
            return
        self._writer.write_table(conform(table.select(self.schema.names), self._given))
        self.rows += table.num_rows

    def close(self) -> dict[str, int]:
        self._writer.close()
        return {self.name: self.rows}


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` cast to `schema`, times finer than the schema's unit floored to it first: a start
    at 08:00:00.1234 is written as 08:00:00.123, where the cast alone refuses the whole chunk
    ("would lose data"). Everything else keeps the cast's checks (overflow, lossy numbers)."""
    for i, field in enumerate(schema):
        have = table.schema.field(i).type
        if (
            pa.types.is_timestamp(field.type)
            and pa.types.is_timestamp(have)
            and UNIT_RANK[have.unit] > UNIT_RANK[field.type.unit]
        ):
            floored = pc.floor_temporal(table.column(i), unit=FLOOR_UNIT[field.type.unit])
            table = table.set_column(i, table.schema.field(i), floored)
    return table.cast(schema)


class RejectSink(ParquetSink):
    """`rejected.parquet`: source record number (when known), reason, and the raw row."""

    def __init__(self, out_dir: Path) -> None:
        super().__init__(out_dir, REJECTED, REJECTED_SCHEMA)

    def add(self, rejects: list[Reject]) -> None:
        if rejects:
            self.write(
                pa.table(
                    {
                        "record": pa.array([r.record for r in rejects], pa.int64()),
                        "reason": [r.reason for r in rejects],
                        "raw": [r.raw for r in rejects],
                    }
                )
            )


def write_frame(
    out_dir: Path,
    name: str,
    frame: pd.DataFrame | pa.Table,
    schema: pa.Schema,
    dictionary: Sequence[str] | None = None,
) -> dict[str, int]:
    """A whole (small, aggregated) table in one go."""
    sink = ParquetSink(out_dir, name, schema, dictionary)
    sink.write(frame)
    return sink.close()


def write_partitioned(
    out_dir: Path, name: str, frame: pd.DataFrame, schema: pa.Schema, by: str = "dt"
) -> dict[str, int]:
    """`name/dt=YYYY-MM-DD/part-0.parquet`, Hive style, the partition column left out."""
    rows: dict[str, int] = {}
    for value, part in frame.groupby(by, sort=True):
        rel = f"{name}/{by}={value}/part-0.parquet"
        rows |= write_frame(out_dir, rel, part.drop(columns=[by]), schema)
    return rows
