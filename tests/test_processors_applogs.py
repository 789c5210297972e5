"""Applogs: Combined Log Format and JSON lines give the same figures, whatever the chunks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from processing import run, sample, scores, table


@pytest.mark.parametrize(
    ("fmt", "gzip"), [("clf", False), ("clf", True), ("jsonl", False), ("csv", True)]
)
def test_counts_match_and_bad_lines_are_rejected(tmp_path: Path, fmt: str, gzip: bool) -> None:
    src, truth = sample(tmp_path, "applogs", 8_000, fmt=fmt, gzip=gzip)
    result = run("applogs", src, tmp_path / "out", chunk_rows=3_000)
    assert result.summary["requests"] == truth.planted["requests"][0]
    assert result.summary["status_classes"]["5xx"] == truth.planted["status_5xx"][0]
    assert result.summary["user_agents"]["bot"] == truth.planted["bots"][0]
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet")
    precision, recall, msg = scores(
        rejected["record"].dropna().astype(int), truth.planted["malformed"]
    )
    assert recall >= 0.9, msg
    assert precision >= 0.8, msg


def test_clf_and_json_give_the_same_minutes(tmp_path: Path) -> None:
    clf, _ = sample(tmp_path, "applogs", 6_000, fmt="clf")
    jsonl, _ = sample(tmp_path, "applogs", 6_000, fmt="jsonl")
    run("applogs", clf, tmp_path / "clf")
    run("applogs", jsonl, tmp_path / "jsonl")
    a, b = (
        table(tmp_path / "clf", "per_minute.parquet", ["minute"]),
        table(tmp_path / "jsonl", "per_minute.parquet", ["minute"]),
    )
    pd.testing.assert_frame_equal(
        a.drop(columns=["p50_ms", "p95_ms", "p99_ms"]),
        b.drop(columns=["p50_ms", "p95_ms", "p99_ms"]),
    )
    # CLF carries the request time in seconds with 3 decimals: percentiles agree to the bin
    assert ((a["p95_ms"] - b["p95_ms"]).abs() / b["p95_ms"] < 0.05).all()


def test_small_chunks_give_the_same_outputs(tmp_path: Path) -> None:
    src, _ = sample(tmp_path, "applogs", 10_000, fmt="clf")
    whole = run("applogs", src, tmp_path / "whole")
    small = run("applogs", src, tmp_path / "small", chunk_rows=777)
    assert whole.summary == small.summary
    for name, order in (("per_minute.parquet", ["minute"]), ("top_paths.parquet", ["rank"])):
        pd.testing.assert_frame_equal(
            table(tmp_path / "whole", name, order), table(tmp_path / "small", name, order)
        )


def test_percentiles_and_error_rate_of_a_known_minute(tmp_path: Path) -> None:
    lines = [
        f'{{"ts": "2024-01-01T10:00:{i:02d}Z", "url": "/a?x={i}",'
        f' "status_code": {500 if i < 10 else 200},'
        f' "duration_ms": {i + 1}, "remote_addr": "10.0.0.{i % 5}"}}'
        for i in range(60)
    ]
    src = tmp_path / "app.log"
    src.write_text("\n".join(lines) + "\n")
    result = run("applogs", src, tmp_path / "out")
    minute = pd.read_parquet(tmp_path / "out" / "per_minute.parquet").iloc[0]
    assert minute["requests"] == 60
    assert minute["unique_clients"] == 5
    assert minute["error_rate"] == pytest.approx(10 / 60)
    assert minute["p50_ms"] == pytest.approx(30, rel=0.03)
    assert minute["p99_ms"] == pytest.approx(60, rel=0.03)
    assert result.summary["top_paths"] == ["/a"]  # query strings do not split a path
