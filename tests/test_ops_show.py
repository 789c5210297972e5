"""s3worker.ops.show: which file is shown (a local one, or a result object downloaded from the
processed bucket of a stack in the moto server over HTTP), and how: a Parquet table as text
fitted to the terminal or as CSV, a JSON or text result as it is."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from s3worker.exits import UsageError
from s3worker.ops import OperatorError
from s3worker.ops.show import is_parquet, local_copy, read_table, render, show
from s3worker.ops.stack import Stack


def parquet(rows: int = 2) -> bytes:
    buffer = io.BytesIO()
    table = pa.table(
        {"store": [f"s{n}" for n in range(rows)], "revenue": [n + 0.5 for n in range(rows)]}
    )
    pq.write_table(table, buffer)
    return buffer.getvalue()


class NoAws:
    """What `show` gets when the file is local: asking for AWS at all is a failure."""

    def __call__(self) -> Any:
        raise AssertionError("a local file needs no AWS")


def test_a_local_file_is_shown_without_aws(tmp_path: Path) -> None:
    path = tmp_path / "daily.parquet"
    path.write_bytes(parquet())

    with local_copy(str(path), NoAws(), NoAws()) as found:
        assert found == path


def test_a_folder_is_not_a_file_to_show(tmp_path: Path) -> None:
    with (
        pytest.raises(UsageError, match=f"^{tmp_path} is not a file$"),
        local_copy(str(tmp_path), NoAws(), NoAws()),
    ):
        pass


@pytest.fixture
def processed(aws: str, name: str) -> tuple[Any, Stack]:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    s3.create_bucket(Bucket=f"{name}-other")
    return s3, Stack("s", {"ProcessedBucketName": name})


def test_a_key_is_downloaded_from_the_processed_bucket_and_removed_after(
    processed: tuple[Any, Stack], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, stack = processed
    key = "in/day.csv/daily_store.parquet"
    s3.put_object(Bucket=stack.processed_bucket, Key=key, Body=parquet())
    monkeypatch.chdir(tmp_path)  # no such local file here

    with local_copy(key, lambda: s3, lambda: stack) as path:
        assert path.name == "daily_store.parquet"
        assert path.read_bytes() == parquet()
    assert not path.exists()  # the temporary copy is gone


def test_an_s3_address_names_its_own_bucket(processed: tuple[Any, Stack], tmp_path: Path) -> None:
    s3, stack = processed
    other = f"{stack.processed_bucket}-other"
    s3.put_object(Bucket=other, Key="x/summary.json", Body=b'{"rows": 1}')

    with local_copy(f"s3://{other}/x/summary.json", lambda: s3, NoAws()) as path:
        assert path.read_text() == '{"rows": 1}'


def test_a_missing_object_says_where_the_result_keys_are_listed(
    processed: tuple[Any, Stack],
) -> None:
    s3, stack = processed
    bucket = stack.processed_bucket

    with (
        pytest.raises(UsageError) as raised,
        local_copy("in/nope.parquet", lambda: s3, lambda: stack),
    ):
        pass

    assert str(raised.value) == (
        f"no file in/nope.parquet here and no object s3://{bucket}/in/nope.parquet; "
        "`s3worker results INPUT` lists an input's result keys"
    )


def test_other_download_failures_are_explained(processed: tuple[Any, Stack]) -> None:
    s3, _ = processed

    def denied(**_: Any) -> Any:
        from botoanswers import answer

        return answer(403, "<Error><Code>AccessDenied</Code><Message>no</Message></Error>")

    s3.meta.events.register("before-send.s3.HeadObject", denied)
    with (
        pytest.raises(OperatorError, match="access denied for HeadObject"),
        local_copy("s3://b/k.parquet", lambda: s3, NoAws()),
    ):
        pass


def test_parquet_is_told_by_its_magic_bytes(tmp_path: Path) -> None:
    table, text, short = tmp_path / "a.bin", tmp_path / "b.parquet", tmp_path / "c"
    table.write_bytes(parquet())
    text.write_text("PAR")  # a name is not a format
    short.write_bytes(b"")

    assert [is_parquet(p) for p in (table, text, short)] == [True, False, False]


def test_render_shows_the_first_rows_and_the_shape() -> None:
    table = read_table_of(parquet(rows=30))

    text = render(table, 3, "daily.parquet")

    lines = text.splitlines()
    assert lines[0].split() == ["store", "revenue"]
    assert [line.split()[0] for line in lines[1:4]] == ["s0", "s1", "s2"]
    assert lines[-1] == (
        "daily.parquet: 30 rows x 2 columns; showing 3 (--rows N for more, --csv for all)"
    )
    assert render(table, 30, "t").splitlines()[-1] == "t: 30 rows x 2 columns"


def test_long_cells_are_cut_to_keep_the_table_readable() -> None:
    table = pa.table({"message": ["x" * 200]})

    text = render(table, 5, "t")

    assert "x" * 200 not in text
    assert max(len(line) for line in text.splitlines()) < 120


def read_table_of(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def test_show_prints_a_table_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(parquet())

    show(path, "t.parquet", 20, as_csv=False)
    assert "t.parquet: 2 rows x 2 columns" in capsys.readouterr().out
    assert read_table(path).num_rows == 2


def test_show_as_csv_writes_every_row(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(parquet(rows=3))

    show(path, "t.parquet", 1, as_csv=True)  # --rows is for the text table only

    assert capfd.readouterr().out.splitlines() == [
        '"store","revenue"', '"s0",0.5', '"s1",1.5', '"s2",2.5',
    ]  # fmt: skip


def test_a_json_result_is_printed_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "summary.json"
    path.write_text('{"rows": 3}\n')

    show(path, "summary.json", 20, as_csv=False)

    assert capsys.readouterr().out == '{"rows": 3}\n'
    with pytest.raises(UsageError, match=r"summary\.json is not a Parquet table; --csv applies"):
        show(path, "summary.json", 20, as_csv=True)


def test_a_binary_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00\xff\xfe")

    with pytest.raises(UsageError, match=r"x\.gz is neither a Parquet table nor text"):
        show(path, "x.gz", 20, as_csv=False)
