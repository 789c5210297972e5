"""s3worker.ops.report.sources: which results a report reads. From the processed bucket (the
moto server over HTTP): every manifest under the prefix, only the outputs it lists and only the
tables its processor's charts use; from a local folder: each folder with a summary.json."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from s3worker.contract import InputDoc, Layout, Manifest, OutputDoc
from s3worker.exits import UsageError
from s3worker.ops import OperatorError
from s3worker.ops.report.sources import CHART_TABLES, Result, from_bucket, from_dir, manifest_keys

DAILY = pd.DataFrame({"dt": ["2024-01-01"], "revenue": [10.0], "tickets": [2]})


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@pytest.fixture
def bucket(aws: str, name: str) -> tuple[Any, str]:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    return s3, name


def publish(s3: Any, bucket: str, layout: Layout, key: str, processor: str, **files: bytes) -> None:
    """What the daemon writes for one input: tagged outputs, then the manifest listing them."""
    outputs = []
    for path, body in files.items():
        out = layout.output_key(key, path, "v1")
        s3.put_object(Bucket=bucket, Key=out, Body=body)
        outputs.append(OutputDoc(out, path, len(body)))
    manifest = Manifest(
        InputDoc("raw", key), processor, "1", tuple(outputs), {"finished_at": "2024-01-02T03:04:05"}
    )
    s3.put_object(
        Bucket=bucket, Key=layout.manifest_key(key), Body=json.dumps(manifest.render()).encode()
    )


def test_each_manifest_gives_its_summary_and_chart_tables(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    layout = Layout("results")
    summary = json.dumps({"processor": "sales", "revenue": 10.0}).encode()
    publish(s3, name, layout, "sales/b.csv", "sales", **{
        "summary.json": summary, "daily_totals.parquet": parquet(DAILY),
        "rows.parquet": parquet(DAILY),  # normalised rows: no chart reads them
    })  # fmt: skip
    publish(s3, name, layout, "sales/a.csv", "sales", **{"summary.json": summary})

    results = from_bucket(s3, name, layout)

    assert [r.source for r in results] == ["sales/a.csv", "sales/b.csv"]  # sorted by key
    b = results[1]
    assert (b.processor, dict(b.summary), b.finished_at) == (
        "sales",
        {"processor": "sales", "revenue": 10.0},
        "2024-01-02T03:04:05",
    )
    assert list(b.tables) == ["daily_totals.parquet"]
    pd.testing.assert_frame_equal(b.tables["daily_totals.parquet"], DAILY)
    assert results[0].tables == {}


def test_only_the_manifests_outputs_are_read_not_older_files(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    layout = Layout()
    publish(s3, name, layout, "in/x.csv", "sales", **{"daily_totals.parquet": parquet(DAILY)})
    # An older version's table beside it, which the manifest no longer lists
    stale = DAILY.assign(revenue=[999.0])
    s3.put_object(Bucket=name, Key="in/x.csv/daily_totals.v0.parquet", Body=parquet(stale))

    (result,) = from_bucket(s3, name, layout)

    assert result.tables["daily_totals.parquet"]["revenue"].tolist() == [10.0]
    assert result.summary == {}  # no summary listed: an empty one


def test_error_reports_and_other_prefixes_are_not_results(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    publish(s3, name, Layout("results"), "a.csv", "applogs")
    publish(s3, name, Layout("other"), "b.csv", "applogs")
    for key in ("results/_errors/c.csv/_manifest.json", "_errors/e.csv/_manifest.json",
                "results/d.csv/not_manifest.json"):  # fmt: skip
        s3.put_object(Bucket=name, Key=key, Body=b"{}")

    assert list(manifest_keys(s3, name, Layout("results"))) == ["results/a.csv/_manifest.json"]
    # Without a prefix `_errors/` is the reports' root; `results/_errors/...` an input's folder
    assert list(manifest_keys(s3, name, Layout())) == [
        "other/b.csv/_manifest.json",
        "results/_errors/c.csv/_manifest.json",
        "results/a.csv/_manifest.json",
    ]
    assert [r.source for r in from_bucket(s3, name, Layout("results"))] == ["a.csv"]


def test_a_bucket_that_is_not_there_is_an_operator_error(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    with pytest.raises(OperatorError, match="ListObjectsV2 failed: NoSuchBucket"):
        from_bucket(s3, f"{name}-missing", Layout())


def folder(root: Path, rel: str, summary: dict[str, Any], **tables: pd.DataFrame) -> None:
    path = root / rel
    path.mkdir(parents=True, exist_ok=True)
    (path / "summary.json").write_text(json.dumps(summary))
    for table, frame in tables.items():
        frame.to_parquet(path / table, index=False)


def test_a_folder_of_results_gives_one_result_per_summary(tmp_path: Path) -> None:
    folder(tmp_path, "sales/day.csv", {"processor": "sales"}, **{
        "daily_totals.parquet": DAILY, "rows.parquet": DAILY,
    })  # fmt: skip
    folder(tmp_path, "logs/x.log", {"processor": "applogs"})  # its table is missing: no chart

    results = from_dir(tmp_path)

    assert [(r.source, r.processor) for r in results] == [
        ("logs/x.log", "applogs"), ("sales/day.csv", "sales"),
    ]  # fmt: skip
    assert list(results[1].tables) == ["daily_totals.parquet"]
    assert results[0].tables == {}


def test_the_folder_itself_can_be_the_result(tmp_path: Path) -> None:
    folder(tmp_path, "out", {"processor": "custom", "rows": 3})

    assert from_dir(tmp_path / "out") == [
        Result("out", "custom", {"processor": "custom", "rows": 3})
    ]


def test_a_folder_without_results_says_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no summary\.json in it or below; `s3worker process"):
        from_dir(tmp_path)
    with pytest.raises(UsageError, match="no such directory"):
        from_dir(tmp_path / "nowhere")


def test_every_chart_table_is_a_table_the_charts_read() -> None:
    from s3worker.ops.report.charts import SECTIONS

    assert set(CHART_TABLES) == set(SECTIONS)
    assert all(name.endswith(".parquet") for names in CHART_TABLES.values() for name in names)
