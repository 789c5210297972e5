"""The registry: processors by name (built in or installed by entry point), and the one a file
goes to: the longest prefix route, else the best sniff; unknown content is an explained error."""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from processing import heavy_modules_after, sample
from s3worker.errors import BadDataError, ConfigError, UnknownFormatError
from s3worker.processors.base import (
    JobContext,
    Processor,
    ProcessResult,
    Sample,
    execute,
    read_sample,
)
from s3worker.processors.registry import (
    ENTRY_POINT_GROUP,
    MIN_CONFIDENCE,
    Registry,
    describe_unrecognised,
    parse_routes,
)

CASES = [
    *[("appointments", fmt, fmt == "json") for fmt in ("csv", "json", "jsonl")],
    *[("sensors", fmt, fmt == "csv") for fmt in ("csv", "json", "jsonl")],
    *[("sales", fmt, fmt == "jsonl") for fmt in ("csv", "json", "jsonl")],
    *[
        ("applogs", fmt, gz)
        for fmt, gz in (("clf", False), ("clf", True), ("jsonl", False), ("csv", False))
    ],
]
BUILT_INS = ["applogs", "appointments", "sales", "sensors"]
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


def test_installed_processors_are_loaded_once(installed_plugin: Path) -> None:
    registry = Registry()
    first = registry.get("weather")
    assert registry.names() == [*BUILT_INS, "weather"]
    assert registry.get("weather") is first  # not a new instance per lookup


def test_a_broken_plugin_does_not_hide_the_built_ins(installed_plugin: Path) -> None:
    (installed_plugin / "weather_plugin.py").write_text("raise ImportError('broken')\n")
    assert {"appointments", "sensors", "sales", "applogs"} <= set(Registry().names())


class Fixed(Processor):
    """Sniffs every sample with the same confidence."""

    def __init__(self, name: str, confidence: float) -> None:
        self.name = name  # per instance here; a class constant in real processors
        self.confidence = confidence

    def sniff(self, sample: Sample) -> float:
        return self.confidence

    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        return ProcessResult(summary={})


def registry_of(*processors: Processor) -> Registry:
    registry = Registry(load_installed=False)
    for processor in processors:
        registry.register(processor)
    return registry


def text(head: bytes, key: str = "in/x.bin", compressed: bool = False) -> Sample:
    return Sample(key=key, head=head, compressed=compressed)


def test_built_ins_are_known_by_name() -> None:
    registry = Registry()
    assert set(BUILT_INS) <= set(registry.names())
    assert registry.get("sales").name == "sales"


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownFormatError, match=r"no processor named 'weather'; known: ") as err:
        Registry().get("weather")
    assert all(name in str(err.value) for name in BUILT_INS)
    with pytest.raises(UnknownFormatError, match=r"no processor named 'sales'; known: none$"):
        Registry(load_installed=False).get("sales")


def test_an_empty_registry_holds_what_is_registered_and_nothing_else() -> None:
    registry = registry_of(Fixed("a", 0.9), Fixed("b", 0.1))
    assert registry.names() == ["a", "b"]
    registry.register(Fixed("a", 0.0))  # the same name again replaces the first
    assert registry.get("a").sniff(text(b"")) == 0.0


def test_the_best_sniff_wins_from_the_least_confidence_up() -> None:
    assert registry_of(Fixed("low", 0.6), Fixed("high", 0.8)).route(text(b"x")).name == "high"
    at_least = registry_of(Fixed("just", MIN_CONFIDENCE))
    assert at_least.route(text(b"x")).name == "just"
    with pytest.raises(UnknownFormatError, match=r"best scores: below=0\.49, zero=0\.00"):
        registry_of(Fixed("below", MIN_CONFIDENCE - 0.01), Fixed("zero", 0)).route(text(b"x"))


def test_a_prefix_route_wins_even_over_a_confident_sniff() -> None:
    registry = registry_of(Fixed("sniffed", 1.0), Fixed("routed", 0.0))
    routes = parse_routes("in/=routed")
    assert registry.route(text(b"x", key="in/a.csv"), routes).name == "routed"
    assert registry.route(text(b"x", key="inbox/a.csv"), routes).name == "sniffed"
    with pytest.raises(UnknownFormatError, match="no processor named 'gone'"):
        registry.route(text(b"x", key="in/a.csv"), parse_routes("in/=gone"))


def test_a_gzip_broken_before_any_content_is_refused_unless_routed(tmp_path: Path) -> None:
    src = tmp_path / "x.csv.gz"
    src.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
    broken = read_sample(src, key="in/x.csv.gz")
    registry = registry_of(Fixed("sniffed", 1.0))
    with pytest.raises(BadDataError) as err:
        registry.route(broken)
    assert str(err.value).startswith(
        "'in/x.csv.gz': the gzip stream is corrupt or truncated (found at byte 0)"
    )
    # a route says what the file is: the processor then reports the damage as it reads
    assert registry.route(broken, [("in/", "sniffed")]).name == "sniffed"


def test_a_records_wrapper_bigger_than_the_sample_is_routed_by_its_rows(tmp_path: Path) -> None:
    src, _ = sample(tmp_path, "sales", 3000, fmt="json")
    rows = json.loads(src.read_text())
    for indent in (None, 1):
        wrapped = tmp_path / f"wrapped-{indent}.json"
        wrapped.write_text(json.dumps({"records": rows}, indent=indent))
        assert wrapped.stat().st_size > 4 * 64 * 1024
        assert Registry().route(read_sample(wrapped, key="upload/x")).name == "sales"


def test_the_unrecognised_message_names_what_was_sampled() -> None:
    packed = describe_unrecognised(text(b"a\nb", compressed=True), [(0.3, "x")])
    assert "'in/x.bin': gzip of 3 bytes sampled, first line 'a'; best scores: x=0.30;" in packed
    empty = describe_unrecognised(text(b""), [])
    assert "0 bytes sampled, first line ''; best scores: no processors;" in empty
    assert "S3WORKER_ROUTES" in empty
    scored = [(0.4, "a"), (0.3, "b"), (0.2, "c"), (0.1, "d")]
    assert "best scores: a=0.40, b=0.30, c=0.20;" in describe_unrecognised(text(b"x"), scored)
    long = describe_unrecognised(text(b"y" * 500), [])
    assert f"first line '{'y' * 120}'" in long


def test_routes_are_prefix_processor_pairs() -> None:
    assert parse_routes(" a/ = sales ,, b/=applogs,") == (("a/", "sales"), ("b/", "applogs"))
    assert parse_routes("=sales") == (("", "sales"),)  # an empty prefix matches every key
    assert parse_routes("") == ()


@pytest.mark.parametrize("rule", ["logs/", "logs/=", "logs/= "])
def test_a_route_without_a_processor_names_the_variable_and_the_rule(rule: str) -> None:
    with pytest.raises(ConfigError, match=rf"^S3WORKER_ROUTES: rule '{rule.strip()}' is not"):
        parse_routes(f"a/=sales,{rule}")
    with pytest.raises(ConfigError, match=r"^routes: rule"):
        parse_routes(rule, variable="routes")


# --- entry points above; built-in processors below --------------------------------------


@pytest.mark.parametrize(("kind", "fmt", "gzip"), CASES)
def test_content_sniffing_finds_the_processor(
    tmp_path: Path, kind: str, fmt: str, gzip: bool
) -> None:
    src, _ = sample(tmp_path, kind, 300, fmt=fmt, gzip=gzip)
    # the key says nothing: routing must come from the content alone
    assert Registry().route(read_sample(src, key="upload/file.bin")).name == kind


def test_longest_prefix_rule_wins_over_sniffing(tmp_path: Path) -> None:
    src, _ = sample(tmp_path, "sensors", 300)
    routes = parse_routes("in/=sales, in/plant/=appointments")
    assert Registry().route(read_sample(src, key="in/plant/x.csv"), routes).name == "appointments"
    assert Registry().route(read_sample(src, key="in/x.csv"), routes).name == "sales"
    assert Registry().route(read_sample(src, key="other/x.csv"), routes).name == "sensors"


def test_unrecognised_content_says_what_was_seen(tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("name,colour\nowl,brown\n")
    with pytest.raises(UnknownFormatError) as err:
        Registry().route(read_sample(src, key="misc/notes.txt"))
    message = str(err.value)
    assert "misc/notes.txt" in message
    assert "name,colour" in message
    assert "best scores" in message


def test_processor_modules_load_without_pandas() -> None:
    # the daemon's main process imports every processor to route: it must stay light
    statement = "from s3worker.processors.registry import registry; registry.names()"
    assert heavy_modules_after(statement) == []


def test_processors_survive_pickling_for_the_process_pool() -> None:
    registry = Registry()
    for name in ("appointments", "sensors", "sales", "applogs"):
        assert (
            type(pickle.loads(pickle.dumps(registry.get(name)))).__name__
            == type(registry.get(name)).__name__
        )


def test_routing_from_threads_never_sees_a_half_loaded_registry(tmp_path: Path) -> None:
    # Given a fresh registry and a log file, routed from many threads at once (the daemon
    # routes off the event loop)
    src, _ = sample(tmp_path, "applogs", 300, fmt="clf")
    log_sample = read_sample(src, key="logs/access.log")
    fresh = Registry()
    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(lambda _: fresh.route(log_sample).name, range(32)))
    # Then every one of them found the log processor
    assert set(names) == {"applogs"}
