"""Partial results parked on disk in buckets, so memory does not grow with the number of groups.

Rows are appended to one Arrow IPC file per bucket (lz4-compressed) as they come, and read
back one bucket at a time at the end: the caller combines a bucket's rows (which then hold
every partial of their groups) and writes them out before the next bucket is loaded.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from s3worker.processors.tabular.groups import I64


class Spill:
    """Append rows under an integer bucket; iterate the buckets, each as one table."""

    def __init__(self, folder: Path, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows = 0
        self._dir = Path(tempfile.mkdtemp(prefix=".spill-", dir=folder))
        self._writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        self._options = pa.ipc.IpcWriteOptions(compression="lz4")

    def add(self, bucket: I64, columns: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """Rows given as columns (the schema's names), each row going to its `bucket`."""
        if bucket.size == 0:
            return
        order = np.argsort(bucket, kind="stable")
        batch = pa.record_batch(
            [pa.array(columns[name][order], f.type) for name, f in zip(
                self.schema.names, self.schema, strict=True
            )],
            schema=self.schema,
        )  # fmt: skip
        self._write_sorted(bucket[order], pa.Table.from_batches([batch]))
        self.rows += bucket.size

    def add_table(self, bucket: I64, table: pa.Table) -> None:
        """Rows of a table with the spill's schema, each row going to its `bucket`."""
        if bucket.size == 0:
            return
        if bool((bucket[1:] >= bucket[:-1]).all()):  # rows in time order: nothing to move
            self._write_sorted(bucket, table.combine_chunks())
        else:
            order = np.argsort(bucket, kind="stable")
            self._write_sorted(bucket[order], table.take(pa.array(order)).combine_chunks())
        self.rows += bucket.size

    def _write_sorted(self, bucket: I64, table: pa.Table) -> None:
        starts = np.flatnonzero(np.diff(bucket, prepend=bucket[0] - 1))
        ends = np.append(starts[1:], bucket.size)
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            self._writer(int(bucket[start])).write_table(table.slice(start, end - start))

    def _writer(self, bucket: int) -> pa.ipc.RecordBatchStreamWriter:
        if bucket not in self._writers:
            path = self._dir / f"{bucket}.arrow"
            self._writers[bucket] = pa.ipc.new_stream(str(path), self.schema, options=self._options)
        return self._writers[bucket]

    def buckets(self) -> Iterator[pa.Table]:
        """Every bucket's rows, in bucket order; each file is deleted once it has been read."""
        for writer in self._writers.values():
            writer.close()
        for bucket in sorted(self._writers):
            path = self._dir / f"{bucket}.arrow"
            with pa.OSFile(str(path)) as source:
                table = pa.ipc.open_stream(source).read_all()
            path.unlink()
            yield table
        self._writers.clear()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Spill:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
