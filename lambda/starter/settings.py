"""The Lambda's settings, read once from its environment (names fixed by the template)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class CapacityType(enum.StrEnum):
    """How new workers are bought (the stack's CapacityType parameter)."""

    ON_DEMAND = "on-demand"
    SPOT = "spot"
    SPOT_THEN_ON_DEMAND = "spot-then-on-demand"

    @property
    def markets(self) -> tuple[str, ...]:
        """The markets a launch tries, in order."""
        return {
            CapacityType.ON_DEMAND: ("on-demand",),
            CapacityType.SPOT: ("spot",),
            CapacityType.SPOT_THEN_ON_DEMAND: ("spot", "on-demand"),
        }[self]


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is required")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in env.get(name, "").split(",") if p.strip())


def _capacity_type(env: Mapping[str, str]) -> CapacityType:
    raw = env.get("S3WORKER_CAPACITY_TYPE", "").strip() or CapacityType.ON_DEMAND.value
    try:
        return CapacityType(raw)
    except ValueError:
        allowed = ", ".join(c.value for c in CapacityType)
        raise ValueError(f"S3WORKER_CAPACITY_TYPE must be one of {allowed}, got {raw!r}") from None


def parse_pool_tag(env: Mapping[str, str]) -> tuple[str, str]:
    key, sep, value = _required(env, "S3WORKER_POOL_TAG").partition("=")
    if not (sep and key.strip() and value.strip()):
        raise ValueError("S3WORKER_POOL_TAG must be key=value")
    return key.strip(), value.strip()


@dataclass(frozen=True)
class Settings:
    queue_url: str
    launch_template_id: str
    pool_tag: tuple[str, str]
    launch_template_version: str = "$Latest"
    max_workers: int = 1
    files_per_worker: int = 500
    subnet_ids: tuple[str, ...] = ()
    instance_types: tuple[str, ...] = ()
    cache_seconds: int = 5
    capacity_type: CapacityType = CapacityType.ON_DEMAND
    metrics_namespace: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        pool_tag = parse_pool_tag(env)
        return cls(
            queue_url=_required(env, "S3WORKER_QUEUE_URL"),
            launch_template_id=_required(env, "S3WORKER_LAUNCH_TEMPLATE_ID"),
            pool_tag=pool_tag,
            launch_template_version=env.get("S3WORKER_LAUNCH_TEMPLATE_VERSION", "").strip()
            or "$Latest",
            max_workers=_int(env, "S3WORKER_MAX_WORKERS", 1),
            files_per_worker=_int(env, "S3WORKER_FILES_PER_WORKER", 500),
            subnet_ids=_csv(env, "S3WORKER_SUBNET_IDS"),
            instance_types=_csv(env, "S3WORKER_INSTANCE_TYPES"),
            cache_seconds=_int(env, "S3WORKER_DECISION_CACHE_SECONDS", 5, minimum=0),
            capacity_type=_capacity_type(env),
            # The daemon's metrics share it: S3worker/<stack name> (the pool tag's value).
            metrics_namespace=env.get("S3WORKER_METRICS_NAMESPACE", "").strip()
            or f"S3worker/{pool_tag[1]}",
        )
