"""The sales processor's pandas side: lines in, revenue/units/tickets by day, store, product.

Parsing and rejects here; the sums and ticket counts (on integer codes, the detail level
spilled to disk) in `sales_totals`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.errors import BadDataError
from s3worker.processors.base import JobContext, ProcessResult
from s3worker.processors.sales import ALIASES
from s3worker.processors.sales.totals import LEVELS, VALUES, Level, Lines, Totals
from s3worker.processors.tabular.columns import (
    missing,
    rejects_of,
    resolve,
    strings,
    to_float,
    to_time,
)
from s3worker.processors.tabular.output import RejectSink, write_frame
from s3worker.processors.tabular.reading import (
    Chunk,
    Reject,
    input_encoding,
    iter_chunks,
    prefetch,
)

TOP_N = 50
DAILY_SCHEMA = pa.schema(
    [
        ("store", pa.string()),
        ("product", pa.string()),
        ("revenue", pa.float64()),
        ("units", pa.float64()),
        ("tickets", pa.int64()),
        ("lines", pa.int64()),
    ]
)
TOTALS_SCHEMA = pa.schema(
    [
        ("dt", pa.string()),
        ("revenue", pa.float64()),
        ("units", pa.float64()),
        ("tickets", pa.int64()),
        ("lines", pa.int64()),
    ]
)
STORE_SCHEMA = pa.schema(
    [
        ("dt", pa.string()),
        ("store", pa.string()),
        ("revenue", pa.float64()),
        ("units", pa.float64()),
        ("tickets", pa.int64()),
        ("lines", pa.int64()),
    ]
)
TOP_SCHEMA = pa.schema(
    [
        ("rank", pa.int64()),
        ("product", pa.string()),
        ("revenue", pa.float64()),
        ("units", pa.float64()),
        ("tickets", pa.int64()),
        ("revenue_share", pa.float64()),
    ]
)


def _lines(chunk: Chunk, cols: dict[str, str], totals: Totals) -> tuple[Lines, list[Reject]]:
    t = chunk.table
    date_raw, product = strings(t, cols.get("date")), strings(t, cols.get("product"))
    day = to_time(date_raw).astype("datetime64[D]")
    qty_raw, price_raw, rev_raw = (
        strings(t, cols.get(k)) for k in ("quantity", "unit_price", "revenue")
    )
    qty, price, rev = to_float(qty_raw), to_float(price_raw), to_float(rev_raw)
    units = np.where(missing(qty_raw), 1.0, qty)
    revenue = np.where(missing(rev_raw), units * price, rev)
    problems = {
        "date: missing": missing(date_raw),
        "date: unparseable": np.isnat(day) & ~missing(date_raw),
        "product: missing": missing(product),
        "quantity: not a number": np.isnan(qty) & ~missing(qty_raw),
        "unit_price: not a number": np.isnan(price) & ~missing(price_raw),
        "revenue: not a number": np.isnan(rev) & ~missing(rev_raw),
        "no revenue or price": missing(rev_raw) & missing(price_raw),
    }
    keep, rejects = rejects_of(chunk, problems)
    mask = pa.array(keep)
    store = pc.fill_null(strings(t, cols.get("store")).filter(mask), "all")
    count = to_float(strings(t, cols["tickets"]))[keep] if "tickets" in cols else None
    lines = Lines(
        key={
            "dt": day[keep].astype(np.int64),
            "store": totals.stores.encode(store),
            "product": totals.products.encode(product.filter(mask)),
        },
        revenue=revenue[keep],
        units=units[keep],
        ticket=strings(t, cols["ticket"]).filter(mask) if "ticket" in cols else None,
        count=None if count is None else np.nan_to_num(count),
    )
    return lines, rejects


def _parsed(src: Path, ctx: JobContext, totals: Totals) -> Iterator[tuple[Lines, list[Reject]]]:
    """Chunks as coded lines; `run` takes them through `prefetch`, one chunk ahead. Only this
    (the producing thread) touches `totals`' codes until the file is read."""
    cols: dict[str, str] | None = None
    for chunk in iter_chunks(src, ctx.chunk_rows):
        if cols is None:
            cols = resolve(chunk.table, ALIASES)
            if "date" not in cols or "product" not in cols:
                raise BadDataError(
                    f"sales need a date and a product column; found {chunk.table.column_names}"
                )
        yield _lines(chunk, cols, totals)


def run(src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
    rejected = RejectSink(out_dir)
    totals = Totals(out_dir.parent)
    try:
        for lines, rejects in prefetch(_parsed(src, ctx, totals)):
            rejected.add(rejects)
            totals.add(lines)
        rows = rejected.close() | _write_detail(out_dir, totals)
        frames = _frames(totals)
        rows |= _write(out_dir, frames)
    finally:
        totals.close()
    return ProcessResult(
        summary={"encoding": input_encoding(src), **_summary(frames, rows, rejected.rows)},
        rows=rows,
    )


def _write_detail(out_dir: Path, totals: Totals) -> dict[str, int]:
    """`sales/dt=YYYY-MM-DD/part-0.parquet`, one bucket of days in memory at a time."""
    stores, products = totals.stores.ranks(), totals.products.ranks()
    store_names = np.array(totals.stores.names, dtype=object)
    product_names = np.array(totals.products.names, dtype=object)
    rows: dict[str, int] = {}
    for g in totals.details():
        day, store, product = g.keys
        order = np.lexsort((products[product], stores[store], day))
        frame = pd.DataFrame(
            {
                "dt": day[order],
                "store": store_names[store[order]],
                "product": product_names[product[order]],
                **{name: g.values[i][order] for i, name in enumerate(VALUES)},
            }
        )
        for value, part in frame.groupby("dt", sort=True):
            rel = f"sales/dt={_day(int(value))}/part-0.parquet"
            rows |= write_frame(out_dir, rel, part, DAILY_SCHEMA)
    return rows


def _frames(totals: Totals) -> dict[Level, pd.DataFrame]:
    """The coarse levels as frames labelled by name and sorted by (day, store, product) name."""
    names = {
        "dt": lambda codes: np.array([_day(c) for c in codes.tolist()], dtype=object),
        "store": lambda codes: np.array(totals.stores.names, dtype=object)[codes],
        "product": lambda codes: np.array(totals.products.names, dtype=object)[codes],
    }
    frames = {}
    for lv in LEVELS[1:]:
        g = totals.level(lv)
        columns = {c: names[c](g.keys[i]) for i, c in enumerate(lv)}
        frame = pd.DataFrame({**columns, **dict(zip(VALUES, g.values, strict=True))})
        frames[lv] = frame.sort_values(list(lv), kind="stable").reset_index(drop=True)
    return frames


def _day(days: int) -> str:
    return str(np.datetime64(days, "D"))


def _write(out_dir: Path, frames: dict[Level, pd.DataFrame]) -> dict[str, int]:
    rows = write_frame(out_dir, "daily_store.parquet", frames[LEVELS[1]], STORE_SCHEMA)
    rows |= write_frame(out_dir, "daily_totals.parquet", frames[LEVELS[2]], TOTALS_SCHEMA)
    return rows | write_frame(out_dir, "top_products.parquet", _top(frames), TOP_SCHEMA)


def _top(frames: dict[Level, pd.DataFrame]) -> pd.DataFrame:
    products = frames[LEVELS[3]]
    top = products.sort_values(["revenue", "units"], ascending=False).head(TOP_N)
    total = float(frames[LEVELS[2]]["revenue"].sum()) or 1.0
    top = top.reset_index(drop=True)
    return top.assign(rank=np.arange(1, len(top) + 1), revenue_share=top["revenue"] / total)


def _summary(
    frames: dict[Level, pd.DataFrame], rows: dict[str, int], rejected: int
) -> dict[str, Any]:
    daily, products = frames[LEVELS[2]], frames[LEVELS[3]]
    if daily.empty:
        return {"lines": 0, "rejected_rows": rejected, "outputs": rows}
    top = products.set_index("product")["revenue"].nlargest(5)
    return {
        "lines": int(daily["lines"].sum()),
        "rejected_rows": rejected,
        "revenue": round(float(daily["revenue"].sum()), 2),
        "units": float(daily["units"].sum()),
        "tickets": int(daily["tickets"].sum()),
        "days": len(daily),
        "first_day": str(daily["dt"].iloc[0]),
        "last_day": str(daily["dt"].iloc[-1]),
        "stores": int(frames[LEVELS[1]]["store"].nunique()),
        "products": len(products),
        "top_products": {str(k): round(float(v), 2) for k, v in top.items()},
        "outputs": rows,
    }
