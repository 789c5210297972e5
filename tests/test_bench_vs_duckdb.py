"""bench/bench_vs_duckdb.py: the results table shows every run's CPU and the read's order,
and keeps rows measured before those figures existed."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from bench_vs_duckdb import markdown
from test_bench_vs_duckdb_settle import one_round
from vs_duckdb import summary

META = {"cpus": 2, "duckdb": "2.0.0", "when": "now", "command": "bench", "load_average": [1, 2]}
OLD = {
    "kind": "applogs",
    "size_gib": 0.5,
    "file_mb": 553.9,
    "processor_s": 5.4,
    "duckdb_s": 12.1,
    "ratio": 0.447,
    "peak_rss": 676e6,
    "duckdb_peak_rss": 646e6,
    "floor_s": 4.8,
    "floor_ratio": 0.894,
    "same_outputs": True,
}


def test_table_has_cpu_columns_and_the_reads_by_what_ran_before() -> None:
    new = {"kind": "sales", "size_gib": 0.5, "file_mb": 537.2, **summary(one_round(), [], True)}
    new["measured"] = {"when": "then", "command": "bench --kinds sales", "load_average": [3, 4]}
    lines = markdown(META, [OLD, new])
    rows = {line.split(" | ")[0]: line.split(" | ") for line in lines if line.startswith("| ")}
    header = rows["| kind"]
    sales = dict(zip(header, rows["| sales"], strict=True))
    assert sales["processor CPU s"] == "4.0"
    assert sales["DuckDB CPU s"] == "14.0"
    assert sales["read s"] == "2.0 / 2.5"
    assert sales["read / processor CPU |"] == "0.75 |"
    applogs = dict(zip(header, rows["| applogs"], strict=True))
    assert applogs["vs read"] == "0.894"
    assert applogs["read CPU s"] == "-"
    order = [line for line in lines if line.startswith("- sales 0.5 GiB: read after")]
    assert len(order) == 1
    assert "after the processor 2.0 s (2.5 CPU s), after DuckDB 3.0 s (3.5 CPU s)" in order[0]
    assert "(`bench --kinds sales`, then, load average [3, 4])" in order[0]
