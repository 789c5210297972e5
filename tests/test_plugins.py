"""A processor installed as a distribution with an `s3worker.processors` entry point is used."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3worker.processors.base import JobContext, execute, read_sample
from s3worker.processors.registry import ENTRY_POINT_GROUP, Registry

PLUGIN = """
from s3worker.processors.base import Processor, ProcessResult


class Weather(Processor):
    name = "weather"
    version = "0.1"

    def sniff(self, sample):
        return 0.99 if sample.text.startswith("station,") else 0.0

    def process(self, src, out_dir, ctx):
        rows = src.read_text().count("\\n") - 1
        (out_dir / "stations.txt").write_text(str(rows))
        return ProcessResult(summary={"stations": rows}, rows={"stations.txt": rows})
"""


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[Path]:
    """A real (if tiny) installed distribution: a module plus its .dist-info with entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "weather_plugin.py").write_text(PLUGIN)
    info = site / "weather_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: weather-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nweather = weather_plugin:Weather\n"
    )
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))
    sys.modules.pop("weather_plugin", None)


def test_entry_point_processor_is_routed_to_and_runs(
    installed_plugin: Path, tmp_path: Path
) -> None:
    src = tmp_path / "obs.csv"
    src.write_text("station,temp\nA,1\nB,2\n")
    registry = Registry()
    assert "weather" in registry.names()
    processor = registry.route(read_sample(src, key="obs.csv"))
    assert processor.name == "weather"
    result = execute(processor, src, tmp_path / "out", JobContext(key="obs.csv", size=1))
    assert result.summary == {"stations": 2}
    assert (tmp_path / "out" / "summary.json").exists()


def test_a_broken_plugin_does_not_hide_the_built_ins(installed_plugin: Path) -> None:
    (installed_plugin / "weather_plugin.py").write_text("raise ImportError('broken')\n")
    assert {"appointments", "sensors", "sales", "applogs"} <= set(Registry().names())
