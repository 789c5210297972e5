"""What the user can say about a file: per route, options for the processor that reads it.

One configuration, JSON (or TOML in a `.toml` file), validated when it is loaded:

    {"routes": [
      {"prefix": "clinics/recife/", "processor": "appointments",
       "options": {"delimiter": ";", "decimal": ",", "date_format": "%d/%m/%Y %H:%M",
                   "timezone": "America/Recife",
                   "header": ["paciente", "medico", "data", "hora", "situacao"],
                   "mapping": {"professional_id": "medico"},
                   "thresholds": {"default_minutes": 20}}}]}

The daemon reads it from S3WORKER_PROCESSOR_CONFIG (a file path, or the JSON itself, which
is how the stack's ProcessorOptions parameter passes it); `s3worker process` from `--config`
(this document, or a bare options object) and `--option key=value`. Standard library only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s3worker.errors import ConfigError

KEYS = (
    "mapping",
    "header",
    "delimiter",
    "decimal",
    "date_format",
    "timezone",
    "thresholds",
    "format",
)
DECIMALS = (".", ",")
MAX_HEADER = 2_000  # columns named in a header-less file's column list
Route = tuple[str, str]


@dataclass(frozen=True)
class Options:
    """A route's processor options; every field is optional (None / empty: detect it)."""

    mapping: Mapping[str, str] = field(default_factory=dict)  # role -> column
    header: tuple[str, ...] | None = None  # the file has no header row: these are its columns
    delimiter: str | None = None
    decimal: str | None = None  # "." or ","
    date_format: str | None = None  # strftime format tried before the usual ones
    timezone: str | None = None  # zone of timestamps without an offset (default UTC)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    # The file's format, for a processor that reads several (applogs: clf, alb, s3, w3c...);
    # the processor checks the name.
    format: str | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str) -> Options:
        """Options from a decoded document; `where` names it in errors."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: options must be an object, not {type(raw).__name__}")
        unknown = sorted(set(raw) - set(KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown option(s) {unknown}; known: {', '.join(KEYS)}")
        return cls(
            mapping=_str_map(raw.get("mapping", {}), f"{where}.mapping"),
            header=_header(raw.get("header"), f"{where}.header"),
            delimiter=_delimiter(raw.get("delimiter"), f"{where}.delimiter"),
            decimal=_choice(raw.get("decimal"), DECIMALS, f"{where}.decimal"),
            date_format=_date_format(raw.get("date_format"), f"{where}.date_format"),
            timezone=_timezone(raw.get("timezone"), f"{where}.timezone"),
            thresholds=_thresholds(raw.get("thresholds", {}), f"{where}.thresholds"),
            format=_name(raw.get("format"), f"{where}.format"),
        )


@dataclass(frozen=True)
class RouteOptions:
    """Keys starting with `prefix` go to `processor` (None: sniff) with `options`."""

    prefix: str
    processor: str | None
    options: Options


@dataclass(frozen=True)
class ProcessorConfig:
    """Every route's options; a key no route matches gets the defaults."""

    routes: tuple[RouteOptions, ...] = ()

    def for_key(self, key: str) -> Options:
        matches = [r for r in self.routes if key.startswith(r.prefix)]
        return max(matches, key=lambda r: len(r.prefix)).options if matches else Options()

    def route_rules(self) -> tuple[Route, ...]:
        """The (prefix, processor) rules of the routes that name a processor."""
        return tuple((r.prefix, r.processor) for r in self.routes if r.processor)

    def validate(self, lookup: Callable[[str], Any], where: str) -> None:
        """Processor names exist; mapped roles and thresholds are ones the processor has."""
        for i, route in enumerate(self.routes):
            if route.processor is None:
                continue
            try:
                processor = lookup(route.processor)
            except Exception as exc:  # UnknownFormatError from the registry, or a plugin's
                raise ConfigError(f"{where}: routes[{i}].processor: {exc}") from None
            check_against(route.options, processor, f"{where}: routes[{i}].options")


def check_against(options: Options, processor: Any, where: str) -> None:
    """Mapping roles and threshold names must be the processor's (when it declares them)."""
    schema = getattr(processor, "schema", None)
    if schema is not None:
        roles = [r.name for r in schema.roles]
        for role in options.mapping:
            if role not in roles:
                raise ConfigError(
                    f"{where}.mapping: {processor.name} has no role {role!r}; "
                    f"roles: {', '.join(roles)}"
                )
    known = dict(getattr(processor, "thresholds", {}))
    for name in options.thresholds:
        if name not in known:
            raise ConfigError(
                f"{where}.thresholds: {processor.name} has no threshold {name!r}; "
                f"thresholds: {', '.join(known) or 'none'}"
            )


def load_config(value: str, variable: str = "S3WORKER_PROCESSOR_CONFIG") -> ProcessorConfig:
    """From a path to a JSON/TOML file, or from JSON text (starting with `{`)."""
    text = value.strip()
    if not text:
        return ProcessorConfig()
    doc = _decode(text, variable)
    if not isinstance(doc, Mapping) or set(doc) - {"routes"}:
        raise ConfigError(f'{variable}: expected {{"routes": [...]}}, found keys {sorted(doc)}')
    routes = doc.get("routes", [])
    if not isinstance(routes, list):
        raise ConfigError(f"{variable}: routes must be a list")
    return ProcessorConfig(
        tuple(_route(r, f"{variable}: routes[{i}]") for i, r in enumerate(routes))
    )


def load_local(value: str, overrides: Sequence[str], key: str) -> tuple[str | None, Options]:
    """`s3worker process`: `--config` (a routes document matched against `key`, or a bare
    options object) then each `--option key=value` on top. Returns (processor, options)."""
    raw: dict[str, Any] = {}
    processor: str | None = None
    if value.strip():
        doc = _decode(value.strip(), "--config")
        if isinstance(doc, Mapping) and "routes" in doc:
            config = load_config(value, "--config")
            matches = [r for r in config.routes if key.startswith(r.prefix)]
            if matches:
                best = max(matches, key=lambda r: len(r.prefix))
                processor, raw = best.processor, _as_raw(best.options)
        elif isinstance(doc, Mapping):
            raw = dict(doc)
        else:
            raise ConfigError("--config: expected a JSON/TOML object")
    for pair in overrides:
        _set_option(raw, pair)
    return processor, Options.parse(raw, "options")


def _decode(text: str, where: str) -> Any:
    try:
        if text.startswith("{"):
            return json.loads(text)
        path = Path(text)
        body = path.read_text(encoding="utf-8")
        if path.suffix != ".toml":
            return json.loads(body)
        import tomllib  # here, not at the top: `s3worker run` imports this module before READY=1

        return tomllib.loads(body)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {text!r}: {exc.strerror}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"{where}: not valid JSON/TOML: {exc}") from None


def _route(raw: Any, where: str) -> RouteOptions:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a route must be an object")
    unknown = sorted(set(raw) - {"prefix", "processor", "options"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: prefix, processor, options")
    prefix, processor = raw.get("prefix"), raw.get("processor")
    if not isinstance(prefix, str):
        raise ConfigError(f"{where}.prefix: required, a key prefix such as 'sales/'")
    if processor is not None and (not isinstance(processor, str) or not processor.strip()):
        raise ConfigError(f"{where}.processor: a processor name")
    options = Options.parse(raw.get("options", {}), f"{where}.options")
    if options.header is not None and not processor:
        raise ConfigError(f"{where}: a header-less file (options.header) needs a processor")
    return RouteOptions(prefix, processor.strip() if processor else None, options)


def _set_option(raw: dict[str, Any], pair: str) -> None:
    """`delimiter=;`, `header=a,b,c`, `mapping.start=Data`, `thresholds.default_minutes=20`."""
    name, sep, value = pair.partition("=")
    if not sep:
        raise ConfigError(f"--option {pair!r}: expected KEY=VALUE")
    top, _, sub = name.strip().partition(".")
    if top in ("mapping", "thresholds"):
        if not sub:
            raise ConfigError(f"--option {pair!r}: expected {top}.NAME=VALUE")
        raw.setdefault(top, {})[sub] = _number(value, pair) if top == "thresholds" else value
    elif top == "header":
        raw[top] = [v.strip() for v in value.split(",")]
    else:
        raw[top] = value


def _number(value: str, pair: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--option {pair!r}: not a number") from None


def _as_raw(options: Options) -> dict[str, Any]:
    raw: dict[str, Any] = {k: getattr(options, k) for k in KEYS}
    return {k: (list(v) if k == "header" else v) for k, v in raw.items() if v not in (None, {})}


def _str_map(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ConfigError(f"{where}: expected an object of role -> column name")
    return dict(raw)


def _header(raw: Any, where: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) and v for v in raw):
        raise ConfigError(f"{where}: expected a non-empty list of column names")
    if len(raw) > MAX_HEADER or len(set(raw)) != len(raw):
        raise ConfigError(f"{where}: at most {MAX_HEADER} distinct column names")
    return tuple(raw)


def _delimiter(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    value = "\t" if raw in ("\\t", "tab") else raw
    if not isinstance(value, str) or len(value) != 1 or value in '\r\n"':
        raise ConfigError(f"{where}: one character such as ',' ';' '|' or 'tab', not {raw!r}")
    return value


def _choice(raw: Any, choices: tuple[str, ...], where: str) -> str | None:
    if raw is not None and raw not in choices:
        raise ConfigError(f"{where}: one of {', '.join(map(repr, choices))}, not {raw!r}")
    return raw  # type: ignore[no-any-return]


def _date_format(raw: Any, where: str) -> str | None:
    if raw is not None and (not isinstance(raw, str) or "%" not in raw):
        raise ConfigError(f"{where}: a strftime format such as '%d/%m/%Y %H:%M', not {raw!r}")
    return raw


def _name(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{where}: expected a format name such as 'alb'")
    return raw.strip()


def _timezone(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    import zoneinfo  # only for a configured time zone; not on every start (READY=1)

    try:
        zoneinfo.ZoneInfo(str(raw))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: {raw!r} is not an IANA time zone (e.g. Europe/Berlin)"
        ) from None
    return str(raw)


def _thresholds(raw: Any, where: str) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected an object of name -> number")
    out: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(f"{where}.{name}: a number, not {value!r}")
        out[str(name)] = float(value)
    return out
