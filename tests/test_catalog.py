"""The BI catalog: the template's Glue tables are the processors' declared outputs, the
processors really write those schemas, and the partition projection is valid Athena."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]
from processing import run, sample
from s3worker import catalog
from s3worker.processors.bi import BiTable, all_tables, table_of

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy/cloudformation.yaml"
TABLES = all_tables()
SAMPLE_FORMAT = {"applogs": "clf"}

# Athena's partition projection (docs.aws.amazon.com/athena/latest/ug/
# partition-projection-supported-types.html): the types, a date range's relative form
# NOW[+-]N<unit>, and the interval units.
PROJECTION_TYPES = {"enum", "integer", "date", "injected"}
UNITS = ("YEARS", "MONTHS", "WEEKS", "DAYS", "HOURS", "MINUTES", "SECONDS")
RELATIVE = re.compile(rf"^NOW(?:[+-]\d+(?:{'|'.join(UNITS)}))?$")
# Java date-format letters the processors' dt values (YYYY-MM-DD) can be written in.
JAVA_TO_STRPTIME = {"yyyy": "%Y", "MM": "%m", "dd": "%d"}


def glue_tables() -> dict[str, dict[str, Any]]:
    """TableInput of every AWS::Glue::Table in the template, by table name."""
    resources = cfn_yaml.load(str(TEMPLATE))["Resources"]
    inputs = [r["Properties"]["TableInput"] for r in resources.values()
              if r["Type"] == "AWS::Glue::Table"]  # fmt: skip
    return {t["Name"]: t for t in inputs}


def sub(value: Any, bucket: str = "processed", prefix: str = "") -> str:
    """A `!Sub [text, {Root: ...}]` location as CloudFormation renders it."""
    text, _ = value["Fn::Sub"]
    text = text.replace("${ProcessedBucket}", bucket).replace("${Root}", prefix)
    return str(re.sub(r"\$\{!(\w+)\}", r"${\1}", text))


# --- the template and the declarations -------------------------------------------------------


def test_the_template_block_is_what_make_catalog_renders() -> None:
    text = TEMPLATE.read_text()
    assert catalog.rewrite(text) == text, "run `make catalog` and commit the template"


def test_every_declared_table_is_in_the_template_with_its_schema() -> None:
    found = glue_tables()
    assert sorted(found) == sorted(t.name for t in TABLES)
    for table in TABLES:
        glue = found[table.name]
        columns = [(c["Name"], c["Type"]) for c in glue["StorageDescriptor"]["Columns"]]
        assert columns == catalog.columns(table), table.name
        keys = [(k["Name"], k["Type"]) for k in glue.get("PartitionKeys", [])]
        assert keys == [(k, "string") for k in table.partition_keys], table.name


def test_a_schema_change_shows_as_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    # A processor that adds a column to an output: the template no longer matches.
    import pyarrow as pa
    from s3worker.processors.sales import analysis

    wider = analysis.TOTALS_SCHEMA.append(pa.field("refunds", pa.float64()))
    monkeypatch.setattr(analysis, "TOTALS_SCHEMA", wider)
    text = TEMPLATE.read_text()
    assert catalog.rewrite(text) != text
    assert "- {Name: refunds, Type: double}" in catalog.rewrite(text)


def test_table_names_are_unique_and_athena_safe() -> None:
    names = [t.name for t in TABLES]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)


# --- the processors write what they declare --------------------------------------------------


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each processor run once on a generated sample: its output folder."""
    found = {}
    for kind in sorted({t.processor for t in TABLES}):
        tmp = tmp_path_factory.mktemp(kind)
        src, _ = sample(tmp, kind, 3000, fmt=SAMPLE_FORMAT.get(kind, "csv"))
        run(kind, src, tmp / "out")
        found[kind] = tmp / "out"
    return found


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
def test_each_output_has_its_declared_parquet_schema(
    table: BiTable, outputs: dict[str, Path]
) -> None:
    out = outputs[table.processor]
    files = [p for p in out.rglob("*.parquet") if table.match(str(p.relative_to(out))) is not None]
    assert files, f"{table.processor} wrote no {table.path}"
    for path in files:
        written = pq.read_schema(path).remove_metadata()
        assert written.equals(table.schema().remove_metadata()), path
        # partition values are in the key (dt=...), never a column of the file
        assert not set(table.partition_keys) & set(written.names)


def test_every_parquet_output_but_rejects_belongs_to_a_table(outputs: dict[str, Path]) -> None:
    for kind, out in outputs.items():
        for path in out.rglob("*.parquet"):
            rel = str(path.relative_to(out))
            if rel != "rejected.parquet":
                assert table_of(kind, rel) is not None, f"{kind}: {rel} is in no BI table"


# --- partition projection, as Athena reads it -------------------------------------------------


def java_date(fmt: str, value: str) -> bool:
    pattern = fmt
    for java, c in JAVA_TO_STRPTIME.items():
        pattern = pattern.replace(java, c)
    from datetime import datetime

    try:
        datetime.strptime(value, pattern)
    except ValueError:
        return False
    return not re.search(r"[A-Za-z]", re.sub(r"%[YmdHMS]", "", pattern))


def check_projection(glue: dict[str, Any]) -> list[str]:
    """What Athena would refuse in a table's projection properties (empty: nothing)."""
    params = glue["Parameters"]
    keys = [k["Name"] for k in glue.get("PartitionKeys", [])]
    problems = []
    if params.get("projection.enabled") != "true":
        problems.append("projection.enabled is not 'true'")
    configured = {
        p.split(".")[1] for p in params if p.startswith("projection.") and p.count(".") > 1
    }
    if configured != set(keys):
        problems.append(f"projection configured for {configured}, partition keys {keys}")
    for key in keys:
        kind = params.get(f"projection.{key}.type")
        if kind not in PROJECTION_TYPES:
            problems.append(f"{key}: type {kind!r}")
        if kind == "date":
            problems += check_date(key, params)
    template = sub(params["storage.location.template"])
    if sorted(re.findall(r"\$\{(\w+)\}", template)) != sorted(keys):
        problems.append(f"storage.location.template {template} must name each partition key")
    if not template.startswith(sub(glue["StorageDescriptor"]["Location"])):
        problems.append("partitions lie outside the table's location")
    return problems


def check_date(key: str, params: dict[str, str]) -> list[str]:
    problems = []
    fmt = params.get(f"projection.{key}.format", "")
    if not java_date(fmt, "2024-01-31"):
        problems.append(f"{key}: format {fmt!r} does not read the processors' dt values")
    ends = params.get(f"projection.{key}.range", "").split(",")
    if len(ends) != 2 or not all(RELATIVE.match(e) or java_date(fmt, e) for e in ends):
        problems.append(f"{key}: range {ends}")
    interval = params.get(f"projection.{key}.interval", "1")
    if not interval.isdigit() or int(interval) < 1:
        problems.append(f"{key}: interval {interval!r}")
    if params.get(f"projection.{key}.interval.unit", "DAYS") not in UNITS:
        problems.append(f"{key}: interval.unit")
    return problems


def test_partitioned_tables_are_projected_as_athena_expects() -> None:
    tables = glue_tables()
    partitioned = [t for t in TABLES if t.partition_keys]
    assert [t.name for t in partitioned] == ["sales_detail"]
    for table in partitioned:
        assert check_projection(tables[table.name]) == [], table.name
    detail = tables["sales_detail"]
    assert sub(detail["Parameters"]["storage.location.template"], prefix="r/") == (
        "s3://processed/r/_tables/sales_detail/dt=${dt}/"
    )


def test_the_projection_check_catches_what_athena_refuses() -> None:
    good = glue_tables()["sales_detail"]
    broken = {
        "projection.dt.range": "NOW-3YEAR,NOW",  # the unit is plural
        "projection.dt.format": "yyyy/MM/dd",  # not how dt= values are written
        "projection.dt.type": "day",
        "projection.dt.interval.unit": "DAY",
    }
    for name, value in broken.items():
        glue = {**good, "Parameters": {**good["Parameters"], name: value}}
        assert check_projection(glue), name
    no_key = {"Fn::Sub": ["s3://${ProcessedBucket}/${Root}_tables/sales_detail/", {}]}
    glue = {**good, "Parameters": {**good["Parameters"], "storage.location.template": no_key}}
    assert check_projection(glue)


def test_unpartitioned_tables_are_not_projected() -> None:
    for table in (t for t in TABLES if not t.partition_keys):
        params = glue_tables()[table.name]["Parameters"]
        assert not [p for p in params if p.startswith("projection.")], table.name


def test_tables_read_the_index_as_symlinks_to_parquet() -> None:
    for name, glue in glue_tables().items():
        storage = glue["StorageDescriptor"]
        assert storage["InputFormat"] == catalog.SYMLINK_INPUT
        assert storage["SerdeInfo"]["SerializationLibrary"] == catalog.PARQUET_SERDE
        assert sub(storage["Location"]) == f"s3://processed/_tables/{name}/"
