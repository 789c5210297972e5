"""Pure: each processor's results (sources.Result) -> the charts of its report section.

Tables of several inputs of one processor are combined the way a dashboard would: sales and
bookings summed by day (daily files add up), per-minute traffic one line per input (each log
is its own service), sensor series by (device, metric). Plotly figures; page.py renders them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from s3worker.ops.report.sources import Result

MAX_STORES = 10  # stores drawn one by one; the rest are summed as "other stores"
TOP_PRODUCTS = 15
MAX_SERIES = 24  # sensor series charted, those with the most anomalies first
MAX_MARKERS = 2_000  # anomaly markers per series, the highest scores first
SPARSE_POINTS = 48  # a line of fewer points (minutes, hours) also gets markers
HEIGHT = 340


@dataclass(frozen=True)
class Chart:
    title: str
    figure: go.Figure
    note: str = ""


def _figure(title: str, x: str, y: str, **layout: object) -> go.Figure:
    settings: dict[str, object] = {
        "title": title, "xaxis_title": x, "yaxis_title": y, "height": HEIGHT,
        "template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.25},
    }  # fmt: skip
    fig = go.Figure()
    fig.update_layout(**{**settings, **layout})
    return fig


def _concat(results: Sequence[Result], name: str) -> pd.DataFrame:
    frames = [t.assign(input=r.source) for r in results if (t := r.table(name)) is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --- sales -------------------------------------------------------------------------------


def sales(results: Sequence[Result]) -> list[Chart]:
    return [c for c in (_revenue_by_day(results), _revenue_by_store(results),
                        _top_products(results)) if c is not None]  # fmt: skip


def _revenue_by_day(results: Sequence[Result]) -> Chart | None:
    daily = _concat(results, "daily_totals.parquet")
    if daily.empty:
        return None
    by_day = daily.groupby("dt", as_index=False)[["revenue", "tickets"]].sum()
    fig = _figure("Revenue by day", "day", "revenue")
    fig.add_bar(x=by_day["dt"], y=by_day["revenue"], name="revenue",
                customdata=by_day["tickets"],
                hovertemplate="%{x}<br>revenue %{y:,.2f}<br>%{customdata:,} tickets")  # fmt: skip
    return Chart("Revenue by day", fig)


def _revenue_by_store(results: Sequence[Result]) -> Chart | None:
    daily = _concat(results, "daily_store.parquet")
    if daily.empty:
        return None
    totals = daily.groupby("store")["revenue"].sum().sort_values(ascending=False)
    kept = set(totals.index[:MAX_STORES])
    daily["store"] = daily["store"].where(daily["store"].isin(kept), "other stores")
    by = daily.groupby(["store", "dt"], as_index=False)["revenue"].sum()
    fig = _figure("Revenue by day and store", "day", "revenue", barmode="stack")
    for store in [*totals.index[:MAX_STORES], "other stores"]:
        part = by[by["store"] == store]
        if len(part):
            fig.add_bar(x=part["dt"], y=part["revenue"], name=str(store))
    note = f"the {MAX_STORES} largest stores; the others summed" if len(totals) > MAX_STORES else ""
    return Chart("Revenue by day and store", fig, note)


def _top_products(results: Sequence[Result]) -> Chart | None:
    top = _concat(results, "top_products.parquet")
    if top.empty:
        return None
    best = top.groupby("product")["revenue"].sum().nlargest(TOP_PRODUCTS)[::-1]
    fig = _figure("Top products by revenue", "revenue", "", height=max(HEIGHT, 26 * len(best)))
    fig.add_bar(x=best.to_numpy(), y=best.index.astype(str), orientation="h", name="revenue")
    note = "summed over each input's own top list" if len(results) > 1 else ""
    return Chart("Top products by revenue", fig, note)


# --- applogs -----------------------------------------------------------------------------


def applogs(results: Sequence[Result]) -> list[Chart]:
    minutes = _concat(results, "per_minute.parquet")
    if minutes.empty:
        return []
    minutes = minutes.sort_values("minute")
    errors = [("status_5xx", "solid"), ("status_4xx", "dot")]
    charts = [
        _per_minute(minutes, "Requests per minute", [("requests", "solid")], "requests"),
        _per_minute(minutes, "Errors per minute", errors, "responses"),
    ]
    if minutes[["p50_ms", "p95_ms"]].notna().any().any():
        latency = [("p50_ms", "dot"), ("p95_ms", "solid"), ("p99_ms", "dash")]
        charts.append(_per_minute(minutes, "Latency per minute", latency, "milliseconds"))
    return charts


def _per_minute(minutes: pd.DataFrame, title: str, columns: list[tuple[str, str]], y: str) -> Chart:
    fig = _figure(title, "minute (UTC)", y)
    for source, group in minutes.groupby("input", sort=True):
        part = with_gaps(group, "minute", pd.Timedelta(minutes=1))
        mode = "lines" if len(part) >= SPARSE_POINTS else "lines+markers"
        for column, dash in columns:
            if part[column].notna().any():
                label = column.removeprefix("status_").removesuffix("_ms")
                fig.add_scatter(
                    x=part["minute"], y=part[column], mode=mode, name=f"{source} {label}",
                    line={"dash": dash},
                )  # fmt: skip
    return Chart(title, fig)


def with_gaps(frame: pd.DataFrame, column: str, step: pd.Timedelta) -> pd.DataFrame:
    """`frame` (sorted by `column`) with an empty row one step after each row that the next
    one does not follow within a step: a line chart breaks there instead of bridging it."""
    after = frame[column].diff().shift(-1) > step
    gaps = pd.DataFrame({column: frame.loc[after, column] + step})
    return pd.concat([frame, gaps], ignore_index=True).sort_values(column, kind="stable")


# --- sensors -----------------------------------------------------------------------------


def sensors(results: Sequence[Result]) -> list[Chart]:
    hourly = _concat(results, "hourly.parquet")
    if hourly.empty:
        return []
    anomalies = _concat(results, "anomalies.parquet")
    counts = anomalies.groupby(["device", "metric"]).size() if len(anomalies) else pd.Series()
    pairs = hourly[["device", "metric"]].drop_duplicates().astype(str).itertuples(index=False)
    series = sorted(((d, m) for d, m in pairs), key=lambda s: (-int(counts.get(s, 0)), s))
    charts = [_series(hourly, anomalies, d, m) for d, m in series[:MAX_SERIES]]
    if len(series) > MAX_SERIES:
        last = charts[-1]
        note = f"{MAX_SERIES} of {len(series)} series shown: those with the most anomalies"
        charts[-1] = Chart(last.title, last.figure, note)
    return charts


def _series(hourly: pd.DataFrame, anomalies: pd.DataFrame, device: str, metric: str) -> Chart:
    h = hourly[(hourly["device"] == device) & (hourly["metric"] == metric)].sort_values("hour")
    h = with_gaps(h, "hour", pd.Timedelta(hours=1))
    title = f"{device} · {metric}"
    fig = _figure(title, "hour (UTC)", metric)
    fig.add_scatter(x=h["hour"], y=h["max"], mode="lines", line={"width": 0},
                    showlegend=False, hoverinfo="skip")  # fmt: skip
    fig.add_scatter(x=h["hour"], y=h["min"], mode="lines", line={"width": 0}, fill="tonexty",
                    fillcolor="rgba(99,110,250,0.18)", name="hourly min-max")  # fmt: skip
    mode = "lines" if len(h) >= SPARSE_POINTS else "lines+markers"  # a short file: few hours
    fig.add_scatter(x=h["hour"], y=h["mean"], mode=mode, name="hourly mean",
                    line={"color": "rgb(99,110,250)"})  # fmt: skip
    if len(anomalies):
        mine = anomalies[(anomalies["device"] == device) & (anomalies["metric"] == metric)]
        for reason, part in mine.groupby("reason", sort=True):
            name = f"{reason} ({len(part):,})"
            if reason == "gap":  # its value is the silence in seconds, not a reading
                _gaps(fig, part.head(MAX_MARKERS), h["min"].min(), name)
                continue
            shown = part.loc[part["score"].abs().sort_values(ascending=False).index[:MAX_MARKERS]]
            fig.add_scatter(
                x=shown["timestamp"], y=shown["value"], mode="markers", name=name,
                marker={"size": 8, "symbol": "x"},
            )  # fmt: skip
    return Chart(title, fig)


def _gaps(fig: go.Figure, gaps: pd.DataFrame, bottom: float, name: str) -> None:
    """Each silence as a thick segment along the bottom of the chart, from start to end."""
    x: list[object] = []
    for start, until in zip(gaps["timestamp"], gaps["until"], strict=True):
        x += [start, until, None]
    fig.add_scatter(
        x=x, y=[bottom if v is not None else None for v in x], mode="lines+markers", name=name,
        line={"width": 6, "color": "rgba(214,39,40,0.7)"}, marker={"symbol": "line-ns-open"},
    )  # fmt: skip


# --- appointments ------------------------------------------------------------------------


def appointments(results: Sequence[Result]) -> list[Chart]:
    daily = _concat(results, "daily_professional.parquet")
    if daily.empty:
        return []
    counts = ["bookings", "cancellations", "no_shows", "attended"]
    by_day = daily.groupby("day", as_index=False)[counts].sum().sort_values("day")
    held = by_day["bookings"] - by_day["cancellations"]
    by_day["no_show_rate"] = by_day["no_shows"] / held.where(held > 0)
    other = by_day["bookings"] - by_day[["cancellations", "no_shows", "attended"]].sum(axis=1)
    bookings = _figure("Bookings by day", "day", "bookings", barmode="stack")
    stacks = {
        "attended": by_day["attended"], "no-show": by_day["no_shows"],
        "cancelled": by_day["cancellations"], "scheduled": other,
    }  # fmt: skip
    for label, values in stacks.items():
        if values.any():
            bookings.add_bar(x=by_day["day"], y=values, name=label)
    rate = _figure("No-show rate by day", "day", "no-show rate", yaxis_tickformat=".0%")
    rate.add_scatter(x=by_day["day"], y=by_day["no_show_rate"], mode="lines+markers",
                     name="no-shows / bookings not cancelled")  # fmt: skip
    return [Chart("Bookings by day", bookings), Chart("No-show rate by day", rate)]


SECTIONS: dict[str, tuple[str, Callable[[Sequence[Result]], list[Chart]]]] = {
    "sales": ("Sales", sales),
    "applogs": ("Application logs", applogs),
    "sensors": ("Sensors", sensors),
    "appointments": ("Appointments", appointments),
}
