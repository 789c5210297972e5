"""The report page: one HTML file that opens with no network at all.

plotly.js (the copy inside the plotly wheel) is inlined once in the page's head; each chart
is a div and its Plotly.newPlot call. Text from results (keys, store or device names) is
escaped here; inside the charts plotly's JSON carries it as data.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.io as pio
from plotly.offline import get_plotlyjs

from s3worker.ops.report.charts import SECTIONS, Chart
from s3worker.ops.report.sources import Result

SUMMARY_FIELDS = 6  # headline figures of a summary shown per input
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 0 16px;
       color: #222; }
header { border-bottom: 1px solid #ddd; margin-bottom: 8px; }
h2 { margin-top: 32px; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
.note { color: #666; font-size: 13px; margin: 0 0 16px; }
.chart { border: 1px solid #eee; margin: 8px 0; }
"""


@dataclass(frozen=True)
class Section:
    processor: str
    title: str
    results: tuple[Result, ...]
    charts: tuple[Chart, ...]


def sections(results: Sequence[Result]) -> list[Section]:
    """One section per processor, the known ones first, in a fixed order."""
    order = list(SECTIONS)
    names = sorted({r.processor for r in results},
                   key=lambda n: (order.index(n) if n in SECTIONS else len(order), n))  # fmt: skip
    out = []
    for name in names:
        mine = tuple(r for r in results if r.processor == name)
        title, build = SECTIONS.get(name, (name or "unknown processor", lambda _: []))
        out.append(Section(name, title, mine, tuple(build(mine))))
    return out


def render(results: Sequence[Result], source: str, generated_at: str) -> str:
    """The whole page."""
    parts = sections(results)
    counter = iter(range(1, 10_000_000))
    body = "\n".join(_section(s, counter) for s in parts) or (
        f"<p>No results under {html.escape(source)} yet.</p>"
    )
    nav = " · ".join(f'<a href="#{_anchor(s)}">{html.escape(s.title)}</a>' for s in parts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>s3worker results: {html.escape(source)}</title>
<style>{STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<header>
<h1>s3worker results</h1>
<p>{len(results):,} input(s) from {html.escape(source)}, report written {generated_at}</p>
<nav>{nav}</nav>
</header>
{body}
</body>
</html>
"""


def _anchor(section: Section) -> str:
    return "section-" + "".join(c if c.isalnum() else "-" for c in section.processor)


def _section(section: Section, counter: Any) -> str:
    charts = "\n".join(_chart(c, next(counter)) for c in section.charts)
    if not section.charts:
        charts = '<p class="note">No charts for this processor\'s results.</p>'
    return (
        f'<section id="{_anchor(section)}">\n<h2>{html.escape(section.title)}</h2>\n'
        f"{_inputs(section.results)}\n{charts}\n</section>"
    )


def _chart(chart: Chart, n: int) -> str:
    div = pio.to_html(
        chart.figure, full_html=False, include_plotlyjs=False, config=PLOT_CONFIG,
        div_id=f"chart-{n}",
    )  # fmt: skip
    note = f'\n<p class="note">{html.escape(chart.note)}</p>' if chart.note else ""
    return f'<div class="chart">{div}</div>{note}'


def _inputs(results: Sequence[Result]) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(r.source)}</td><td>{html.escape(r.finished_at or '-')}</td>"
        f"<td>{html.escape(headline(r.summary))}</td></tr>"
        for r in results
    )
    return f"<table>\n<tr><th>input</th><th>finished</th><th>summary</th></tr>\n{rows}\n</table>"


def headline(summary: Mapping[str, Any]) -> str:
    """The summary's first few plain figures: `readings 20,000 · anomalies 31 …`."""
    figures = [
        f"{k} {v:,}" if isinstance(v, int | float) and not isinstance(v, bool) else f"{k} {v}"
        for k, v in summary.items()
        if k not in ("processor", "version") and isinstance(v, int | float | str)
    ]
    return " · ".join(figures[:SUMMARY_FIELDS])
