"""The sensors processor's BI tables (see `s3worker.processors.bi`)."""

from __future__ import annotations

from s3worker.processors.bi import BiTable

STATS = "s3worker.processors.sensors.stats"


TABLES = (
    BiTable(
        "sensors_readings", "sensors", "hourly.parquet",
        "Readings per device, metric and hour: count, mean, min, max",
        f"{STATS}:HOURLY_SCHEMA",
    ),
    BiTable(
        "sensors_anomalies", "sensors", "anomalies.parquet",
        "Anomalous readings and spans: device, metric, when, why, value, expected, score",
        "s3worker.processors.sensors.analysis:ANOMALIES_SCHEMA",
    ),
    BiTable(
        "sensors_device_stats", "sensors", "device_stats.parquet",
        "Per device and metric: readings, mean, std, min, max, first/last seen, anomalies",
        f"{STATS}:STATS_SCHEMA",
    ),
)  # fmt: skip
