"""samples/applogs.py: web server requests as Combined Log Format or JSON lines, with the
request, 5xx and bot counts of the valid lines in the truth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
from s3worker.samples import applogs
from s3worker.samples.writing import Truth, write_sample
from test_samples_writing import assert_reproducible

# Nginx's combined format with $request_time at the end.
CLF = re.compile(
    r'(?P<client>\S+) - - \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) HTTP/1\.1" '
    r'(?P<status>\S+) 512 "-" "(?P<agent>[^"]*)" (?P<seconds>\d+\.\d{3})'
)


def test_same_seed_same_file(tmp_path: Path) -> None:
    assert_reproducible(tmp_path, "applogs", "clf")


def test_every_line_is_combined_log_format_with_a_request_time(tmp_path: Path) -> None:
    out = tmp_path / "access.log"
    truth = write_sample("applogs", 1_000, out, fmt="clf")
    lines = out.read_text().splitlines()
    assert len(lines) == truth.rows
    assert truth.broken_lines == 0
    for line in lines:
        m = CLF.fullmatch(line)
        assert m, line
        assert m["path"] in applogs.PATHS
        assert m["agent"] in applogs.HUMANS + applogs.BOTS


def test_the_counts_in_the_truth_are_those_of_the_valid_records(tmp_path: Path) -> None:
    out = tmp_path / "access.jsonl"
    truth = write_sample("applogs", 10_000, out, fmt="jsonl", seed=5)
    lines = out.read_text().splitlines()
    assert lines[-1] == "{not json"
    records = [json.loads(line) for line in lines[:-1]]
    bad = set(truth.planted["malformed"])
    assert len(bad) == max(3, truth.rows // 500)
    for i in bad:  # in turn an unreadable status and an unreadable time
        assert records[i]["status"] == "ok" or records[i]["time"] == "sometime"
    valid = [r for i, r in enumerate(records) if i not in bad]
    assert all(r["status"].isdigit() and r["time"] != "sometime" for r in valid)
    assert truth.planted["requests"] == [len(valid)]
    assert truth.planted["status_5xx"] == [sum(int(r["status"]) >= 500 for r in valid)]
    assert truth.planted["bots"] == [sum(r["user_agent"] in applogs.BOTS for r in valid)]
    assert 0 < truth.planted["bots"][0] < len(valid) // 2


def test_clf_lines_render_milliseconds_as_seconds() -> None:
    block = pa.table(
        {
            "client": ["10.0.0.1"], "clf_time": ["01/Jun/2024:12:00:00 +0000"],
            "method": ["GET"], "path": ["/"], "status": ["200"], "latency_ms": ["1234.5"],
            "user_agent": ["curl/8.5.0"],
        }
    )  # fmt: skip
    assert applogs.clf_lines(block) == [
        '10.0.0.1 - - [01/Jun/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8.5.0" 1.234'
    ]


def test_only_json_lines_get_a_broken_line() -> None:
    truth = Truth()
    assert next(applogs.generate(10, 1, truth)).num_rows == 10
    assert applogs.broken_lines("jsonl") == ["{not json"]
    assert applogs.broken_lines("clf") == []
