"""One frozen Settings, built once from the environment (and CLI overrides), validated.

Every variable the daemon reads is named here and nowhere else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from s3worker.errors import ConfigError
from s3worker.processors.options import ProcessorConfig, load_config
from s3worker.processors.registry import Route, parse_routes, registry

IDLE_ACTIONS = ("stop", "exit", "none")
LOG_FORMATS = ("json", "console")
# SQS long polling waits at most 20 s: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html
MAX_POLL_SECONDS = 20

# SQS keeps a message in flight at most 12 hours from its receipt, heartbeat or not:
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html
MAX_JOB_SECONDS = 11 * 3600
# Messages held per worker process: files in transfer (checks, downloads, uploads) overlap the
# processing of others; at most 2 per process wait for the CPU (intake.py).
IN_FLIGHT_PER_PROCESS = 8
# A job's address-space limit (RLIMIT_AS). Address space, not resident memory: pyarrow's
# allocator and the thread stacks reserve ~1.8 GiB that a small job never touches (measured:
# VmPeak 1.8 GB at 0.2 GB resident), so below 2 GiB nothing runs. Kept for the daemon and the OS:
MEMORY_RESERVE_BYTES = 512 * 2**20
MIN_JOB_MEMORY_MB = 2048
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
MAX_NAMESPACE_CHARS = 255
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    queue_url: str
    output_bucket: str
    input_buckets: tuple[str, ...] = ()
    output_prefix: str = ""
    scratch_dir: Path = Path("/var/lib/s3worker")
    concurrency: int = 1
    max_in_flight: int = IN_FLIGHT_PER_PROCESS
    idle_seconds: float = 600.0
    idle_confirm_seconds: float = 60.0
    idle_action: str = "none"
    routes: tuple[Route, ...] = ()
    log_format: str = "json"
    dlq_url: str | None = None
    drain_seconds: float = 90.0
    poll_seconds: int = MAX_POLL_SECONDS
    scratch_max_bytes: int | None = None
    max_attempts: int = 5
    job_timeout_seconds: float = 6 * 3600
    job_memory_bytes: int = MIN_JOB_MEMORY_MB * 2**20
    processor_config: ProcessorConfig = field(default_factory=ProcessorConfig)
    metrics_namespace: str = ""

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None
    ) -> Settings:
        """Read every S3WORKER_* variable; `overrides` (CLI flags) win over `env`.

        Every missing or invalid variable is reported in one ConfigError, not one per start.
        """
        e = {**(os.environ if env is None else env), **(overrides or {})}
        r = _Reader(e)
        tty = sys.stdout.isatty()
        concurrency = r.parse("S3WORKER_CONCURRENCY", int, os.cpu_count() or 1, lo=1)
        processors = r.processor_config("S3WORKER_PROCESSOR_CONFIG")
        settings = cls(
            queue_url=r.required("S3WORKER_QUEUE_URL"),
            output_bucket=r.required("S3WORKER_OUTPUT_BUCKET"),
            input_buckets=r.buckets("S3WORKER_INPUT_BUCKETS"),
            output_prefix=e.get("S3WORKER_OUTPUT_PREFIX", "").strip("/"),
            scratch_dir=Path(e.get("S3WORKER_SCRATCH_DIR", "/var/lib/s3worker")),
            concurrency=concurrency,
            # Files held at once, in any phase (intake.py): downloads and uploads of some
            # overlap the processing of others (small files spend most of their time in S3 calls).
            max_in_flight=r.parse(
                "S3WORKER_MAX_IN_FLIGHT", int, IN_FLIGHT_PER_PROCESS * concurrency, lo=1
            ),
            idle_seconds=r.parse("S3WORKER_IDLE_SECONDS", float, 600.0, lo=0),
            idle_confirm_seconds=r.parse("S3WORKER_IDLE_CONFIRM_SECONDS", float, 60.0, lo=0),
            idle_action=r.choice("S3WORKER_IDLE_ACTION", IDLE_ACTIONS, "none"),
            # The longest prefix wins; on a tie, the processor config's route.
            routes=processors.route_rules() + r.routes(e.get("S3WORKER_ROUTES", "")),
            log_format=r.choice("S3WORKER_LOG_FORMAT", LOG_FORMATS, "console" if tty else "json"),
            dlq_url=e.get("S3WORKER_DLQ_URL") or None,
            drain_seconds=r.parse("S3WORKER_DRAIN_SECONDS", float, 90.0, lo=0),
            poll_seconds=r.parse(
                "S3WORKER_POLL_SECONDS", int, MAX_POLL_SECONDS, 0, MAX_POLL_SECONDS
            ),
            scratch_max_bytes=r.parse("S3WORKER_SCRATCH_MAX_BYTES", int, None, lo=1),
            max_attempts=r.parse("S3WORKER_MAX_ATTEMPTS", int, 5, lo=1),
            job_timeout_seconds=r.parse(
                "S3WORKER_JOB_TIMEOUT_SECONDS", float, 6 * 3600.0, 1, MAX_JOB_SECONDS
            ),
            job_memory_bytes=r.parse(
                "S3WORKER_JOB_MEMORY_MB", int, default_job_memory_mb(concurrency),
                lo=MIN_JOB_MEMORY_MB,
            ) * 2**20,
            processor_config=processors,
            metrics_namespace=r.namespace("S3WORKER_METRICS_NAMESPACE"),
        )  # fmt: skip
        r.raise_problems()
        return settings


class _Reader:
    """The readers below, collecting their ConfigErrors instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def required(self, name: str) -> str:
        return self._call("", _required, self.env, name)

    def parse(self, name: str, kind: Callable[[str], T], default: T, *bounds: Any, **kw: Any) -> T:
        return self._call(default, _parse, self.env, name, kind, default, *bounds, **kw)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        return self._call(default, _choice, self.env, name, choices, default)

    def routes(self, text: str) -> tuple[Route, ...]:
        return self._call((), parse_routes, text)

    def buckets(self, name: str) -> tuple[str, ...]:
        return self._call((), _buckets, self.env, name)

    def namespace(self, name: str) -> str:
        return self._call("", _namespace, self.env, name)

    def processor_config(self, name: str) -> ProcessorConfig:
        return self._call(ProcessorConfig(), _processor_config, self.env, name)

    def _call(self, default: T, read: Callable[..., T], *args: Any, **kw: Any) -> T:
        try:
            return read(*args, **kw)
        except ConfigError as exc:
            self.problems.append(str(exc))
            return default

    def raise_problems(self) -> None:
        if len(self.problems) == 1:
            raise ConfigError(self.problems[0])
        if self.problems:
            raise ConfigError(f"{len(self.problems)} problems: " + "; ".join(self.problems))


def default_job_memory_mb(concurrency: int) -> int:
    """The machine's memory, less a reserve, shared by the jobs that run at once."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    share = (total - MEMORY_RESERVE_BYTES) // concurrency // 2**20
    return max(MIN_JOB_MEMORY_MB, share)


def _buckets(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma list of bucket names, at least one."""
    names = tuple(b.strip() for b in _required(env, name).split(",") if b.strip())
    for bucket in names:
        if not 3 <= len(bucket) <= 63 or "/" in bucket or ":" in bucket:
            raise ConfigError(f"{name}: {bucket!r} is not a bucket name (3-63 characters)")
    if not names:
        raise ConfigError(f"{name} names no bucket")
    return names


def _namespace(env: Mapping[str, str], name: str) -> str:
    """A CloudWatch namespace of ours (AWS/ is reserved), or empty: no metrics."""
    value = env.get(name, "").strip()
    if len(value) > MAX_NAMESPACE_CHARS or value.startswith(("AWS/", ":")):
        raise ConfigError(
            f"{name}={value[:40]!r} is not a CloudWatch namespace of ours "
            f"(at most {MAX_NAMESPACE_CHARS} characters, not AWS/...)"
        )
    return value


def _processor_config(env: Mapping[str, str], name: str) -> ProcessorConfig:
    """Per-route processor options: a JSON/TOML file's path, or the JSON itself."""
    config = load_config(env.get(name, ""), name)
    config.validate(registry.get, name)
    return config


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required and not set")
    return value


def _parse(
    env: Mapping[str, str],
    name: str,
    kind: Callable[[str], T],
    default: T,
    lo: float | None = None,
    hi: float | None = None,
) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if lo is not None and value < lo:  # type: ignore[operator]
        raise ConfigError(f"{name}={raw!r} must be at least {lo:g}")
    if hi is not None and value > hi:  # type: ignore[operator]
        raise ConfigError(f"{name}={raw!r} must be at most {hi:g}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r} must be one of: {', '.join(choices)}")
    return value
