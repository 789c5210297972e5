"""`s3worker query "SELECT ..."`: SQL over the BI tables of the processed bucket, locally.

The table names are the Glue catalog's (`s3worker.processors.bi`), so the SQL that runs in
Athena runs here. Each table holds exactly the outputs the current manifests list: an
unfinished or superseded run's files are never read. DuckDB (in-process, no extension, nothing
downloaded) runs the query over pyarrow datasets read through pyarrow's S3 filesystem, with the
credentials, region and `AWS_ENDPOINT_URL` the other commands use; only the tables the query
names are read, and only the columns and `dt` partitions it needs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from s3worker.contract import ERRORS_DIR, MANIFEST_NAME, TABLES_DIR, Layout, Manifest, untag
from s3worker.exits import UsageError
from s3worker.ops import OperatorError
from s3worker.ops.aws import explained
from s3worker.ops.s3read import get_json, list_objects
from s3worker.processors.bi import BiTable, all_tables

if TYPE_CHECKING:
    import pyarrow as pa

    from s3worker.ops.aws import Aws

READERS = 8  # manifests read at once
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class TableFile:
    """One current output of one input: its key and partition values."""

    key: str
    partition: dict[str, str]


def referenced(sql: str, tables: Iterable[BiTable] | None = None) -> list[BiTable]:
    """The catalog tables a query names (as whole words, any case)."""
    words = set(re.findall(r"[a-z_][a-z0-9_]*", sql.lower()))
    return [t for t in (tables or all_tables()) if t.name in words]


def manifest_keys(s3: Any, bucket: str, layout: Layout, scan: int) -> list[str]:
    """The keys of every input's manifest under the results prefix."""
    root = f"{layout.prefix}/" if layout.prefix else ""
    with explained():
        objects, truncated = list_objects(s3, bucket, root, scan)
    if truncated:
        raise OperatorError(f"more than {scan:,} result objects: pass a larger --scan")
    skip = (f"{root}{ERRORS_DIR}/", f"{root}{TABLES_DIR}/")
    keys = (str(o["Key"]) for o in objects)
    return [k for k in keys if k.rsplit("/", 1)[-1] == MANIFEST_NAME and not k.startswith(skip)]


def read_manifests(s3: Any, bucket: str, keys: list[str]) -> list[Manifest]:
    def read(key: str) -> Manifest | None:
        with explained():
            doc = get_json(s3, bucket, key)
        return Manifest.parse(doc) if doc is not None else None  # deleted meanwhile

    with ThreadPoolExecutor(READERS) as pool:
        return [m for m in pool.map(read, keys) if m is not None]


def files_of(table: BiTable, manifests: Iterable[Manifest], layout: Layout) -> list[TableFile]:
    """The table's current files: the manifest-listed outputs of its processor and path."""
    found = []
    for manifest in manifests:
        if manifest.processor_name != table.processor:
            continue
        root = manifest_root(manifest, layout)
        for output in manifest.outputs:
            path = output.path or untag(output.key.removeprefix(root))
            if (values := table.match(path)) is not None:
                found.append(TableFile(output.key, values))
    return sorted(found, key=lambda f: f.key)


def manifest_root(manifest: Manifest, layout: Layout) -> str:
    """The results folder a manifest's outputs are under (`PREFIX/KEY/`)."""
    return layout.results_prefix(layout.source(manifest.input.bucket, manifest.input.key))


def s3_filesystem(aws: Aws) -> Any:
    """pyarrow's S3 filesystem with the session's credentials and region, and the endpoint
    of `AWS_ENDPOINT_URL` (the embedded AWS) when set."""
    from pyarrow import fs

    with explained():
        creds = aws.session.get_credentials()
    if creds is None:
        raise OperatorError("no AWS credentials (set AWS_PROFILE or pass --profile)")
    frozen = creds.get_frozen_credentials()
    options: dict[str, Any] = {
        "access_key": frozen.access_key, "secret_key": frozen.secret_key,
        "session_token": frozen.token, "region": aws.region,
    }  # fmt: skip
    endpoint = next((os.environ[v] for v in ENDPOINT_VARIABLES if os.environ.get(v)), None)
    if endpoint:
        url = urlsplit(endpoint)
        options |= {"endpoint_override": url.netloc or url.path, "scheme": url.scheme or "https"}
    return fs.S3FileSystem(**options)


def table_schema(table: BiTable) -> pa.Schema:
    import pyarrow as pa

    schema: pa.Schema = table.schema()
    return pa.schema([*schema, *((k, pa.string()) for k in table.partition_keys)])


def dataset(table: BiTable, bucket: str, files: list[TableFile], filesystem: Any) -> Any:
    """The table as one pyarrow dataset; partition values from the keys, as Athena's."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    schema = table_schema(table)
    if not files:
        return pa.table({f.name: pa.array([], f.type) for f in schema})

    def where(values: dict[str, str]) -> Any:
        expr = pc.scalar(True)
        for key in table.partition_keys:
            expr = expr & (pc.field(key) == values[key])
        return expr

    return ds.FileSystemDataset.from_paths(
        [f"{bucket}/{f.key}" for f in files], schema=schema, format=ds.ParquetFileFormat(),
        filesystem=filesystem, partitions=[where(f.partition) for f in files],
    )  # fmt: skip


def run(aws: Aws, bucket: str, layout: Layout, sql: str, scan: int) -> pa.Table:
    """The query's answer, every row of it."""
    import duckdb

    tables = referenced(sql)
    if not tables:
        names = ", ".join(t.name for t in all_tables())
        raise UsageError(f"the query names no table of the catalog; the tables: {names}")
    s3 = aws.client("s3")
    manifests = read_manifests(s3, bucket, manifest_keys(s3, bucket, layout, scan))
    filesystem = s3_filesystem(aws)
    con = duckdb.connect(":memory:")
    try:
        for table in tables:
            files = files_of(table, manifests, layout)
            con.register(table.name, dataset(table, bucket, files, filesystem))
        result = con.sql(sql)
        if result is None:
            raise UsageError("not a query: s3worker query runs SELECT statements")
        return as_athena_types(result.to_arrow_table())
    except duckdb.Error as exc:
        raise UsageError(f"the query failed: {exc}".rstrip()) from None
    finally:
        con.close()


def as_athena_types(table: pa.Table) -> pa.Table:
    """DuckDB sums integers into HUGEINT (Arrow decimal128(38, 0)) where Athena keeps bigint:
    such columns become int64 when every value fits."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            try:
                column = pc.cast(table.column(i), pa.int64())
            except pa.ArrowInvalid:  # beyond 64 bits: left as it is
                continue
            table = table.set_column(i, pa.field(field.name, pa.int64()), column)
    return table
