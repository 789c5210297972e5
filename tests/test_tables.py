"""tables.py: the table index (one text file per input and table or partition, naming its
current outputs), pure for the entries, against the emulator's S3 over HTTP for the writes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import boto3
from procs import Pipeline
from s3worker.aws import ClientsContext
from s3worker.contract import InputDoc, Layout, Manifest, OutputDoc, untag
from s3worker.events import ObjectRef
from s3worker.retry import RetryPolicy
from s3worker.storage import Storage
from s3worker.tables import SOURCE_ID_CHARS, TableIndex, entries, source_id
from structlog.testing import capture_logs
from tenacity import wait_none

KEY = "sales/day.csv"
SID = source_id(KEY)
DAILY = f"{KEY}/daily_totals.t1.parquet"


def detail(day: str, tag: str = "t1") -> str:
    return f"{KEY}/sales/dt={day}/part-0.{tag}.parquet"


def test_untag_and_entries_are_pure() -> None:
    assert untag("daily_totals.0123456789abcdef.parquet") == "daily_totals.parquet"
    assert untag("sales/dt=2024-01-01/part-0.0123456789abcdef.parquet") == (
        "sales/dt=2024-01-01/part-0.parquet"
    )
    layout = Layout("r")
    keys = [
        "r/in.csv/daily_totals.t.parquet", "r/in.csv/rejected.t.parquet",
        "r/in.csv/sales/dt=2024-01-01/part-0.t.parquet", "r/other.csv/daily_totals.t.parquet",
    ]  # fmt: skip
    got = entries(layout, "b", "in.csv", "sales", keys)
    sid = source_id("in.csv")
    assert got == {
        f"r/_tables/sales_daily/{sid}.txt": "s3://b/r/in.csv/daily_totals.t.parquet\n",
        f"r/_tables/sales_detail/dt=2024-01-01/{sid}.txt": (
            "s3://b/r/in.csv/sales/dt=2024-01-01/part-0.t.parquet\n"
        ),
    }
    assert entries(layout, "b", "in.csv", "applogs", keys) == {}  # another processor's names


def test_a_source_id_is_stable_per_input_and_hides_the_key() -> None:
    assert source_id(KEY) == SID
    assert len(SID) == SOURCE_ID_CHARS
    assert source_id("sales/other.csv") != SID
    assert "/" not in SID


def test_keys_with_a_line_break_or_outside_the_results_are_left_out() -> None:
    layout = Layout()
    keys = [f"{KEY}/daily_totals.t.parquet", "elsewhere/daily_totals.t.parquet"]
    assert entries(layout, "b", KEY, "sales", keys) == {
        f"_tables/sales_daily/{SID}.txt": f"s3://b/{KEY}/daily_totals.t.parquet\n"
    }
    # An input key with a line break (S3 allows one): its outputs cannot be named one a line
    odd = "sales/da\ny.csv"
    assert entries(layout, "b", odd, "sales", [f"{odd}/daily_totals.t.parquet"]) == {}


def index_of(pipeline: Pipeline) -> dict[str, list[str]]:
    s3 = boto3.client("s3")
    found = {}
    for key in pipeline.result_keys():
        if key.startswith("_tables/"):
            text = s3.get_object(Bucket=pipeline.processed, Key=key)["Body"].read().decode()
            found[key] = [u.removeprefix(f"s3://{pipeline.processed}/") for u in text.splitlines()]
    return found


def update(
    pipeline: Pipeline,
    processor: str,
    keys: list[str],
    replaced: list[str],
    created: bool = False,
    calls: list[tuple[str, dict[str, Any]]] | None = None,
) -> None:
    """TableIndex.update; `calls`: the S3 operations it made, with their parameters."""

    def seen(model: Any, params: dict[str, Any], **_: Any) -> None:
        if calls is not None:
            calls.append((model.name, params))

    async def main() -> None:
        async with ClientsContext(1) as clients:
            clients.s3.meta.events.register("provide-client-params.s3.*", seen)
            storage = Storage(clients.s3, RetryPolicy(3, wait_none()), pipeline.processed, Layout())
            await TableIndex(storage).update(
                ObjectRef(pipeline.raw, KEY), processor, keys, replaced, created=created
            )

    asyncio.run(main())


def write_manifest(pipeline: Pipeline, outputs: list[str], processor: str = "sales") -> None:
    manifest = Manifest(
        input=InputDoc(pipeline.raw, KEY), processor_name=processor,
        outputs=tuple(OutputDoc(k, untag(k.removeprefix(f"{KEY}/"))) for k in outputs),
    )  # fmt: skip
    body = json.dumps(manifest.render()).encode()
    boto3.client("s3").put_object(Bucket=pipeline.processed, Key=f"{KEY}/_manifest.json", Body=body)


def test_update_writes_one_entry_per_table_and_partition(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    outputs = [DAILY, detail("2024-01-01"), detail("2024-01-02"), f"{KEY}/rejected.t1.parquet"]
    write_manifest(pipeline, outputs)
    with capture_logs() as logs:
        update(pipeline, "sales", outputs, [])
    assert index_of(pipeline) == {
        f"_tables/sales_daily/{SID}.txt": [DAILY],
        f"_tables/sales_detail/dt=2024-01-01/{SID}.txt": [detail("2024-01-01")],
        f"_tables/sales_detail/dt=2024-01-02/{SID}.txt": [detail("2024-01-02")],
    }
    (line,) = [e for e in logs if e["event"] == "table_index_written"]
    assert (line["entries"], line["removed"]) == (3, 0)
    head = boto3.client("s3").head_object(
        Bucket=pipeline.processed, Key=f"_tables/sales_daily/{SID}.txt"
    )
    assert head["ContentType"] == "text/plain"


def test_a_new_version_overwrites_its_entries_and_drops_the_partitions_it_lost(
    aws: str, name: str
) -> None:
    pipeline = Pipeline.create(name)
    v1 = [f"{KEY}/daily_totals.t1.parquet", detail("2024-01-01"), detail("2024-01-02")]
    write_manifest(pipeline, v1)
    update(pipeline, "sales", v1, [])
    v2 = [f"{KEY}/daily_totals.t2.parquet", detail("2024-01-02", "t2")]
    write_manifest(pipeline, v2)
    with capture_logs() as logs:
        update(pipeline, "sales", v2, v1)
    assert index_of(pipeline) == {
        f"_tables/sales_daily/{SID}.txt": [f"{KEY}/daily_totals.t2.parquet"],
        f"_tables/sales_detail/dt=2024-01-01/{SID}.txt": [],  # emptied: it names no file
        f"_tables/sales_detail/dt=2024-01-02/{SID}.txt": [detail("2024-01-02", "t2")],
    }
    (line,) = [e for e in logs if e["event"] == "table_index_written"]
    assert (line["entries"], line["removed"]) == (2, 1)


def test_a_version_routed_to_another_processor_empties_the_old_processors_entries(
    aws: str, name: str
) -> None:
    # A sales file overwritten with appointments: the sales tables must no longer show it.
    pipeline = Pipeline.create(name)
    v1 = [DAILY, detail("2024-01-01")]
    write_manifest(pipeline, v1)
    update(pipeline, "sales", v1, [])
    v2 = [f"{KEY}/daily_professional.t2.parquet", f"{KEY}/appointments.t2.parquet"]
    write_manifest(pipeline, v2, processor="appointments")
    with capture_logs() as logs:
        update(pipeline, "appointments", v2, v1)
    assert index_of(pipeline) == {
        f"_tables/sales_daily/{SID}.txt": [],
        f"_tables/sales_detail/dt=2024-01-01/{SID}.txt": [],
        f"_tables/appointments_daily_professional/{SID}.txt": [v2[0]],
        f"_tables/appointments_bookings/{SID}.txt": [v2[1]],
    }
    (line,) = [e for e in logs if e["event"] == "table_index_written"]
    assert (line["entries"], line["removed"]) == (2, 2)


def test_a_version_with_no_bi_outputs_empties_the_entries_of_the_one_it_replaced(
    aws: str, name: str
) -> None:
    # Routed to a plug-in with no BI tables: its outputs name no table, the old ones go.
    pipeline = Pipeline.create(name)
    write_manifest(pipeline, [DAILY])
    update(pipeline, "sales", [DAILY], [])
    v2 = [f"{KEY}/lines.t2.json"]
    write_manifest(pipeline, v2, processor="echo")
    update(pipeline, "echo", v2, [DAILY])
    assert index_of(pipeline) == {f"_tables/sales_daily/{SID}.txt": []}


def test_outputs_of_no_table_write_nothing_and_read_no_manifest(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    calls: list[str] = []

    async def main() -> None:
        async with ClientsContext(1) as clients:
            clients.s3.meta.events.register(
                "before-call.s3.*", lambda model, **_: calls.append(model.name)
            )
            storage = Storage(clients.s3, RetryPolicy(3, wait_none()), pipeline.processed, Layout())
            keys = [f"{KEY}/lines.t1.json", f"{KEY}/summary.t1.json"]
            await TableIndex(storage).update(ObjectRef(pipeline.raw, KEY), "echo", keys, ())

    asyncio.run(main())
    assert calls == []
    assert index_of(pipeline) == {}


def test_a_late_writer_puts_the_newest_manifests_entries_back(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    old = [f"{KEY}/daily_totals.t1.parquet", detail("2024-01-01")]
    newest = [f"{KEY}/daily_totals.t2.parquet", detail("2024-01-02", "t2")]
    write_manifest(pipeline, newest)  # a newer version swapped its manifest in meanwhile
    update(pipeline, "sales", old, [])
    assert index_of(pipeline) == {
        f"_tables/sales_daily/{SID}.txt": [f"{KEY}/daily_totals.t2.parquet"],
        f"_tables/sales_detail/dt=2024-01-01/{SID}.txt": [],
        f"_tables/sales_detail/dt=2024-01-02/{SID}.txt": [detail("2024-01-02", "t2")],
    }


def test_a_first_manifests_entries_are_created_and_not_read_back(aws: str, name: str) -> None:
    # Given an input's first manifest (swapped in with If-None-Match: *)
    pipeline = Pipeline.create(name)
    outputs = [DAILY, detail("2024-01-01")]
    write_manifest(pipeline, outputs)
    calls: list[tuple[str, dict[str, Any]]] = []
    # When its entries are written
    update(pipeline, "sales", outputs, [], created=True, calls=calls)
    # Then each is created only where there is none, and the manifest is not read again
    assert [(op, p["Key"], p.get("IfNoneMatch")) for op, p in calls] == [
        ("PutObject", f"_tables/sales_daily/{SID}.txt", "*"),
        ("PutObject", f"_tables/sales_detail/dt=2024-01-01/{SID}.txt", "*"),
    ]
    assert index_of(pipeline) == {
        f"_tables/sales_daily/{SID}.txt": [DAILY],
        f"_tables/sales_detail/dt=2024-01-01/{SID}.txt": [detail("2024-01-01")],
    }


def test_a_first_manifests_late_entries_never_bring_back_what_a_newer_version_removed(
    aws: str, name: str
) -> None:
    # Given a first version's run, slow to write its entries, and a newer version (sharing no
    # table or partition with it) that replaced its manifest and wrote its own entries
    pipeline = Pipeline.create(name)
    old = [detail("2024-01-01")]
    newest = [detail("2024-01-02", "t2")]
    write_manifest(pipeline, newest)
    update(pipeline, "sales", newest, old)
    # When the first version's entries come after all (created: it was the first manifest)
    calls: list[tuple[str, dict[str, Any]]] = []
    update(pipeline, "sales", old, [], created=True, calls=calls)
    # Then it found the newer version's (emptied) entry, read the manifest again and put the
    # newest entries back: no entry names a file of the replaced version
    assert ("GetObject", f"{KEY}/_manifest.json") in [(op, p["Key"]) for op, p in calls]
    assert index_of(pipeline) == {
        f"_tables/sales_detail/dt=2024-01-01/{SID}.txt": [],
        f"_tables/sales_detail/dt=2024-01-02/{SID}.txt": [detail("2024-01-02", "t2")],
    }


def test_many_partitions_are_all_written(aws: str, name: str, monkeypatch: Any) -> None:
    import s3worker.tables as tables

    monkeypatch.setattr(tables, "PARALLEL_PUTS", 2)
    pipeline = Pipeline.create(name)
    days = [f"2024-01-{d:02d}" for d in range(1, 21)]
    outputs = [detail(day) for day in days]
    write_manifest(pipeline, outputs)
    update(pipeline, "sales", outputs, [])
    assert sorted(index_of(pipeline)) == sorted(
        f"_tables/sales_detail/dt={day}/{SID}.txt" for day in days
    )
