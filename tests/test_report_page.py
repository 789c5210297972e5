"""s3worker.ops.report.page (pure): the report page. One section per processor in a fixed
order, each input's headline figures, plotly.js inlined once so it opens offline, and text from
results escaped."""

from __future__ import annotations

import re

import pandas as pd
from plotly.offline import get_plotlyjs
from s3worker.ops.report.page import SUMMARY_FIELDS, headline, render, sections
from s3worker.ops.report.sources import Result

DAILY = pd.DataFrame({"dt": ["2024-01-01", "2024-01-02"], "revenue": [1.0, 2.0],
                      "tickets": [1, 2]})  # fmt: skip


def result(source: str, processor: str, **tables: pd.DataFrame) -> Result:
    return Result(source, processor, {"processor": processor, "rows": 1}, tables)


def test_sections_come_in_a_fixed_order_known_processors_first() -> None:
    results = [
        result("z", "zeta"), result("s", "sensors"), result("a", "alpha"),
        result("b", "sales"), result("c", "sales"),
    ]  # fmt: skip

    found = sections(results)

    assert [(s.processor, s.title) for s in found] == [
        ("sales", "Sales"), ("sensors", "Sensors"), ("alpha", "alpha"), ("zeta", "zeta"),
    ]  # fmt: skip
    assert [r.source for r in found[0].results] == ["b", "c"]
    assert found[2].charts == ()  # a plug-in processor: listed, no charts
    assert sections([result("x", "")])[0].title == "unknown processor"


def test_the_page_inlines_plotly_once_and_draws_each_chart_in_its_own_div() -> None:
    page = render([result("day.csv", "sales", **{"daily_totals.parquet": DAILY})], "s3://b/", "T")

    assert page.count(get_plotlyjs()) == 1
    assert "<script src=" not in page  # nothing to fetch: opens offline
    ids = re.findall(r'<div id="(chart-\d+)"', page)
    assert ids == ["chart-1"]
    assert "1 input(s) from s3://b/, report written T" in page
    assert '<a href="#section-sales">Sales</a>' in page
    assert '<section id="section-sales">' in page


def test_a_processor_without_charts_says_so() -> None:
    page = render([result("x.bin", "my-plugin")], "dir", "T")

    assert '<section id="section-my-plugin">' in page
    assert "No charts for this processor's results." in page


def test_no_results_is_a_page_that_says_so() -> None:
    page = render([], "s3://b/results/", "T")

    assert "No results under s3://b/results/ yet." in page
    assert "<section" not in page


def test_a_headline_is_the_first_plain_figures_of_a_summary() -> None:
    summary = {
        "processor": "sales", "version": "1", "rows": 20000, "revenue": 1234.5,
        "ok": True, "note": "fine", "by_store": {"A": 1}, "days": [1, 2],
        "a": 1, "b": 2, "c": 3, "d": 4,
    }  # fmt: skip

    text = headline(summary)

    figures = text.split(" · ")
    assert figures[:3] == ["rows 20,000", "revenue 1,234.5", "ok True"]
    assert "note fine" in figures
    assert len(figures) == SUMMARY_FIELDS
    assert "by_store" not in text
    assert "processor" not in text


def test_text_from_results_cannot_break_out_of_the_page() -> None:
    # Given results whose key and store name hold markup
    evil = "</script><script>alert(1)</script>"
    stores = pd.DataFrame({"dt": ["2024-01-01"], "store": [evil], "revenue": [1.0],
                           "units": [1.0], "tickets": [1], "lines": [1]})  # fmt: skip
    result = Result(f"in/{evil}.csv", "sales", {"note": evil}, {"daily_store.parquet": stores})
    # When the page is rendered
    text = render([result], "s3://b/", "now")
    # Then the markup is text: escaped in the HTML, and as JSON data inside the chart's script
    assert evil not in text
    assert "in/&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;.csv" in text
    assert text.count("<script>alert") == 0
