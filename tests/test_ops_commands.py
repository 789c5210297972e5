"""s3worker.ops.commands: the operator subcommands' options and bodies as `s3worker` runs them
(in-process, against a stack in the moto server over HTTP): which stack, what each prints with
and without --json, and the exit code each outcome gives."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from opstack import cli, create_stack
from s3worker import exits
from s3worker.cli import build_parser
from s3worker.ops.commands import STACK_VARIABLE, stack_options


@pytest.fixture(autouse=True)
def no_stack_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STACK_VARIABLE, raising=False)


def test_the_stack_defaults_to_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STACK_VARIABLE, "prod")
    options = stack_options()

    assert options.parse_args([]).stack == "prod"
    assert options.parse_args(["--stack", "dev", "--region", "eu-west-3"]).stack == "dev"
    assert options.parse_args(["--profile", "ops"]).profile == "ops"


def test_each_command_has_its_documented_defaults() -> None:
    parse = build_parser().parse_args

    status = parse(["status"])
    assert (status.limit, status.scan, status.prefix, status.json) == (10, 100_000, None, False)
    upload = parse(["upload", "a", "b"])
    assert (upload.paths, upload.prefix, upload.concurrency) == (["a", "b"], "", 8)
    redrive = parse(["dlq", "redrive"])
    assert (redrive.dry_run, redrive.limit, redrive.wait) == (False, 100_000, 300)
    assert parse(["dlq", "list"]).limit == 1000
    assert (parse(["show", "k"]).rows, parse(["query", "SELECT 1"]).rows) == (20, 50)
    assert parse(["report"]).out == "s3worker-report.html"


def test_query_prints_json_or_csv_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["query", "SELECT 1", "--json", "--csv"])
    assert raised.value.code == exits.USAGE
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["results", "in/a.csv"],
        ["dlq", "list"],
        ["dlq", "redrive", "--dry-run"],
        ["query", "SELECT 1"],
        ["report"],
        ["show", "in/a.csv/summary.json"],  # a key, not a local file: it needs the stack
    ],
)
def test_a_command_that_reads_the_stack_needs_one(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, *argv)

    assert code == exits.USAGE
    assert err == f"s3worker: no stack: pass --stack NAME or set {STACK_VARIABLE}\n"
    assert out == ""


def test_upload_then_results_report_what_happened(
    aws: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack and a file uploaded with --json
    pipeline = create_stack(name)
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    code, out, _ = cli(capsys, "upload", str(tmp_path / "a.csv"), "--prefix", "in",
                       "--stack", name, "--json")  # fmt: skip
    report = json.loads(out)
    assert code == exits.OK
    assert (report["uploaded"], report["bucket"]) == (["in/a.csv"], pipeline.raw)
    # When the operator asks for its results before any worker ran
    code, out, _ = cli(capsys, "results", "in/a.csv", "--stack", name)
    as_json = json.loads(cli(capsys, "results", f"s3://{pipeline.raw}/in/a.csv",
                             "--stack", name, "--json")[1])  # fmt: skip
    # Then it is pending: exit 3, as text and as JSON
    assert code == exits.PENDING
    assert out.startswith("in/a.csv: not processed yet (uploaded ")
    assert as_json["state"] == "pending"


def test_an_upload_that_fails_exits_1_and_says_why(
    aws: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = create_stack(name)
    boto3.client("s3").delete_bucket(Bucket=pipeline.raw)
    (tmp_path / "a.csv").write_text("x\n")

    code, out, _ = cli(capsys, "upload", str(tmp_path / "a.csv"), "--stack", name)

    assert code == exits.FAILED
    assert "0 file(s)" in out.splitlines()[0]
    assert "1 failed" in out.splitlines()[0]
    assert out.splitlines()[1].startswith("  failed: a.csv: ")


def test_status_and_the_dlq_of_a_new_stack(
    aws: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_stack(name, prefix="results")

    status = cli(capsys, "status", "--stack", name, "--json")
    text = cli(capsys, "status", "--stack", name)
    letters = cli(capsys, "dlq", "list", "--stack", name)
    listed = cli(capsys, "dlq", "list", "--stack", name, "--json")
    dry = cli(capsys, "dlq", "redrive", "--stack", name, "--dry-run")

    assert status[0] == text[0] == letters[0] == dry[0] == exits.OK
    assert json.loads(status[1])["stack"] == name
    assert text[1].startswith(f"stack {name} (us-east-1)\nwork queue   visible 0")
    assert letters[1] == "the dead-letter queue is empty\n"
    assert json.loads(listed[1]) == []
    assert dry[1] == "dry run: 0 message(s) would be sent back to the work queue\n"


def parquet_file(path: Path) -> Path:
    pq.write_table(pa.table({"store": ["a", "b"], "revenue": [1.5, 2.5]}), path)
    return path


def test_show_of_a_local_file_needs_no_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = parquet_file(tmp_path / "daily.parquet")

    code, out, err = cli(capsys, "show", str(path), "--rows", "1")

    assert (code, err) == (exits.OK, "")
    assert out.splitlines()[0].split() == ["store", "revenue"]
    assert f"{path}: 2 rows x 2 columns; showing 1" in out


def test_query_answers_as_a_table_or_json(
    aws: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_stack(name)  # nothing processed yet: the catalog's tables are empty
    sql = "SELECT COUNT(*) AS n, 'x' AS letter FROM sales_daily"

    table = cli(capsys, "query", sql, "--stack", name)
    as_json = cli(capsys, "query", sql, "--stack", name, "--json")
    no_table = cli(capsys, "query", "SELECT 1", "--stack", name)

    assert table[0] == as_json[0] == exits.OK
    assert table[1].splitlines()[0].split() == ["n", "letter"]
    assert "query: 1 rows x 2 columns" in table[1]
    assert json.loads(as_json[1]) == [{"n": 0, "letter": "x"}]
    assert no_table[0] == exits.USAGE
    assert no_table[2].startswith("s3worker: the query names no table of the catalog")


def test_a_report_from_a_folder_names_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "results" / "in" / "a.csv"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text('{"processor": "mine", "rows": 3}')
    out_page = tmp_path / "site" / "r.html"

    code, out, _ = cli(capsys, "report", "--from-dir", str(tmp_path / "results"),
                       "--out", str(out_page))  # fmt: skip

    assert code == exits.OK
    assert out.startswith(f"wrote {out_page} (")
    assert out.endswith(f" MB): 1 input(s) from {tmp_path / 'results'}\n")
    assert "in/a.csv" in out_page.read_text()
