"""The report page in a real browser: Debian's headless Chromium, offline, from a file:// URL.

The page is written by `s3worker report --from-dir` from results the real processors wrote on
real public files (tests/data). Chromium runs with the network switched off (DevTools'
offline emulation), so a page that needed anything from outside would fail to draw and log
an error. The screenshot stays in the test's tmp dir (`--basetemp` to keep it somewhere).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from report_samples import process_real_files
from s3worker.cli import main
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

WIDTH = 1280
RENDER_TIMEOUT_SECONDS = 120  # a loaded 2-core machine parses 4.8 MB of plotly.js slowly
# Every chart's plot area, with what it drew: bars, line paths, markers.
CHARTS_JS = """
return [...document.querySelectorAll('.js-plotly-plot')].map(el => {
  const svg = el.querySelector('svg.main-svg'), r = el.getBoundingClientRect();
  const s = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {title: (el.querySelector('.gtitle') || {}).textContent || '',
          top: r.top + window.scrollY, left: r.left, width: s.width, height: s.height,
          bars: el.querySelectorAll('.bars .point path').length,
          lines: el.querySelectorAll('path.js-line').length,
          markers: el.querySelectorAll('.scatterlayer .points path').length};
});
"""
DRAWN_JS = """
const plots = document.querySelectorAll('.js-plotly-plot');
return plots.length > 0 && [...plots].every(el => el._fullLayout && el.querySelector('.main-svg'));
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The page, and how many sensor series the results hold (one chart each)."""
    root = tmp_path_factory.mktemp("report")
    summaries = process_real_files(root / "results")
    out = root / "report.html"
    assert main(["report", "--from-dir", str(root / "results"), "--out", str(out)]) == 0
    return out, sum(s["series"] for s in summaries.values() if s["processor"] == "sensors")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium, "needs Debian's chromium: make tools"
    assert driver, "needs Debian's chromium-driver: make tools"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WIDTH},900", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def load_offline(chrome: Any, url: str) -> None:
    chrome.execute_cdp_cmd("Network.enable", {})
    chrome.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    chrome.get(url)
    WebDriverWait(chrome, RENDER_TIMEOUT_SECONDS).until(lambda d: d.execute_script(DRAWN_JS))


def requested_urls(chrome: Any) -> set[str]:
    messages = [json.loads(e["message"])["message"] for e in chrome.get_log("performance")]
    return {
        m["params"]["request"]["url"]
        for m in messages
        if m["method"] == "Network.requestWillBeSent"
    }


def full_page_screenshot(chrome: Any, path: Path) -> Image.Image:
    height = chrome.execute_script("return document.documentElement.scrollHeight")
    chrome.set_window_size(WIDTH, height)
    chrome.save_screenshot(str(path))
    return Image.open(path).convert("RGB")


def colored_pixels(image: Image.Image) -> int:
    """Pixels with a hue (the traces): text, grid lines and the background are grey."""
    saturation = image.convert("HSV").getchannel("S")
    return sum(saturation.point(lambda s: 255 if s > 80 else 0).histogram()[255:])


def test_the_report_renders_every_chart_offline(
    page: tuple[Path, int], browser: Any, tmp_path: Path
) -> None:
    # Given the report of five real inputs of the four processors
    path, sensor_series = page
    # When Chromium opens it from a file:// URL with the network off
    load_offline(browser, path.as_uri())
    charts = browser.execute_script(CHARTS_JS)
    shot = full_page_screenshot(browser, tmp_path / "report.png")
    # Then every chart the report holds was drawn, with a plot area of real size
    titles = [c["title"] for c in charts]
    assert titles[:6] == [
        "Revenue by day", "Revenue by day and store", "Top products by revenue",
        "Requests per minute", "Errors per minute", "Latency per minute",
    ]  # fmt: skip
    assert titles[-2:] == ["Bookings by day", "No-show rate by day"]
    sensors = titles[6:-2]  # one chart per sensor series: "device · metric"
    assert len(sensors) == sensor_series == 2
    assert all(t.startswith("Holstenstraße (Mitte), Kiel · ") for t in sensors), sensors
    assert all(c["width"] > 500 and c["height"] > 200 for c in charts), charts
    # And each drew its data: one bar per day of sales, lines and markers elsewhere
    by_title = {c["title"]: c for c in charts}
    assert by_title["Revenue by day"]["bars"] == 89  # the supermarket file's 89 days
    assert by_title["Top products by revenue"]["bars"] == 6  # its six product lines
    assert all(c["bars"] + c["lines"] + c["markers"] > 0 for c in charts), charts
    # And nothing was fetched: the page is the only request, and the console has no error
    assert requested_urls(browser) == {path.as_uri()}
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    # And the screenshot is not blank: every chart's area holds coloured traces
    assert shot.width == WIDTH
    for c in charts:
        box = (int(c["left"]), int(c["top"]), int(c["left"] + c["width"]),
               int(c["top"] + c["height"]))  # fmt: skip
        assert colored_pixels(shot.crop(box)) > 100, c["title"]
