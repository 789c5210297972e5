"""The sales processor's pandas side: lines in, revenue/units/tickets by day, store, product.

Tickets: a point-of-sale export writes a ticket's lines together, so a ticket is a run of
consecutive lines with the same ticket id. Runs are numbered across chunks and the run cut
by a chunk boundary is de-duplicated against the previous chunk, so counts do not depend on
the chunk size and memory stays bounded. Without a ticket id, a `tickets` column is summed;
without either, every line counts as one ticket.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.errors import BadDataError
from s3worker.processors.analysis.columns import (
    missing,
    rejects_of,
    resolve,
    strings,
    to_float,
    to_time,
)
from s3worker.processors.analysis.output import RejectSink, write_frame, write_partitioned
from s3worker.processors.analysis.reading import Chunk, iter_chunks
from s3worker.processors.base import JobContext, ProcessResult
from s3worker.processors.sales import ALIASES

KEY = ["dt", "store", "product"]
LEVELS = (("dt", "store", "product"), ("dt", "store"), ("dt",), ("product",))
SUMS = ["revenue", "units", "lines"]
COMPACT_ROWS = 500_000
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


class Totals:
    """Partial sums per (day, store, product) and ticket counts per level, merged as they grow."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []
        self.tickets: dict[tuple[str, ...], list[pd.Series]] = {lv: [] for lv in LEVELS}
        self.carry: dict[tuple[str, ...], pd.DataFrame] = {}
        self.run = 0  # runs numbered so far
        self.last_ticket: str | None = None

    def add(
        self, lines: pd.DataFrame, ticket: pa.ChunkedArray | None, tickets: np.ndarray | None
    ) -> None:
        part = lines.groupby(KEY, observed=True, sort=False)[["revenue", "units"]].sum()
        part["lines"] = lines.groupby(KEY, observed=True, sort=False).size()
        self.parts.append(part)
        if ticket is not None:
            self._count_runs(lines, ticket)
        else:
            counts = lines.assign(t=tickets if tickets is not None else 1)
            for lv in LEVELS:
                self.tickets[lv].append(counts.groupby(list(lv), observed=True)["t"].sum())
        self._compact()

    def _compact(self) -> None:
        """Merge partial groups once they outgrow the merged ones: linear, not quadratic."""
        if _due(self.parts):
            self.parts = [self.merged()]
        for lv, parts in self.tickets.items():
            if _due(parts):
                self.tickets[lv] = [self.tickets_at(lv)]

    def _count_runs(self, lines: pd.DataFrame, ticket: pa.ChunkedArray) -> None:
        t = ticket.combine_chunks()
        change = np.ones(len(t), dtype=bool)
        if len(t) > 1:
            change[1:] = pc.fill_null(
                pc.not_equal(t.slice(1), t.slice(0, len(t) - 1)), True
            ).to_numpy(zero_copy_only=False)
        continues = len(t) > 0 and self.last_ticket is not None and t[0].as_py() == self.last_ticket
        change[0] = not continues  # else the first lines carry on the previous chunk's last run
        prev = self.run
        run = prev + np.cumsum(change)
        frame = lines[KEY].assign(run=run)
        last = int(run[-1]) if len(run) else prev
        for lv in LEVELS:
            u = frame.drop_duplicates(["run", *lv])[["run", *lv]]
            if continues and lv in self.carry:
                head = u[u["run"] == prev].astype(dict.fromkeys(lv, "str")).reset_index()
                u = u.drop(index=head.merge(self.carry[lv], on=["run", *lv])["index"])
            self.tickets[lv].append(u.groupby(list(lv), observed=True).size())
            tail = u[u["run"] == last].astype(dict.fromkeys(lv, "str"))
            old = self.carry.get(lv)
            self.carry[lv] = (
                pd.concat([old, tail]) if continues and last == prev and old is not None else tail
            )
        self.run = last
        self.last_ticket = t[-1].as_py() if len(t) else self.last_ticket

    def merged(self) -> pd.DataFrame:
        both = pd.concat([p.reset_index().astype(dict.fromkeys(KEY, "str")) for p in self.parts])
        return both.groupby(KEY, sort=True)[SUMS].sum()

    def tickets_at(self, lv: tuple[str, ...]) -> pd.Series:
        parts = [
            s.rename("tickets").reset_index().astype({c: "str" for c in lv})
            for s in self.tickets[lv]
        ]
        if not parts:
            return pd.Series(dtype="int64", name="tickets")
        return pd.concat(parts).groupby(list(lv))["tickets"].sum()


def _due(parts: list[Any]) -> bool:
    pending = sum(len(p) for p in parts[1:])
    return pending > max(COMPACT_ROWS, len(parts[0]) if parts else 0)


def _lines(chunk: Chunk, cols: dict[str, str]) -> tuple[pd.DataFrame, Any, Any, list[Any]]:
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
    store = strings(t, cols.get("store")).filter(mask)
    frame = pd.DataFrame(
        {
            "dt": pd.Categorical(np.datetime_as_string(day[keep], unit="D")),
            "store": pc.fill_null(store, "all").dictionary_encode().to_pandas(),
            "product": product.filter(mask).dictionary_encode().to_pandas(),
            "revenue": revenue[keep],
            "units": units[keep],
        }
    )
    ticket = strings(t, cols["ticket"]).filter(mask) if "ticket" in cols else None
    count = to_float(strings(t, cols["tickets"]))[keep] if "tickets" in cols else None
    return frame, ticket, None if count is None else np.nan_to_num(count), rejects


def run(src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
    totals, rejected = Totals(), RejectSink(out_dir)
    cols: dict[str, str] | None = None
    for chunk in iter_chunks(src, ctx.chunk_rows):
        if cols is None:
            cols = resolve(chunk.table, ALIASES)
            if "date" not in cols or "product" not in cols:
                raise BadDataError(
                    f"sales need a date and a product column; found {chunk.table.column_names}"
                )
        frame, ticket, count, rejects = _lines(chunk, cols)
        rejected.add(rejects)
        totals.add(frame, ticket, count)
    rows = rejected.close() | _write(out_dir, totals)
    return ProcessResult(summary=_summary(totals, rows, rejected.rows), rows=rows)


def _write(out_dir: Path, totals: Totals) -> dict[str, int]:
    merged = (
        totals.merged()
        if totals.parts
        else pd.DataFrame(columns=SUMS, index=pd.MultiIndex.from_tuples([], names=KEY))
    )
    detail = merged.join(totals.tickets_at(LEVELS[0])).reset_index()
    rows = write_partitioned(out_dir, "sales", detail.fillna({"tickets": 0}), DAILY_SCHEMA)
    by_store = merged.groupby(level=["dt", "store"])[SUMS].sum().join(totals.tickets_at(LEVELS[1]))
    rows |= write_frame(out_dir, "daily_store.parquet", by_store.reset_index(), STORE_SCHEMA)
    daily = merged.groupby(level="dt")[SUMS].sum().join(totals.tickets_at(LEVELS[2]))
    rows |= write_frame(out_dir, "daily_totals.parquet", daily.reset_index(), TOTALS_SCHEMA)
    return rows | write_frame(out_dir, "top_products.parquet", _top(merged, totals), TOP_SCHEMA)


def _top(merged: pd.DataFrame, totals: Totals) -> pd.DataFrame:
    products = merged.groupby(level="product")[SUMS].sum().join(totals.tickets_at(LEVELS[3]))
    top = products.sort_values(["revenue", "units"], ascending=False).head(TOP_N).reset_index()
    total = float(merged["revenue"].sum()) or 1.0
    return top.assign(rank=np.arange(1, len(top) + 1), revenue_share=top["revenue"] / total)


def _summary(totals: Totals, rows: dict[str, int], rejected: int) -> dict[str, Any]:
    merged = totals.merged() if totals.parts else None
    if merged is None or merged.empty:
        return {"lines": 0, "rejected_rows": rejected, "outputs": rows}
    days = merged.index.get_level_values("dt")
    top = merged.groupby(level="product")["revenue"].sum().nlargest(5)
    return {
        "lines": int(merged["lines"].sum()),
        "rejected_rows": rejected,
        "revenue": round(float(merged["revenue"].sum()), 2),
        "units": float(merged["units"].sum()),
        "tickets": int(totals.tickets_at(LEVELS[2]).sum()),
        "days": int(days.nunique()),
        "first_day": str(days.min()),
        "last_day": str(days.max()),
        "stores": int(merged.index.get_level_values("store").nunique()),
        "products": int(merged.index.get_level_values("product").nunique()),
        "top_products": {str(k): round(float(v), 2) for k, v in top.items()},
        "outputs": rows,
    }
