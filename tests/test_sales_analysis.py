"""The sales processor's pandas side: lines in, figures by day, store and product out, each
bad line rejected with its reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from s3worker.processors.base import JobContext, ProcessResult
from s3worker.processors.options import Options
from s3worker.processors.sales.analysis import run

POS = (
    "date,store,ticket,product,quantity,unit_price\n"
    "2024-02-02,L2,T9,pao,1,12\n"
    "2024-02-01,L1,T1,pao,2,5.5\n"
    "2024-02-01,L1,T1,cafe,1,8\n"
    "2024-02-01,L1,T2,pao,1,5.5\n"
    "2024-02-01,,T3,agua,4,1\n"
)


def _run(tmp_path: Path, text: str, **options: Any) -> tuple[ProcessResult, Path]:
    src = tmp_path / "lines.csv"
    src.write_text(text)
    out = tmp_path / "out"
    ctx = JobContext(key="sales/lines.csv", size=src.stat().st_size, options=Options(**options))
    return run(src, out, ctx), out


def _rows(path: Path) -> list[dict[str, Any]]:
    return pd.read_parquet(path).to_dict("records")  # type: ignore[no-any-return]


def test_figures_by_day_store_and_product(tmp_path: Path) -> None:
    result, out = _run(tmp_path, POS)
    # then the detail is partitioned by day, sorted by store and product name (not by
    # first appearance: pao comes first in the file)
    assert _rows(out / "sales" / "dt=2024-02-01" / "part-0.parquet") == [
        {"store": "L1", "product": "cafe", "revenue": 8.0, "units": 1.0, "tickets": 1, "lines": 1},
        {"store": "L1", "product": "pao", "revenue": 16.5, "units": 3.0, "tickets": 2, "lines": 2},
        {"store": "all", "product": "agua", "revenue": 4.0, "units": 4.0, "tickets": 1, "lines": 1},
    ]
    daily = _rows(out / "daily_totals.parquet")
    assert daily == [
        {"dt": "2024-02-01", "revenue": 28.5, "units": 8.0, "tickets": 3, "lines": 4},
        {"dt": "2024-02-02", "revenue": 12.0, "units": 1.0, "tickets": 1, "lines": 1},
    ]
    stores = pd.read_parquet(out / "daily_store.parquet")
    assert stores[["dt", "store"]].values.tolist() == [
        ["2024-02-01", "L1"],
        ["2024-02-01", "all"],
        ["2024-02-02", "L2"],
    ]
    # and the summary says the same
    s = result.summary
    assert (s["lines"], s["revenue"], s["units"], s["tickets"]) == (5, 40.5, 9.0, 4)
    assert (s["days"], s["first_day"], s["last_day"], s["stores"], s["products"]) == (
        2, "2024-02-01", "2024-02-02", 3, 3,
    )  # fmt: skip
    assert s["encoding"] == "utf-8"
    assert s["rejected_rows"] == 0
    assert s["top_products"] == {"pao": 28.5, "cafe": 8.0, "agua": 4.0}
    assert result.rows["sales/dt=2024-02-02/part-0.parquet"] == 1
    assert result.rows["rejected.parquet"] == 0


def test_top_products_rank_by_revenue_with_their_share(tmp_path: Path) -> None:
    _, out = _run(tmp_path, POS)
    top = _rows(out / "top_products.parquet")
    assert [(t["rank"], t["product"]) for t in top] == [(1, "pao"), (2, "cafe"), (3, "agua")]
    assert top[0]["revenue_share"] == pytest.approx(28.5 / 40.5)
    assert top[0]["tickets"] == 3


def test_the_top_n_option_limits_the_top_products(tmp_path: Path) -> None:
    result, out = _run(tmp_path, POS, thresholds={"top_n": 1})
    assert [t["product"] for t in _rows(out / "top_products.parquet")] == ["pao"]
    assert len(result.summary["top_products"]) == 3  # the summary keeps its five


def test_bad_lines_are_rejected_with_every_reason(tmp_path: Path) -> None:
    text = (
        "date,product,quantity,unit_price,revenue\n"
        "2024-03-01,a,1,2,\n"  # good: revenue = 1 x 2
        ",a,1,2,\n"
        "someday,a,1,2,\n"
        "9999-01-01,a,1,2,\n"
        "2024-03-01,,1,2,\n"
        "2024-03-01,a,lots,two,\n"
        "2024-03-01,a,1,,\n"
        "2024-03-01,a,1,,inf\n"
        "2024-03-01,a,1e200,1e200,\n"
        "2024-03-01,a,,,7\n"  # good: one unit, revenue given
    )
    result, out = _run(tmp_path, text)
    rejected = pd.read_parquet(out / "rejected.parquet")
    assert rejected["record"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert rejected["reason"].tolist() == [
        "date: missing",
        "date: unparseable",
        "date: out of range (1900-01-01..2200-01-01)",
        "product: missing",
        "quantity: not a finite number; unit_price: not a finite number",
        "no revenue or price",
        "revenue: not a finite number",
        "revenue: out of range",
    ]
    assert (
        rejected["raw"][0]
        == '{"date": null, "product": "a", "quantity": "1", "unit_price": "2", "revenue": null}'
    )
    assert (result.summary["lines"], result.summary["revenue"]) == (2, 9.0)
    assert result.summary["units"] == 2.0
    assert result.summary["rejected_rows"] == 8


def test_a_file_without_products_is_totals_by_day_and_store(tmp_path: Path) -> None:
    text = "date,store,revenue,tickets\n2024-02-01,L1,10,3\n2024-02-01,L1,5,2\n2024-02-02,L2,1,1\n"
    result, out = _run(tmp_path, text)
    detail = _rows(out / "sales" / "dt=2024-02-01" / "part-0.parquet")
    assert detail == [
        {"store": "L1", "product": "all", "revenue": 15.0, "units": 2.0, "tickets": 5, "lines": 2}
    ]
    assert _rows(out / "top_products.parquet") == []
    s = result.summary
    assert (s["products"], s["top_products"], s["by_product"], s["tickets"]) == (0, {}, False, 6)


def test_day_first_dates_and_the_decimal_point_from_the_options(tmp_path: Path) -> None:
    text = "data;loja;produto;qtd;preco\n01/02/2024;L1;arroz;2;1,005.50\n"
    result, _ = _run(tmp_path, text, decimal=".")
    assert result.summary["first_day"] == "2024-02-01"
    assert result.summary["revenue"] == 2011.0


def test_a_file_of_rejects_only_has_no_figures(tmp_path: Path) -> None:
    result, out = _run(tmp_path, "date,product,revenue\nnever,a,1\n")
    assert result.summary == {
        "encoding": "utf-8",
        "lines": 0,
        "rejected_rows": 1,
        "outputs": result.rows,
    }
    assert _rows(out / "daily_totals.parquet") == []
    assert not (out / "sales").exists()
