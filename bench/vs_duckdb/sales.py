"""Sales: the processor vs DuckDB writing the same four tables from the same CSV.

The query reads the columns typed and skips what the processor rejects (rows with the wrong
column count, an unparseable date, a quantity, price or revenue that is not a number: DuckDB's
ignore_errors; a missing product, no revenue and no price: the WHERE clause); revenue is the
revenue column, else quantity x price; units the quantity, else 1; tickets the distinct
ticket ids of a group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from bench_processors import write_sized

from vs_duckdb import REPEATS, same_tables, side_by_side

KIND = "sales"
TOP_N = 50  # the processor's default top_n
# Typed as a data engineer would: ignore_errors then skips a row whose value does not parse.
COLUMNS = {
    "date": "DATE",
    "store": "VARCHAR",
    "ticket_id": "VARCHAR",
    "product": "VARCHAR",
    "quantity": "DOUBLE",
    "unit_price": "DOUBLE",
    "revenue": "DOUBLE",
}


def make_input(path: Path, size_bytes: int) -> None:
    write_sized(KIND, path, size_bytes)


def query(path: Path, out: Path) -> str:
    sums = "sum(revenue) AS revenue, sum(units) AS units, count(DISTINCT ticket_id) AS tickets, "
    sums += "count(*) AS lines"
    return f"""
    CREATE TEMP TABLE lines AS
    SELECT strftime(date, '%Y-%m-%d') AS dt, coalesce(store, 'all') AS store, ticket_id,
           product, coalesce(quantity, 1.0) AS units,
           coalesce(revenue, coalesce(quantity, 1.0) * unit_price) AS revenue
    FROM read_csv('{path}', header = true, ignore_errors = true, columns = {COLUMNS})
    WHERE product IS NOT NULL AND (revenue IS NOT NULL OR unit_price IS NOT NULL);
    COPY (SELECT dt, store, product, {sums} FROM lines GROUP BY ALL ORDER BY ALL)
      TO '{out}/sales' (FORMAT parquet, PARTITION_BY (dt), COMPRESSION zstd);
    COPY (SELECT dt, store, {sums} FROM lines GROUP BY ALL ORDER BY ALL)
      TO '{out}/daily_store.parquet' (FORMAT parquet, COMPRESSION zstd);
    COPY (SELECT dt, {sums} FROM lines GROUP BY ALL ORDER BY ALL)
      TO '{out}/daily_totals.parquet' (FORMAT parquet, COMPRESSION zstd);
    COPY (SELECT row_number() OVER (ORDER BY revenue DESC, units DESC) AS rank, product,
                 revenue, units, tickets, revenue / sum(revenue) OVER () AS revenue_share
          FROM (SELECT product, {sums} FROM lines GROUP BY ALL)
          ORDER BY rank LIMIT {TOP_N})
      TO '{out}/top_products.parquet' (FORMAT parquet, COMPRESSION zstd);
    """


def check(mine: Path, theirs: Path) -> bool:
    """The same groups with the same figures (sums to 1e-9 relative: the order of additions
    differs) in every table."""
    pairs = [
        (_table(mine / "sales"), _table(theirs / "sales"), ["dt", "store", "product"]),
        *[
            (pq.read_table(mine / name), pq.read_table(theirs / name), keys)
            for name, keys in (
                ("daily_store.parquet", ["dt", "store"]),
                ("daily_totals.parquet", ["dt"]),
                ("top_products.parquet", ["rank"]),
            )
        ],
    ]
    return all(same_tables(a, b, keys) for a, b, keys in pairs)


def _table(folder: Path) -> pa.Table:
    return ds.dataset(folder, format="parquet", partitioning="hive").to_table()


def measure(path: Path, repeats: int = REPEATS) -> dict[str, Any]:
    return side_by_side(KIND, path, query, repeats, check)
