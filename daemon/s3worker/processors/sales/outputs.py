"""The sales processor's BI tables (see `s3worker.processors.bi`)."""

from __future__ import annotations

from s3worker.processors.bi import BiTable

SCHEMAS = "s3worker.processors.sales.analysis"


TABLES = (
    BiTable(
        "sales_daily", "sales", "daily_totals.parquet",
        "Revenue, units, tickets and lines per day",
        f"{SCHEMAS}:TOTALS_SCHEMA",
    ),
    BiTable(
        "sales_daily_store", "sales", "daily_store.parquet",
        "Revenue, units, tickets and lines per day and store",
        f"{SCHEMAS}:STORE_SCHEMA",
    ),
    BiTable(
        "sales_top_products", "sales", "top_products.parquet",
        "The input's best-selling products by revenue, with their share of it",
        f"{SCHEMAS}:TOP_SCHEMA",
    ),
    BiTable(
        "sales_detail", "sales", "sales/dt={dt}/part-0.parquet",
        "Revenue, units, tickets and lines per day, store and product; partitioned by dt",
        "s3worker.processors.sales.days:DAILY_SCHEMA",
    ),
)  # fmt: skip
