"""Machine readings: per-device statistics and anomalies (z-score, range, flat lines, gaps)."""

from __future__ import annotations

from s3worker.processors.base import Sample
from s3worker.processors.schema import norm
from s3worker.processors.sensors.schema import SCHEMA
from s3worker.processors.sniffing import records
from s3worker.processors.tabular.processor import TABULAR, TabularProcessor

# Physical limits of well-known metrics (wide-format columns or long-format metric names);
# a reading outside is an "out_of_range" anomaly. Unknown metrics get no range check.
# Gauge pressure goes below zero (suction side of a pump), voltage and current are signed.
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (-40.0, 150.0),
    "temp": (-40.0, 150.0),
    "temperatura": (-40.0, 150.0),
    "humidity": (0.0, 100.0),
    "umidade": (0.0, 100.0),
    "pressure": (float("-inf"), 2000.0),
    "pressao": (float("-inf"), 2000.0),
    "vibration": (0.0, 100.0),
    "vibracao": (0.0, 100.0),
    "rpm": (0.0, 20000.0),
    "voltage": (-1000.0, 1000.0),
    "current": (-1000.0, 1000.0),
}


class SensorsProcessor(TabularProcessor):
    """Per-device statistics, hourly aggregates and an anomalies table with reasons and scores."""

    name = "sensors"
    version = "2"
    schema = SCHEMA
    analysis = "s3worker.processors.sensors.analysis"

    def sniff(self, sample: Sample) -> float:
        fmt, columns, rows = records(sample)
        if fmt not in TABULAR:
            return 0.0
        found = self.schema.match(columns, rows)
        base = self.schema.rate(found)
        # A time and some numbers is many things; a value or metric column, or a known
        # physical quantity (temperature, voltage...), says readings.
        readings = any(r in found for r in ("value", "metric"))
        return base if readings or any(norm(c) in RANGES for c in columns) else min(base, 0.6)
