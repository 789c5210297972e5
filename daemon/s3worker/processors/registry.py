"""Which processors exist and which one a file goes to: prefix routes first, then sniffing."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from importlib import import_module
from importlib.metadata import entry_points

import structlog

from s3worker.errors import BadDataError, ConfigError, UnknownFormatError
from s3worker.processors.base import Processor, Sample, describe_gzip_damage

ENTRY_POINT_GROUP = "s3worker.processors"
# Built-in processors as "module:Class", imported on first use.
BUILTINS: dict[str, str] = {
    "appointments": "s3worker.processors.appointments:AppointmentsProcessor",
    "sensors": "s3worker.processors.sensors:SensorsProcessor",
    "sales": "s3worker.processors.sales:SalesProcessor",
    "applogs": "s3worker.processors.applogs:AppLogsProcessor",
}
# Below this sniffing confidence a file is "not recognised".
MIN_CONFIDENCE = 0.5

log = structlog.get_logger(__name__)

Route = tuple[str, str]


class Registry:
    """Processors by name. Built-ins and entry points load lazily, once."""

    def __init__(self, load_installed: bool = True) -> None:
        """`load_installed=False` gives an empty registry (only what is registered by hand)."""
        self._processors: dict[str, Processor] = {}
        self._loaded = not load_installed
        # The daemon routes in threads: the first lookups must not see a half-loaded registry.
        self._lock = threading.Lock()

    def register(self, processor: Processor) -> None:
        self._processors[processor.name] = processor

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for name, target in BUILTINS.items():
                module, _, attr = target.partition(":")
                self._processors.setdefault(name, getattr(import_module(module), attr)())
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    obj = ep.load()
                    processor = obj() if isinstance(obj, type) else obj
                except Exception as exc:  # a broken plugin must not take the worker down
                    log.error("plugin_load_failed", entry_point=ep.name, error=repr(exc))
                    continue
                self._processors[ep.name] = processor
            self._loaded = True  # last: another thread now sees every processor

    def names(self) -> list[str]:
        self._load()
        return sorted(self._processors)

    def get(self, name: str) -> Processor:
        self._load()
        try:
            return self._processors[name]
        except KeyError:
            raise UnknownFormatError(
                f"no processor named {name!r}; known: {', '.join(self.names()) or 'none'}"
            ) from None

    def route(self, sample: Sample, routes: Iterable[Route] = ()) -> Processor:
        """The processor for a file: the longest matching key prefix, else the best sniff."""
        matches = [(prefix, name) for prefix, name in routes if sample.key.startswith(prefix)]
        if matches:
            return self.get(max(matches, key=lambda m: len(m[0]))[1])
        if sample.damaged_at is not None and not sample.head:
            raise BadDataError(f"{sample.key!r}: {describe_gzip_damage(sample.damaged_at)}")
        self._load()
        scored = sorted(
            ((p.sniff(sample), p.name) for p in self._processors.values()), reverse=True
        )
        if scored and scored[0][0] >= MIN_CONFIDENCE:
            return self._processors[scored[0][1]]
        raise UnknownFormatError(describe_unrecognised(sample, scored))


def describe_unrecognised(sample: Sample, scored: list[tuple[float, str]]) -> str:
    first_line = sample.text.splitlines()[0][:120] if sample.head else ""
    kind = "gzip of " if sample.compressed else ""
    best = ", ".join(f"{name}={score:.2f}" for score, name in scored[:3]) or "no processors"
    return (
        f"no processor recognises {sample.key!r}: {kind}{len(sample.head)} bytes sampled, "
        f"first line {first_line!r}; best scores: {best}; to say what it is, route its prefix "
        "to a processor (S3WORKER_ROUTES, or a route with options in S3WORKER_PROCESSOR_CONFIG; "
        "locally `s3worker process --processor NAME --option ...`)"
    )


def parse_routes(text: str, variable: str = "S3WORKER_ROUTES") -> tuple[Route, ...]:
    """`sensors/=sensors,sales/=sales` -> (("sensors/", "sensors"), ("sales/", "sales"))."""
    routes: list[Route] = []
    for rule in filter(None, (part.strip() for part in text.split(","))):
        prefix, sep, name = rule.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{variable}: rule {rule!r} is not PREFIX=PROCESSOR")
        routes.append((prefix.strip(), name.strip()))
    return tuple(routes)


registry = Registry()
