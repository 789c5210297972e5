"""The sales processor's pandas side: lines in, revenue/units/tickets by day, store, product.

Parsing and rejects here; the sums and ticket counts (on integer codes) in `totals`, the
(day, store, product) files in `days`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.processors.base import JobContext, ProcessResult
from s3worker.processors.sales import SalesProcessor
from s3worker.processors.sales.days import DayFiles, day_name
from s3worker.processors.sales.schema import SCHEMA
from s3worker.processors.sales.totals import LEVELS, VALUES, Level, Lines, Totals
from s3worker.processors.schema import Resolution
from s3worker.processors.tabular.columns import (
    TIME_WINDOW,
    date_formats,
    missing,
    rejects_of,
    resolve_roles,
    strings,
    to_float,
    to_time_checked,
)
from s3worker.processors.tabular.output import RejectSink, write_frame
from s3worker.processors.tabular.reading import (
    Chunk,
    Reject,
    input_encoding,
    iter_chunks,
    prefetch,
)

NO_PRODUCT = "all"  # the product of every line of a file without a product column
WINDOW = f"{TIME_WINDOW[0].astype('datetime64[D]')}..{TIME_WINDOW[1].astype('datetime64[D]')}"
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


class Reader:
    """The file's columns (resolved on its first chunk) and how to read them."""

    def __init__(self, chunk: Chunk, ctx: JobContext) -> None:
        self.cols: Resolution = resolve_roles(SCHEMA, chunk.table, ctx.options)
        self.formats = date_formats(chunk.table, self.cols.get("date"), ctx.options)
        self.decimal, self.tz = ctx.options.decimal, ctx.options.timezone

    def floats(self, t: pa.Table, role: str) -> tuple[pa.ChunkedArray, np.ndarray]:
        raw = strings(t, self.cols.get(role))
        return raw, to_float(raw, self.decimal)

    def lines(self, chunk: Chunk, totals: Totals) -> tuple[Lines, list[Reject]]:
        t, cols = chunk.table, self.cols
        date_raw = strings(t, cols.get("date"))
        product = strings(t, cols.get("product")) if "product" in cols else None
        none = np.zeros(t.num_rows, dtype=bool)
        when, outside = to_time_checked(date_raw, self.formats, self.tz)
        day = when.astype("datetime64[D]")
        (qty_raw, qty), (price_raw, price), (rev_raw, rev) = (
            self.floats(t, k) for k in ("quantity", "unit_price", "revenue")
        )
        units = np.where(missing(qty_raw), 1.0, qty)
        with np.errstate(over="ignore", invalid="ignore"):
            revenue = np.where(missing(rev_raw), units * price, rev)
        problems = {
            "date: missing": missing(date_raw),
            f"date: out of range ({WINDOW})": outside,
            "date: unparseable": np.isnat(day) & ~missing(date_raw) & ~outside,
            "product: missing": missing(product) if product is not None else none,
            "quantity: not a finite number": np.isnan(qty) & ~missing(qty_raw),
            "unit_price: not a finite number": np.isnan(price) & ~missing(price_raw),
            "revenue: not a finite number": np.isnan(rev) & ~missing(rev_raw),
            "no revenue or price": missing(rev_raw) & missing(price_raw),
            "revenue: out of range": np.isinf(revenue),  # finite inputs, overflowing product
        }
        keep, rejects = rejects_of(chunk, problems)
        return self._coded(t, keep, day, units, revenue, product, totals), rejects

    def _coded(
        self,
        t: pa.Table,
        keep: np.ndarray,
        day: np.ndarray,
        units: np.ndarray,
        revenue: np.ndarray,
        product: pa.ChunkedArray | None,
        totals: Totals,
    ) -> Lines:
        cols, mask = self.cols, pa.array(keep)
        store = pc.fill_null(strings(t, cols.get("store")).filter(mask), "all")
        kept = int(keep.sum())
        names = product.filter(mask) if product is not None else pa.chunked_array(
            [pa.repeat(pa.scalar(NO_PRODUCT), kept)]
        )  # fmt: skip
        count = to_float(strings(t, cols.get("tickets")))[keep] if "tickets" in cols else None
        return Lines(
            key={
                "dt": day[keep].astype(np.int64),
                "store": totals.stores.encode(store),
                "product": totals.products.encode(names),
            },
            revenue=revenue[keep],
            units=units[keep],
            ticket=strings(t, cols.get("ticket")).filter(mask) if "ticket" in cols else None,
            count=None if count is None else np.nan_to_num(count),
        )


def _parsed(src: Path, ctx: JobContext, totals: Totals) -> Iterator[tuple[Lines, list[Reject]]]:
    """Chunks as coded lines, in three stages on three threads: the CSV read (a chunk ahead,
    through `prefetch`), this conversion, and `run`'s sums (taking these through `prefetch`).
    Only this thread touches `totals`' codes until the file is read."""
    reader: Reader | None = None
    for chunk in prefetch(iter_chunks(src, ctx.chunk_rows, ctx.sample, ctx.options)):
        reader = reader or Reader(chunk, ctx)
        yield reader.lines(chunk, totals)


def run(src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
    rejected = RejectSink(out_dir)
    totals = Totals()
    days = DayFiles(out_dir, totals.stores, totals.products)  # a spill is a hidden folder of
    try:  # out_dir, gone before upload
        for lines, rejects in prefetch(_parsed(src, ctx, totals)):
            rejected.add(rejects)
            days.add(totals.add(lines))
        rows = rejected.close() | days.close()
        frames = _frames(totals)
        top_n = int(SalesProcessor.threshold(ctx, "top_n"))
        by_product = totals.products.names != [NO_PRODUCT]
        rows |= _write(out_dir, frames, top_n, by_product)
    finally:
        days.discard()
    summary = _summary(frames, rows, rejected.rows)
    if not by_product:  # totals by day and store: the file names no products
        summary.update(products=0, top_products={}, by_product=False)
    return ProcessResult(
        summary={"encoding": input_encoding(src, ctx.sample), **summary}, rows=rows
    )


def _frames(totals: Totals) -> dict[Level, pd.DataFrame]:
    """The coarse levels as frames labelled by name and sorted by (day, store, product) name."""
    names = {
        "dt": lambda codes: np.array([day_name(c) for c in codes.tolist()], dtype=object),
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


def _write(
    out_dir: Path, frames: dict[Level, pd.DataFrame], top_n: int, has_products: bool
) -> dict[str, int]:
    rows = write_frame(out_dir, "daily_store.parquet", frames[LEVELS[1]], STORE_SCHEMA)
    rows |= write_frame(out_dir, "daily_totals.parquet", frames[LEVELS[2]], TOTALS_SCHEMA)
    top = _top(frames, top_n if has_products else 0)
    return rows | write_frame(out_dir, "top_products.parquet", top, TOP_SCHEMA)


def _top(frames: dict[Level, pd.DataFrame], top_n: int) -> pd.DataFrame:
    products = frames[LEVELS[3]]
    top = products.sort_values(["revenue", "units"], ascending=False).head(top_n)
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
