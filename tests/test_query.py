"""`s3worker query` and the table index, against the moto server over HTTP.

The daemon processes real sales files (the built-in processor) into an s3worker-shaped stack;
then the operator's SQL reads the catalog's tables. Expected figures are computed with plain
pandas from the uploaded CSV.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from conftest import CREDENTIALS
from opstack import cli, create_stack
from procs import Pipeline
from s3worker import exits
from s3worker.aws import ClientsContext
from s3worker.config import Settings
from s3worker.contract import TABLES_DIR, Layout
from s3worker.events import ObjectRef
from s3worker.processors.registry import Registry
from s3worker.retry import RetryPolicy
from s3worker.storage import Storage
from s3worker.tables import TableIndex, source_id
from s3worker.worker import ExitReason, serve
from tenacity import wait_none

DAY1 = (
    "date,store,product,units,unit_price\n"
    "2026-11-25,s1,p1,2,3.50\n"
    "2026-11-25,s2,p2,1,10.00\n"
    "2026-11-26,s1,p1,4,3.50\n"
    "2026-11-26,s1,p3,1,99.90\n"
)
DAY2 = "date,store,product,units,unit_price\n2026-11-27,s2,p2,3,10.00\n2026-11-27,s1,p1,1,3.50\n"


def drain(pipeline: Pipeline, scratch: Path) -> None:
    """The real daemon, with the built-in processors, until the queue is empty."""
    settings = Settings.from_env(pipeline.env(scratch))
    reason = asyncio.run(
        serve(settings, processors=Registry(), retry=RetryPolicy(3, wait=wait_none()))
    )
    assert reason is ExitReason.IDLE


def revenue_by_day(*csvs: str) -> dict[str, float]:
    frame = pd.concat([pd.read_csv(io.StringIO(c)) for c in csvs])
    frame["revenue"] = frame["units"] * frame["unit_price"]
    return {str(k): round(float(v), 2) for k, v in frame.groupby("date")["revenue"].sum().items()}


def query(capsys: Any, name: str, sql: str, *flags: str) -> tuple[int, str, str]:
    return cli(capsys, "query", sql, "--stack", name, *flags)


def rows(capsys: Any, name: str, sql: str) -> list[dict[str, Any]]:
    code, out, err = query(capsys, name, sql, "--json")
    assert code == exits.OK, err
    found: list[dict[str, Any]] = json.loads(out)
    return found


@pytest.fixture(scope="module")
def env(moto_server: str) -> Iterator[None]:
    """The `aws` fixture's settings, for the whole module: one processed stack serves every
    read-only test (the daemon takes seconds to drain)."""
    with pytest.MonkeyPatch.context() as mp:
        for var, value in CREDENTIALS.items():
            mp.setenv(var, value)
        mp.setenv("AWS_ENDPOINT_URL", moto_server)
        mp.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
        yield


@pytest.fixture(scope="module")
def stack(env: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    process_two_days(name, tmp_path_factory.mktemp("scratch"))
    return name


@pytest.fixture
def processed(stack: str) -> Pipeline:
    return pipeline_of(stack)


def process_two_days(name: str, scratch: Path) -> Pipeline:
    """Two sales inputs processed, and a stray output no manifest lists (a superseded run's
    file): a copy of day1's daily totals under another version tag."""
    pipeline = create_stack(name)
    pipeline.upload("sales/day1.csv", DAY1.encode())
    pipeline.upload("sales/day2.csv", DAY2.encode())
    drain(pipeline, scratch)
    stray = pipeline.output_bytes("sales/day1.csv", "daily_totals.parquet")
    boto3.client("s3").put_object(
        Bucket=pipeline.processed, Key="sales/day1.csv/daily_totals.0123456789abcdef.parquet",
        Body=stray,
    )  # fmt: skip
    return pipeline


def pipeline_of(name: str) -> Pipeline:
    out = {
        o["OutputKey"]: o["OutputValue"]
        for o in boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0][
            "Outputs"
        ]
    }
    return Pipeline(
        out["RawBucketName"], out["ProcessedBucketName"], out["WorkQueueUrl"],
        out["DeadLetterQueueUrl"],
    )  # fmt: skip


def test_a_query_sums_exactly_the_current_outputs(
    processed: Pipeline, stack: str, capsys: Any
) -> None:
    sql = (
        "SELECT dt, ROUND(SUM(revenue), 2) AS revenue, SUM(lines) AS lines FROM sales_daily "
        "GROUP BY dt ORDER BY dt"
    )
    found = rows(capsys, stack, sql)
    # the stray copy of day1's totals is not counted, though reading the folder would
    assert {r["dt"]: r["revenue"] for r in found} == revenue_by_day(DAY1, DAY2)
    # an integer sum is an integer, as in Athena (bigint), not DuckDB's 128-bit decimal
    assert [r["lines"] for r in found] == [2, 2, 2]
    everything = [k for k in processed.result_keys() if "/daily_totals." in k]
    assert len(everything) == 3


def test_partitions_are_a_column_and_filter_the_files(
    processed: Pipeline, stack: str, capsys: Any
) -> None:
    sql = (
        "SELECT dt, store, product, revenue FROM sales_detail "
        "WHERE dt = '2026-11-26' ORDER BY product"
    )
    found = rows(capsys, stack, sql)
    assert found == [
        {"dt": "2026-11-26", "store": "s1", "product": "p1", "revenue": 14.0},
        {"dt": "2026-11-26", "store": "s1", "product": "p3", "revenue": 99.9},
    ]


def readme_sql() -> list[str]:
    """The SQL of the README's example questions, as printed there."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return re.findall(r"```sql\n(.*?)```", text, re.S)


def test_the_readmes_questions_run_as_written(processed: Pipeline, stack: str, capsys: Any) -> None:
    per_day, top = readme_sql()
    assert [(r["dt"], r["revenue"]) for r in rows(capsys, stack, per_day)] == sorted(
        revenue_by_day(DAY1, DAY2).items()
    )
    assert [(r["product"], r["revenue"]) for r in rows(capsys, stack, top)] == [
        ("p3", 99.9), ("p2", 40.0), ("p1", 24.5)
    ]  # fmt: skip


def test_text_and_csv_output(processed: Pipeline, stack: str, capsys: Any) -> None:
    sql = "SELECT dt, tickets FROM sales_daily ORDER BY dt"
    code, text, _ = query(capsys, stack, sql)
    assert code == exits.OK
    assert text.split("\n")[0].split() == ["dt", "tickets"]
    assert "query: 3 rows x 2 columns" in text
    code, csv, _ = query(capsys, stack, sql, "--csv")
    assert code == exits.OK
    assert csv.splitlines() == ['"dt","tickets"', '"2026-11-25",2', '"2026-11-26",2',
                                '"2026-11-27",2']  # fmt: skip


def test_a_table_without_results_is_empty_not_an_error(
    processed: Pipeline, stack: str, capsys: Any
) -> None:
    assert rows(capsys, stack, "SELECT COUNT(*) AS n FROM sensors_anomalies") == [{"n": 0}]


def test_bad_sql_and_unknown_tables_are_usage_errors(
    processed: Pipeline, stack: str, capsys: Any
) -> None:
    code, _, err = query(capsys, stack, "SELEKT * FROM sales_daily")
    assert code == exits.USAGE
    assert "the query failed" in err
    assert "syntax error" in err.lower()
    code, _, err = query(capsys, stack, "SELECT * FROM orders")
    assert code == exits.USAGE
    assert "names no table of the catalog" in err
    assert "sales_detail" in err


def test_a_stack_that_is_not_there_is_a_usage_error(env: None, capsys: Any) -> None:
    code, _, err = query(capsys, "no-such-stack", "SELECT * FROM sales_daily")
    assert code == exits.USAGE
    assert "not found" in err


# --- the table index Athena reads ----------------------------------------------------------


def index(pipeline: Pipeline) -> dict[str, list[str]]:
    """Every index entry and the keys it names."""
    s3 = boto3.client("s3")
    found = {}
    for key in pipeline.result_keys():
        if key.startswith(f"{TABLES_DIR}/"):
            body = s3.get_object(Bucket=pipeline.processed, Key=key)["Body"].read().decode()
            prefix = f"s3://{pipeline.processed}/"
            found[key] = [line.removeprefix(prefix) for line in body.splitlines()]
    return found


def listed(pipeline: Pipeline, key: str, path: str) -> str:
    return pipeline.output_key(key, path)


def test_the_index_names_each_inputs_current_outputs(processed: Pipeline) -> None:
    found = index(processed)
    day1, day2 = source_id("sales/day1.csv"), source_id("sales/day2.csv")
    assert found[f"_tables/sales_daily/{day1}.txt"] == [
        listed(processed, "sales/day1.csv", "daily_totals.parquet")
    ]
    assert found[f"_tables/sales_detail/dt=2026-11-27/{day2}.txt"] == [
        listed(processed, "sales/day2.csv", "sales/dt=2026-11-27/part-0.parquet")
    ]
    # one entry per input and table (three partitions of sales_detail); none for rejects
    assert len([k for k in found if k.startswith("_tables/sales_detail/")]) == 3
    assert len(found) == 2 * 3 + 3
    assert not [k for k in found if "rejected" in k]


def test_a_new_version_rewrites_its_entries_and_drops_lost_partitions(
    aws: str, name: str, scratch: Path, capsys: Any
) -> None:
    # Given the two days processed (a stack of its own: this test changes it)
    processed = process_two_days(name, scratch)
    # When day1.csv is replaced by a version without 2026-11-25
    day1_v2 = DAY1.replace("2026-11-25", "2026-11-26")
    processed.upload("sales/day1.csv", day1_v2.encode())
    drain(processed, scratch)
    # Then its 2026-11-25 partition entry names nothing, the others name v2's files only
    found = index(processed)
    day1 = source_id("sales/day1.csv")
    assert found[f"_tables/sales_detail/dt=2026-11-25/{day1}.txt"] == []
    assert found[f"_tables/sales_detail/dt=2026-11-26/{day1}.txt"] == [
        listed(processed, "sales/day1.csv", "sales/dt=2026-11-26/part-0.parquet")
    ]
    named = {k for keys in found.values() for k in keys}
    present = set(processed.result_keys())
    assert named <= present  # no entry names a file that is gone
    # And the query agrees with the new version
    sql = "SELECT dt, ROUND(SUM(revenue), 2) AS revenue FROM sales_daily GROUP BY dt ORDER BY dt"
    assert {r["dt"]: r["revenue"] for r in rows(capsys, name, sql)} == revenue_by_day(day1_v2, DAY2)


async def late_update(pipeline: Pipeline, key: str, keys: list[str]) -> None:
    """A run of an older version of `key` writing its index entries only now."""
    async with ClientsContext(2) as clients:
        storage = Storage(
            clients.s3, RetryPolicy(3, wait=wait_none()), pipeline.processed, Layout()
        )
        await TableIndex(storage).update(ObjectRef(pipeline.raw, key), "sales", keys, ())


def test_a_late_writer_of_an_older_version_leaves_the_newest_entries(
    aws: str, name: str, scratch: Path
) -> None:
    # Given v1 of day1.csv processed, then v2 (without 2026-11-25) processed over it
    pipeline = create_stack(name)
    pipeline.upload("sales/day1.csv", DAY1.encode())
    drain(pipeline, scratch)
    v1 = pipeline.manifest("sales/day1.csv")
    assert v1 is not None
    pipeline.upload("sales/day1.csv", DAY1.replace("2026-11-25", "2026-11-26").encode())
    drain(pipeline, scratch)
    newest = index(pipeline)
    # When v1's run writes its entries late (it swapped its manifest first, by milliseconds)
    asyncio.run(late_update(pipeline, "sales/day1.csv", [o["key"] for o in v1["outputs"]]))
    # Then it read the manifest again and put the newest version's entries back: none names
    # v1's files (deleted) or v1's lost day
    assert index(pipeline) == newest
