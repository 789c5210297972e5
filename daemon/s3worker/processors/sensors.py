"""Machine readings: per-device statistics and anomalies (z-score, range, flat lines, gaps)."""

from __future__ import annotations

from pathlib import Path

from s3worker.processors.base import JobContext, Processor, ProcessResult, Sample
from s3worker.processors.sniffing import score, shape_of

ALIASES: dict[str, tuple[str, ...]] = {
    "device": (
        "device",
        "deviceid",
        "sensor",
        "sensorid",
        "machine",
        "machineid",
        "equipment",
        "equipamento",
        "dispositivo",
        "asset",
        "assetid",
        "maquina",
    ),
    "timestamp": (
        "timestamp",
        "ts",
        "time",
        "datetime",
        "readingtime",
        "measuredat",
        "eventtime",
        "datahora",
    ),
    "metric": ("metric", "measurement", "variable", "channel", "metrica", "grandeza", "sensortype"),
    "value": ("value", "reading", "val", "valor", "measurementvalue", "leitura"),
}
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


class SensorsProcessor(Processor):
    """Per-device statistics, hourly aggregates and an anomalies table with reasons and scores."""

    name = "sensors"
    version = "1"

    def sniff(self, sample: Sample) -> float:
        shape = shape_of(sample)
        base = score(
            shape, [ALIASES["device"], ALIASES["timestamp"]], [ALIASES["metric"] + tuple(RANGES)]
        )
        long_format = shape.has(ALIASES["metric"]) and shape.has(ALIASES["value"])
        return base if long_format or shape.has(RANGES) else min(base, 0.55)

    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        # pandas loads here, in the worker process, never when routing.
        from s3worker.processors.analysis.sensors import run

        return run(src, out_dir, ctx)
