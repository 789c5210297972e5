"""BI tables: which processor output each is, its partition values, its lazily loaded schema."""

from __future__ import annotations

import pyarrow as pa
from processing import heavy_modules_after
from s3worker.processors.bi import BiTable, all_tables, table_named, table_of

EVENTS = BiTable(
    "events_daily", "events", "events/dt={dt}/region={region}/part.0.parquet", "Events",
    "s3worker.processors.applogs.traffic:STATUS_SCHEMA",
)  # fmt: skip


def test_partition_keys_are_the_placeholders_in_order() -> None:
    assert EVENTS.partition_keys == ("dt", "region")
    assert BiTable("t", "p", "totals.parquet", "", "m:X").partition_keys == ()


def test_an_output_matches_with_its_partition_values() -> None:
    path = "events/dt=2024-06-03/region=sa-east-1/part.0.parquet"
    assert EVENTS.match(path) == {"dt": "2024-06-03", "region": "sa-east-1"}
    plain = BiTable("t", "p", "totals.parquet", "", "m:X")
    assert plain.match("totals.parquet") == {}


def test_what_is_not_the_tables_output_does_not_match() -> None:
    assert EVENTS.match("events/dt=2024-06-03/region=a/b/part.0.parquet") is None  # one level
    assert EVENTS.match("events/dt=2024-06-03/region=a/part-0-parquet") is None  # dots literal
    assert EVENTS.match("x/events/dt=1/region=a/part.0.parquet") is None  # anchored
    assert EVENTS.match("events/dt=1/region=a/part.0.parquet.tmp") is None
    assert EVENTS.match("events/dt=/region=a/part.0.parquet") is None  # a value is not empty


def test_the_schema_is_the_named_constant_imported_when_asked_for() -> None:
    schema = EVENTS.schema()
    assert isinstance(schema, pa.Schema)
    assert schema.names == ["minute", "status", "requests"]


def test_declaring_the_tables_imports_no_pandas() -> None:
    statement = "from s3worker.processors.bi import all_tables; all_tables()"
    assert heavy_modules_after(statement) == []


def test_every_built_in_processor_declares_tables_in_catalog_order() -> None:
    processors = [t.processor for t in all_tables()]
    assert list(dict.fromkeys(processors)) == ["sales", "applogs", "sensors", "appointments"]
    assert table_named("applogs_top_paths") == next(
        t for t in all_tables() if t.path == "top_paths.parquet"
    )
    assert table_named("no_such_table") is None


def test_an_output_is_found_by_its_processor_and_path() -> None:
    found = table_of("sales", "sales/dt=2024-01-02/part-0.parquet")
    assert found is not None
    table, values = found
    assert (table.name, values) == ("sales_detail", {"dt": "2024-01-02"})
    assert table_of("applogs", "per_minute.parquet") == (table_named("applogs_per_minute"), {})
    # the same file name from another processor, or a file no table holds: no table
    assert table_of("sensors", "per_minute.parquet") is None
    assert table_of("sales", "rejected.parquet") is None
