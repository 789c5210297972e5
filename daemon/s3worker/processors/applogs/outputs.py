"""The applogs processor's BI tables (see `s3worker.processors.bi`)."""

from __future__ import annotations

from s3worker.processors.bi import BiTable

SCHEMAS = "s3worker.processors.applogs.traffic"


TABLES = (
    BiTable(
        "applogs_per_minute", "applogs", "per_minute.parquet",
        "Requests, status classes, error rate, latency percentiles, clients and bots per minute",
        f"{SCHEMAS}:MINUTE_SCHEMA",
    ),
    BiTable(
        "applogs_top_paths", "applogs", "top_paths.parquet",
        "The most requested paths with their errors",
        f"{SCHEMAS}:PATH_SCHEMA",
    ),
    BiTable(
        "applogs_status_codes", "applogs", "status_codes.parquet",
        "Requests per minute and HTTP status code",
        f"{SCHEMAS}:STATUS_SCHEMA",
    ),
    BiTable(
        "applogs_methods", "applogs", "methods.parquet",
        "Requests and errors per HTTP method",
        f"{SCHEMAS}:METHOD_SCHEMA",
    ),
)  # fmt: skip
