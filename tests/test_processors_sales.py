"""Sales: figures match what was generated, bad lines are rejected, chunking changes nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from processing import run, sample, scores, table

ORDER = ["dt", "store", "product"]


def test_malformed_lines_are_rejected_and_revenue_adds_up(tmp_path: Path) -> None:
    # given point-of-sale lines with planted malformed rows
    src, truth = sample(tmp_path, "sales", 40_000)
    # when processed
    result = run("sales", src, tmp_path / "out")
    # then exactly the planted rows are rejected, and the rest adds up to the generator's total
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet")
    precision, recall, msg = scores(
        rejected["record"].dropna().astype(int), truth.planted["malformed"]
    )
    assert recall >= 0.9, msg
    assert precision >= 0.8, msg
    assert result.summary["revenue"] == pytest.approx(truth.planted["revenue"][0], rel=1e-9)
    detail = pd.read_parquet(tmp_path / "out" / "sales")
    assert detail["revenue"].sum() == pytest.approx(truth.planted["revenue"][0], rel=1e-9)


def test_output_is_partitioned_by_day(tmp_path: Path) -> None:
    src, _ = sample(tmp_path, "sales", 20_000)
    result = run("sales", src, tmp_path / "out")
    parts = sorted(p.parent.name for p in (tmp_path / "out" / "sales").glob("dt=*/part-0.parquet"))
    assert parts == [f"dt=2024-01-0{d}" for d in range(1, 8)]
    assert all(f"sales/{p}/part-0.parquet" in result.rows for p in parts)
    daily = pd.read_parquet(tmp_path / "out" / "daily_totals.parquet")
    assert len(daily) == 7
    assert (daily["tickets"] > 0).all()
    top = pd.read_parquet(tmp_path / "out" / "top_products.parquet")
    assert top["rank"].tolist() == list(range(1, len(top) + 1))
    assert top["revenue"].is_monotonic_decreasing


def test_small_chunks_give_the_same_figures(tmp_path: Path) -> None:
    # tickets cut by a chunk boundary must be counted once
    src, _ = sample(tmp_path, "sales", 30_000)
    whole = run("sales", src, tmp_path / "whole", chunk_rows=1_000_000)
    small = run("sales", src, tmp_path / "small", chunk_rows=1_001)
    assert whole.summary == small.summary
    detail = [
        pd.read_parquet(tmp_path / d / "sales").sort_values(ORDER).reset_index(drop=True)
        for d in ("whole", "small")
    ]
    pd.testing.assert_frame_equal(*detail, check_exact=False, rtol=1e-9)
    for name, order in (
        ("daily_store.parquet", ["dt", "store"]),
        ("top_products.parquet", ["rank"]),
    ):
        pd.testing.assert_frame_equal(
            table(tmp_path / "whole", name, order),
            table(tmp_path / "small", name, order),
            check_exact=False,
            rtol=1e-9,
        )


def test_tickets_count_each_ticket_once_per_group(tmp_path: Path) -> None:
    src = tmp_path / "pos.csv"
    src.write_text(
        "data;loja;cupom;produto;qtd;preco\n"
        "01/02/2024;L1;C1;arroz;2;5,50\n"
        "01/02/2024;L1;C1;feijao;1;8,00\n"
        "01/02/2024;L1;C1;arroz;1;5,50\n"
        "01/02/2024;L1;C2;arroz;1;5,50\n"
        "02/02/2024;L2;C3;cafe;3;12,00\n"
    )
    result = run("sales", src, tmp_path / "out", chunk_rows=2)
    detail = pd.read_parquet(tmp_path / "out" / "sales").set_index(["product"])
    assert detail.loc["arroz", "tickets"] == 2
    assert detail.loc["arroz", "units"] == 4
    assert result.summary["tickets"] == 3
    assert result.summary["revenue"] == pytest.approx(4 * 5.5 + 8 + 36)
    assert result.summary["first_day"] == "2024-02-01"


def test_spilled_groups_match_an_in_memory_group_by(tmp_path: Path) -> None:
    # given a sample spread over days, processed in small chunks (so every day's groups are
    # spilled from several chunks and combined at the end)
    src, _ = sample(tmp_path, "sales", 30_000)
    run("sales", src, tmp_path / "out", chunk_rows=997)
    # when the same figures are computed in memory, in one pandas group-by
    raw = pd.read_csv(src, dtype=str, engine="pyarrow", on_bad_lines="skip")  # as the reader
    bad = pd.read_parquet(tmp_path / "out" / "rejected.parquet")["record"].dropna()
    lines = raw.drop(index=bad.astype(int)).reset_index(drop=True)
    lines = lines.assign(
        dt=pd.to_datetime(lines["date"]).dt.strftime("%Y-%m-%d"),
        store=lines["store"].fillna("all"),
        units=pd.to_numeric(lines["quantity"]).fillna(1.0),
        revenue=pd.to_numeric(lines["revenue"]),
        run=(lines["ticket_id"] != lines["ticket_id"].shift()).cumsum(),
    )
    expected = lines.groupby(ORDER).agg(
        revenue=("revenue", "sum"), units=("units", "sum"), lines=("revenue", "size")
    )
    expected["tickets"] = lines.drop_duplicates(["run", *ORDER]).groupby(ORDER).size()
    # then the partitioned output holds exactly those groups and figures
    got = pd.read_parquet(tmp_path / "out" / "sales").astype({"dt": str, "store": str})
    got = got.set_index(ORDER).sort_index()[expected.columns]
    pd.testing.assert_frame_equal(
        got, expected.sort_index(), check_exact=False, rtol=1e-9, check_dtype=False
    )


@pytest.mark.parametrize("chunk_rows", [7, 1_000])
def test_a_long_ticket_counts_once_per_group(tmp_path: Path, chunk_rows: int) -> None:
    # given a ticket of 20 lines alternating two products (longer than the lines compared
    # one by one: its pairs are sorted), then a short ticket; cut by chunks or not
    lines = [f"2024-03-01,L1,C1,{'ab'[i % 2]},1,2.0" for i in range(20)]
    lines += ["2024-03-01,L1,C2,a,1,2.0"] * 3
    src = tmp_path / "pos.csv"
    src.write_text("date,store,ticket,product,qty,price\n" + "\n".join(lines) + "\n")
    # when processed
    result = run("sales", src, tmp_path / "out", chunk_rows=chunk_rows)
    # then each ticket counts once in each group it touches
    detail = pd.read_parquet(tmp_path / "out" / "sales").set_index("product")
    assert detail["tickets"].to_dict() == {"a": 2, "b": 1}
    assert result.summary["tickets"] == 2
