"""cli.py in-process: the parser, `sample` then `process` (the whole processing path without
AWS), what `run` hands the daemon, and the one line and exit code of each failure a user can
act on (`explain`). tests/test_cli_errors.py runs the installed command in a subprocess."""

from __future__ import annotations

import errno
import gc
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from s3worker import cli, exits
from s3worker.cli import build_parser, explain, main
from s3worker.config import Settings
from s3worker.errors import ConfigError
from s3worker.exits import UsageError
from s3worker.ops import OperatorError, UnreachableError


def test_sample_then_process_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out, truth = tmp_path / "s.csv.gz", tmp_path / "out", tmp_path / "truth.json"
    assert (
        main(
            [
                "sample",
                "sales",
                "--rows",
                "3000",
                "--out",
                str(src),
                "--gzip",
                "--truth",
                str(truth),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["process", str(src), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["processor"] == "sales"
    assert summary["lines"] > 2_900
    assert json.loads(truth.read_text())["planted"]["malformed"]
    assert (out / "summary.json").exists()
    assert (out / "top_products.parquet").exists()


def test_forced_processor_and_unknown_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "x.txt"
    src.write_text("hello\n")
    assert main(["process", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "no processor recognises" in capsys.readouterr().err
    assert main(["process", str(src), "--processor", "nope"]) == 2
    assert "no processor named 'nope'" in capsys.readouterr().err


def test_process_of_a_missing_file_and_a_header_without_a_processor_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["process", str(tmp_path / "none.csv")]) == exits.USAGE
    assert capsys.readouterr().err == f"s3worker: {tmp_path / 'none.csv'}: no such file\n"
    src = tmp_path / "rows.csv"
    src.write_text("1,2\n3,4\n")
    out = tmp_path / "out"
    assert main(["process", str(src), "--out", str(out), "--option", "header=a,b"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s3worker: configuration error: a header-less file")
    assert "needs --processor" in err
    assert not out.exists()


def test_a_file_the_processor_refuses_leaves_nothing_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad.csv.gz"
    src.write_bytes(b"not gzip at all")
    assert main(["process", str(src), "--out", str(tmp_path / "o")]) == exits.FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"s3worker: {src}: ")
    assert err.endswith(f"(nothing written to {tmp_path / 'o'}/)\n")
    assert not (tmp_path / "o").exists()


def test_the_key_option_is_what_the_routes_are_matched_against(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "readings.csv"
    assert main(["sample", "sensors", "--rows", "2000", "--out", str(src)]) == 0
    capsys.readouterr()
    routes = json.dumps({"routes": [{"prefix": "plant/", "processor": "nope"}]})
    process = ["process", str(src), "--out", str(tmp_path / "out"), "--config", routes]
    # The route names no installed processor: only a key under plant/ reaches it
    assert main([*process, "--key", "plant/r.csv"]) == exits.USAGE
    assert "no processor named 'nope'" in capsys.readouterr().err
    assert main(process) == 0  # the file's own name matches no route: sniffed
    assert json.loads(capsys.readouterr().out)["processor"] == "sensors"


def test_sample_to_standard_output_reports_on_standard_error(
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert main(["sample", "sales", "--rows", "50", "--out", "-", "--format", "jsonl"]) == 0
    out, err = capfd.readouterr()
    assert json.loads(out.splitlines()[0])["product"].startswith("SKU-")
    assert err.startswith("wrote ")
    assert err.endswith(" of sales to -\n")
    assert "malformed lines" in err


def test_a_sample_format_the_kind_has_not_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample", "sales", "--out", str(tmp_path / "x"), "--format", "clf"]) == 2
    assert capsys.readouterr().err.startswith("s3worker: fmt must be one of")


def test_the_parser_knows_every_command_and_its_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == {
        "run", "process", "sample", "upload", "status", "results", "show", "query", "report",
        "dlq",
    }  # fmt: skip
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out == "s3worker 0.1.0\n"
    with pytest.raises(SystemExit):
        main([])  # a command is required


@pytest.fixture
def handlers() -> Iterator[None]:
    """`run` installs its own SIGTERM/SIGINT handlers: put the test runner's back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_run_hands_the_daemon_its_settings_with_the_flags_over_the_environment(
    handlers: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import s3worker.worker

    monkeypatch.setenv("S3WORKER_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/env-q")
    monkeypatch.setenv("S3WORKER_OUTPUT_BUCKET", "env-bucket")
    monkeypatch.setenv("S3WORKER_INPUT_BUCKETS", "raw")
    monkeypatch.setenv("S3WORKER_IDLE_ACTION", "stop")
    seen: dict[str, Any] = {}

    def run_daemon(settings: Settings, early: list[int]) -> int:
        os.kill(os.getpid(), signal.SIGTERM)  # while the daemon is still starting
        seen.update(settings=settings, early=early, collecting=gc.isenabled())
        return 7

    monkeypatch.setattr(s3worker.worker, "run_daemon", run_daemon)
    code = main(["run", "--output-bucket", "flag-bucket", "--concurrency", "3",
                 "--scratch-dir", str(tmp_path)])  # fmt: skip
    assert code == 7  # the daemon's own exit code
    # The collector waits through start-up (the daemon turns it on at READY=1), and is on
    # again for the caller whatever the daemon did
    assert seen["collecting"] is False
    assert gc.isenabled()
    settings = seen["settings"]
    assert settings.queue_url.endswith("/env-q")  # no flag: the environment's
    assert (settings.output_bucket, settings.concurrency) == ("flag-bucket", 3)
    assert settings.idle_action == "stop"
    assert settings.scratch_dir == tmp_path
    assert seen["early"] == [signal.SIGTERM]  # noted, not fatal: the daemon stops cleanly


def test_a_bug_is_raised_with_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "cmd_sample", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["sample", "sales", "--out", "x"])


@pytest.mark.parametrize(
    ("exc", "line", "code"),
    [
        (ConfigError("S3WORKER_QUEUE_URL is required"),
         "configuration error: S3WORKER_QUEUE_URL is required", exits.USAGE),
        (UsageError("--out: not a directory"), "--out: not a directory", exits.USAGE),
        (OperatorError("no stack"), "no stack", exits.USAGE),
        (UnreachableError("no answer"), "no answer", exits.UNREACHABLE),
        (KeyboardInterrupt(), "interrupted", exits.INTERRUPTED),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "in.csv"),
         "in.csv: No such file or directory", exits.USAGE),
        (PermissionError(errno.EACCES, "Permission denied"), "Permission denied", exits.USAGE),
        (OSError(errno.EIO, "Input/output error", "/dev/sdf"),
         "/dev/sdf: Input/output error", exits.FAILED),
    ],
)  # fmt: skip
def test_each_failure_a_user_can_act_on_is_one_line_and_a_code(
    exc: BaseException, line: str, code: int
) -> None:
    assert explain(exc) == (line, code)


def test_an_unreachable_endpoint_is_found_in_the_chain_and_names_the_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    try:
        try:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")
        except EndpointConnectionError as inner:
            raise RuntimeError("listing the stack failed") from inner
    except RuntimeError as outer:
        text, code = explain(outer) or ("", 0)
    assert code == exits.UNREACHABLE
    assert text.startswith("cannot reach AWS (AWS_ENDPOINT_URL=http://127.0.0.1:9): ")
    assert text.endswith("; check the network, then try again")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert explain(EndpointConnectionError(endpoint_url="https://sqs"))[0].startswith(  # type: ignore[index]
        "cannot reach AWS: "
    )


def test_a_missing_operator_extra_says_how_to_install_it() -> None:
    text, code = explain(ModuleNotFoundError("No module named 'boto3'", name="boto3")) or ("", 0)
    assert text == (
        "this command needs the operator extra (boto3 is not installed): "
        "pip install 's3worker[ops]'"
    )
    assert code == exits.USAGE
    assert explain(ModuleNotFoundError("No module named 'nope'", name="nope")) is None
    assert explain(ValueError("a bug")) is None
