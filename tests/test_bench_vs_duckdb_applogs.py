"""The DuckDB query of bench/vs_duckdb/applogs.py computes what the processor computes."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from processing import run

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))  # the package of the kinds
sys.path.insert(0, str(Path(__file__).parents[1] / "bench" / "vs_duckdb"))
from applogs import check, duckdb_query, make_input

COUNTS = ["requests", "status_2xx", "status_3xx", "status_4xx", "status_5xx"]


def test_duckdb_query_gives_the_processors_figures(tmp_path: Path) -> None:
    src = make_input(tmp_path / "access.log", 1 << 20)
    result = run("applogs", src, tmp_path / "processor", chunk_rows=40_000)
    requests = duckdb_query(src, tmp_path / "duckdb")
    assert requests == result.summary["requests"] > 99_000  # the broken lines are skipped

    def read(side: str, name: str, by: list[str]) -> pd.DataFrame:
        frame = pd.read_parquet(tmp_path / side / f"{name}.parquet")
        return frame.sort_values(by).reset_index(drop=True)

    ours, theirs = (
        read("processor", "per_minute", ["minute"]),
        read("duckdb", "per_minute", ["minute"]),
    )
    assert (ours["minute"] == theirs["minute"]).all()
    for column in [*COUNTS, "unique_clients", "bot_requests"]:
        assert ours[column].tolist() == theirs[column].astype("int64").tolist(), column
    # Percentiles: 2% histogram bins against DuckDB's t-digest.
    assert ((ours["p95_ms"] - theirs["p95_ms"]).abs() / theirs["p95_ms"] < 0.05).all()
    for name, key in (("methods", "method"), ("top_paths", "path")):
        a, b = read("processor", name, [key]), read("duckdb", name, [key])
        assert a[key].tolist() == b[key].tolist(), name
        assert a["requests"].tolist() == b["requests"].tolist(), name
        assert a["errors"].tolist() == b["errors"].tolist(), name
    codes = read("processor", "status_codes", ["minute", "status"])
    assert (
        codes["requests"].tolist()
        == read("duckdb", "status_codes", ["minute", "status"])["requests"].tolist()
    )
    assert check(tmp_path / "processor", tmp_path / "duckdb")  # what the benchmark reports
