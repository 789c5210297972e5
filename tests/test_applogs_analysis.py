"""The applogs processor's run: requests in, per-minute metrics, breakdowns and rejects out."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from s3worker.errors import BadDataError
from s3worker.processors.applogs.analysis import field_scale, file_format, run
from s3worker.processors.base import JobContext, ProcessResult, read_sample

LINE = '10.0.0.{i} - - [03/Jun/2024:10:0{m}:0{s} +0000] "{req}" {status} 512 "-" "{agent}" 0.020'
IIS_FIELDS = "#Fields: date time c-ip cs-method cs-uri-stem sc-status time-taken"


def clf(i: int, m: int, s: int, req: str, status: int, agent: str = "curl/8") -> str:
    return LINE.format(i=i, m=m, s=s, req=req, status=status, agent=agent)


def run_on(tmp_path: Path, name: str, body: str | bytes, fmt: str | None = None) -> ProcessResult:
    src = tmp_path / name
    src.write_bytes(body.encode() if isinstance(body, str) else body)
    return run(src, tmp_path / "out", JobContext(key=f"logs/{name}", size=len(body)), fmt)


def output(tmp_path: Path, name: str) -> dict[str, list[Any]]:
    return pd.read_parquet(tmp_path / "out" / name).to_dict("list")


@pytest.mark.parametrize(
    ("name", "scale"),
    [
        ("latency_ms", 1.0),
        ("durationMs", 1.0),
        ("duration", 1.0),
        ("request_time", 1000.0),
        ("upstream_response_time", 1000.0),
        ("responseTimeSeconds", 1000.0),
        ("elapsed_us", 0.001),
        ("duration_ns", 1e-6),
    ],
)
def test_latency_units_from_field_names(name: str, scale: float) -> None:
    assert field_scale(name) == scale


def test_log_lines_give_the_tables_and_a_summary(tmp_path: Path) -> None:
    lines = [
        clf(1, 0, 1, "GET /a?x=1 HTTP/1.1", 200, "Mozilla/5.0 (X11)"),
        clf(2, 0, 2, "get /a#top HTTP/1.1", 503, "Googlebot/2.1"),
        clf(1, 1, 3, "Q /b HTTP/1.1", 404, "-"),
    ]
    result = run_on(tmp_path, "access.log", "\n".join(lines) + "\n")
    summary = result.summary
    assert (summary["format"], summary["encoding"], summary["latency_unit"]) == (
        "clf",
        "utf-8",
        "ms",
    )
    assert (summary["requests"], summary["minutes"], summary["rejected_rows"]) == (3, 2, 0)
    assert summary["methods"] == {"GET": 2, "OTHER": 1}  # upper case; one letter is no verb
    assert summary["user_agents"] == {"bot": 1, "human": 1, "unknown": 1}
    assert summary["top_paths"] == ["/a", "/b"]  # without query or fragment
    assert (
        result.rows
        == summary["outputs"]
        == {
            "rejected.parquet": 0,
            "per_minute.parquet": 2,
            "status_codes.parquet": 3,
            "methods.parquet": 2,
            "top_paths.parquet": 2,
        }
    )
    assert output(tmp_path, "per_minute.parquet")["p50_ms"] == pytest.approx([20.0] * 2, rel=0.02)
    assert output(tmp_path, "methods.parquet")["errors"] == [1, 0]


def test_lines_that_are_not_requests_are_rejected_with_their_reason(tmp_path: Path) -> None:
    lines = [
        clf(1, 0, 1, "GET /a HTTP/1.1", 200),
        "# a comment",
        "",
        "   ",
        clf(3, 1, 4, "GET /b HTTP/1.1", 999),
        "garbage line",
        clf(4, 1, 5, "GET /c HTTP/1.1", 200).replace("03/Jun", "33/Jun"),
    ]
    result = run_on(tmp_path, "access.log", "\n".join(lines) + "\n")
    assert (result.summary["requests"], result.summary["rejected_rows"]) == (1, 3)
    rejected = output(tmp_path, "rejected.parquet")
    assert rejected["record"] == [4, 5, 6]  # comments and blank lines are neither
    assert rejected["reason"] == [
        "status: not an HTTP status",
        "not a Common/Combined Log Format line",
        "time: missing or unparseable",
    ]
    assert rejected["raw"][1] == "garbage line"


def test_a_format_given_is_used_instead_of_the_sniffed_one(tmp_path: Path) -> None:
    body = clf(1, 0, 1, "GET /a HTTP/1.1", 200) + "\n"
    result = run_on(tmp_path, "access.log", body, fmt="alb")
    assert (result.summary["format"], result.summary["requests"]) == ("alb", 0)
    assert output(tmp_path, "rejected.parquet")["reason"] == ["not an ALB access log line"]


def test_json_records_by_their_common_names_and_units(tmp_path: Path) -> None:
    records = [
        {"timestamp": "2024-06-03T10:00:01Z", "request": "GET /a?q=1 HTTP/1.1", "status": 200,
         "remote_addr": "10.0.0.1", "duration": "12.5ms", "http_user_agent": "curl/8"},
        {"timestamp": "2024-06-03T10:00:02Z", "request": "POST /b HTTP/1.1", "status": "500",
         "remote_addr": "10.0.0.2", "duration": "1.2s"},
        {"timestamp": "2024-06-03T10:00:03Z", "request": "/c", "method": "get", "status": 0,
         "duration": 40},
        {"timestamp": "not a time", "request": "/d", "status": 200},
        {"timestamp": "2024-06-03T10:00:04Z", "status": 200},
        {"timestamp": "2024-06-03T10:00:05Z", "request": "/e", "status": None},
    ]  # fmt: skip
    result = run_on(tmp_path, "app.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    summary = result.summary
    assert (summary["format"], summary["requests"], summary["rejected_rows"]) == ("jsonl", 3, 3)
    # the request line split into method and path; 0: the client left before a response
    assert summary["methods"] == {"GET": 2, "POST": 1}
    assert summary["status_codes"] == {"0": 1, "200": 1, "500": 1}
    assert summary["top_paths"] == ["/b", "/a", "/c"]  # one request each: errors first
    assert output(tmp_path, "rejected.parquet")["reason"] == [
        "time: missing or unparseable",
        "path: missing",
        "status: missing",
    ]
    # "12.5ms", "1.2s" and a bare 40 (milliseconds by the field's name)
    minute = output(tmp_path, "per_minute.parquet")
    assert minute["p50_ms"] == pytest.approx([40.0], rel=0.02)
    assert minute["p99_ms"] == pytest.approx([1200.0], rel=0.02)


def test_a_latency_field_in_seconds_by_its_name(tmp_path: Path) -> None:
    record = {"ts": "2024-06-03T10:00:01Z", "request_time": 0.5, "path": "/x", "code": 200}
    run_on(tmp_path, "app.jsonl", json.dumps(record) + "\n")
    assert output(tmp_path, "per_minute.parquet")["p50_ms"] == pytest.approx([500.0], rel=0.02)


def test_records_without_time_status_and_path_are_refused(tmp_path: Path) -> None:
    # a time field is not enough: each of the three is needed
    with pytest.raises(BadDataError, match=r"logs need time, status and path fields .*found"):
        run_on(tmp_path, "app.csv", "timestamp,path,user\n2024-06-03T10:00:00Z,/a,ana\n")


def test_w3c_lines_follow_the_fields_header_in_force_where_they_are(tmp_path: Path) -> None:
    lines = [
        IIS_FIELDS,
        "2024-06-03 10:00:01 10.0.0.1 GET /a 200 15",
        "#Fields: date time cs-uri-stem c-ip sc-status",  # the server restarted, other fields
        "2024-06-03 10:00:02 /b 10.0.0.2 404",
    ]
    result = run_on(tmp_path, "u_ex240603.log", "\n".join(lines) + "\n")
    assert (result.summary["format"], result.summary["requests"]) == ("w3c", 2)
    assert result.summary["status_codes"] == {"200": 1, "404": 1}
    assert result.summary["top_paths"] == ["/a", "/b"]
    assert result.summary["unique_clients"] == 2


def test_a_w3c_log_without_a_fields_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadDataError, match="needs a #Fields: header before its first line"):
        run_on(tmp_path, "u_ex.log", "2024-06-03 10:00:01 10.0.0.1 GET /a 200 15\n", fmt="w3c")


@pytest.mark.parametrize("body", [b"", gzip.compress(b""), b"\n", b"\n\n  \n"])
def test_an_empty_log_in_a_given_format_is_no_requests(tmp_path: Path, body: bytes) -> None:
    result = run_on(tmp_path, "access.log", body, fmt="clf")
    assert (result.summary["requests"], result.summary["rejected_rows"]) == (0, 0)
    assert result.summary["error_rate"] is None


def test_the_file_format_is_a_line_format_or_else_a_record_format(tmp_path: Path) -> None:
    for name, body, fmt in [
        ("a.log", clf(1, 0, 1, "GET / HTTP/1.1", 200), "clf"),
        ("b.log", IIS_FIELDS + "\n", "w3c"),
        ("c.log", '{"ts": 1, "path": "/"}\n', "jsonl"),
        ("d.log", "ts,path,status\n1,/,200\n", "csv"),
    ]:
        src = tmp_path / name
        src.write_text(body)
        assert file_format(read_sample(src, name)) == fmt, name
