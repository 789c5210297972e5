"""Point-of-sale lines: one row per ticket line, a ticket's lines together, days in order.

Planted: malformed rows (bad date, quantity or price not a number, missing product),
recorded by record number; the truth also carries the revenue of the valid lines.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.samples.writing import Truth

START = np.datetime64("2024-01-01", "D")
BLOCK_TICKETS = 300_000
SPOIL = (("date", "2024-13-45"), ("quantity", "two"), ("product", None), ("unit_price", "12,34,5"))


def generate(rows: int, seed: int, truth: Truth) -> Iterator[pa.Table]:
    rng = np.random.default_rng(seed)
    n_tickets = max(1, rows // 3)
    days = int(np.clip(rows // 30_000, 7, 365))
    n_products = int(np.clip(rows // 500, 50, 2_000))
    price = np.round(rng.lognormal(2.0, 0.8, n_products), 2)
    weight = 1.0 / np.arange(1, n_products + 1) ** 1.1
    weight /= weight.sum()
    truth.planted["malformed"], truth.planted["revenue"] = [], [0.0]
    written = 0
    for k0 in range(0, n_tickets, BLOCK_TICKETS):
        k1 = min(n_tickets, k0 + BLOCK_TICKETS)
        block = _block(np.random.default_rng([seed, k0]), k0, k1, n_tickets, days, price, weight)
        block = _spoil(block, written, truth, np.random.default_rng([seed, k0, 1]))
        written += block.num_rows
        yield block


def _block(
    rng: np.random.Generator,
    k0: int,
    k1: int,
    n_tickets: int,
    days: int,
    price: np.ndarray,
    weight: np.ndarray,
) -> pa.Table:
    ticket = np.repeat(np.arange(k0, k1), rng.integers(1, 6, k1 - k0))
    n = ticket.size
    day = (ticket * days) // n_tickets
    store = rng.integers(0, 20, k1 - k0)[ticket - k0]
    product = rng.choice(price.size, size=n, p=weight)
    qty = rng.integers(1, 5, n)
    dates = pc.strftime(pa.array(START + np.arange(days)), format="%Y-%m-%d")
    return pa.table(
        {
            "date": pa.DictionaryArray.from_arrays(pa.array(day.astype(np.int32)), dates).cast(
                pa.string()
            ),
            "store": pc.binary_join_element_wise(
                "S", pc.cast(pa.array(store + 100), pa.string()), ""
            ),
            "ticket_id": pc.binary_join_element_wise(
                "T", pc.cast(pa.array(ticket + 10_000_000), pa.string()), ""
            ),
            "product": pc.binary_join_element_wise(
                "SKU-", pc.cast(pa.array(product + 10_000), pa.string()), ""
            ),
            "quantity": pc.cast(pa.array(qty), pa.string()),
            "unit_price": pc.cast(pa.array(price[product]), pa.string()),
            "revenue": pc.cast(pa.array(np.round(qty * price[product], 2)), pa.string()),
        }
    )


def _spoil(table: pa.Table, offset: int, truth: Truth, rng: np.random.Generator) -> pa.Table:
    n = table.num_rows
    rows = np.sort(rng.choice(n, size=min(n, max(4, n // 2_500)), replace=False))
    valid = np.ones(n, dtype=bool)
    valid[rows] = False
    revenue = pc.cast(table.column("revenue"), pa.float64()).to_numpy()
    truth.planted["revenue"][0] += float(revenue[valid].sum())
    truth.planted["malformed"].extend((rows + offset).tolist())
    for k, (column, bad) in enumerate(SPOIL):
        idx = rows[k :: len(SPOIL)]
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        col = table.column(column).combine_chunks()
        col = pc.replace_with_mask(col, pa.array(mask), pa.array([bad] * idx.size, pa.string()))
        table = table.set_column(table.schema.get_field_index(column), column, col)
    return table


def broken_lines(fmt: str) -> list[str]:
    return ["2024-01-01,S100,T1", "totally,broken"] if fmt == "csv" else ["{oops"]
