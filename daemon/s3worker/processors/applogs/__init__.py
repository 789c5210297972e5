"""Web/application logs: per-minute traffic, status classes, error rate, latency, top paths."""

from __future__ import annotations

from pathlib import Path

from s3worker.processors.base import JobContext, Processor, ProcessResult, Sample
from s3worker.processors.sniffing import score, shape_of

ALIASES: dict[str, tuple[str, ...]] = {
    "time": (
        "timestamp",
        "time",
        "ts",
        "datetime",
        "timelocal",
        "timeiso8601",
        "date",
        "eventtime",
    ),
    "path": ("path", "url", "uri", "requesturi", "requestpath", "route", "endpoint", "request"),
    "status": ("status", "statuscode", "httpstatus", "responsestatus", "code"),
    "method": ("method", "httpmethod", "verb", "requestmethod"),
    "client": ("client", "clientip", "ip", "remoteaddr", "remoteip", "userip", "xforwardedfor"),
    # Milliseconds unless the name says otherwise (see analysis.applogs.LATENCY_SCALE).
    "latency": (
        "latencyms",
        "latency",
        "durationms",
        "duration",
        "responsetimems",
        "responsetime",
        "elapsedms",
        "elapsed",
        "requesttime",
        "upstreamresponsetime",
        "latencyus",
        "durationus",
    ),
}


class AppLogsProcessor(Processor):
    """Combined Log Format or JSON/CSV request logs -> per-minute metrics and top paths."""

    name = "applogs"
    version = "1"

    def sniff(self, sample: Sample) -> float:
        shape = shape_of(sample)
        if shape.fmt == "clf":
            return 0.95
        a = ALIASES
        return score(
            shape, [a["time"], a["path"], a["status"]], [a["latency"], a["client"], a["method"]]
        )

    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        # pandas loads here, in the worker process, never when routing.
        from s3worker.processors.applogs.analysis import run

        return run(src, out_dir, ctx)
