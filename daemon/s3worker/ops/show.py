"""`s3worker show KEY|FILE`: one result table (Parquet) as text, or as CSV with --csv.

FILE is a local file (what `s3worker process` wrote); KEY a result object in the stack's
processed bucket, as `s3worker results` lists it (or s3://PROCESSED/KEY). JSON results
(summary.json, _manifest.json) are printed as they are.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s3worker.exits import UsageError
from s3worker.ops.aws import explained, http_status
from s3worker.ops.s3read import split_s3_uri

if TYPE_CHECKING:
    import pyarrow as pa

    from s3worker.ops.stack import Stack

PARQUET_MAGIC = b"PAR1"
MAX_CELL = 40  # characters of one cell in the text table


@contextmanager
def local_copy(source: str, s3: Callable[[], Any], stack: Callable[[], Stack]) -> Iterator[Path]:
    """The file to show: `source` itself, or the S3 object downloaded to a temporary file."""
    path = Path(source)
    if path.is_file():
        yield path
        return
    if path.exists():
        raise UsageError(f"{source} is not a file")
    bucket, key = split_s3_uri(source) or (stack().processed_bucket, source)
    with tempfile.TemporaryDirectory(prefix="s3worker-show-") as tmp:
        dest = Path(tmp) / (Path(key).name or "object")
        _download(s3(), bucket, key, dest)
        yield dest


def _download(s3: Any, bucket: str, key: str, dest: Path) -> None:
    from botocore.exceptions import ClientError

    try:
        with explained():
            s3.download_file(bucket, key, str(dest))
    except Exception as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and http_status(cause) == 404:
            raise UsageError(
                f"no file {key} here and no object s3://{bucket}/{key}; "
                "`s3worker results INPUT` lists an input's result keys"
            ) from None
        raise


def is_parquet(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == PARQUET_MAGIC


def read_table(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(path)


def write_csv(table: pa.Table) -> None:
    import pyarrow.csv as pacsv

    sys.stdout.flush()
    pacsv.write_csv(table, sys.stdout.buffer)
    sys.stdout.buffer.flush()


def render(table: pa.Table, rows: int, name: str) -> str:
    """The first `rows` rows as a text table fitted to the terminal, and the shape."""
    frame = table.slice(0, rows).to_pandas()
    width = shutil.get_terminal_size((120, 24)).columns
    text = frame.to_string(index=False, max_colwidth=MAX_CELL, line_width=width)
    shown = min(rows, table.num_rows)
    more = f"; showing {shown} (--rows N for more, --csv for all)" if shown < table.num_rows else ""
    return f"{text}\n\n{name}: {table.num_rows:,} rows x {table.num_columns} columns{more}"


def show(path: Path, name: str, rows: int, as_csv: bool) -> None:
    if not is_parquet(path):
        if as_csv:
            raise UsageError(f"{name} is not a Parquet table; --csv applies to tables only")
        try:
            sys.stdout.write(path.read_text())
        except UnicodeDecodeError:
            raise UsageError(f"{name} is neither a Parquet table nor text") from None
        return
    table = read_table(path)
    if as_csv:
        write_csv(table)
    else:
        print(render(table, rows, name))
