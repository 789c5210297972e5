"""Daily sales reports: revenue, units and tickets by day, store and product; top products."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from s3worker.processors.sales.schema import SCHEMA
from s3worker.processors.tabular.processor import TabularProcessor


class SalesProcessor(TabularProcessor):
    """Sales by day x store x product (partitioned by dt=), daily totals and top products.

    Without a product column the figures are totals by day and store (product "all")."""

    name = "sales"
    version = "2"
    schema = SCHEMA
    thresholds: ClassVar[Mapping[str, float]] = {"top_n": 50.0}
    analysis = "s3worker.processors.sales.analysis"
