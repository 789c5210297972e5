"""Web/application logs: per-minute traffic, status codes, methods, latency, paths, bots."""

from __future__ import annotations

from pathlib import Path

from s3worker.errors import BadDataError
from s3worker.processors.applogs.logformats import canonical_format, detect_line_format
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
        "requesttime8601",
    ),
    "path": (
        "path",
        "url",
        "uri",
        "requesturi",
        "requestpath",
        "route",
        "endpoint",
        "request",
        "urlpath",
        "csuristem",
    ),
    "status": (
        "status",
        "statuscode",
        "httpstatus",
        "responsestatus",
        "code",
        "response",
        "responsecode",
        "scstatus",
        "elbstatuscode",
    ),
    "method": ("method", "httpmethod", "verb", "requestmethod", "csmethod"),
    "client": (
        "client",
        "clientip",
        "ip",
        "remoteaddr",
        "remoteip",
        "userip",
        "xforwardedfor",
        "sourceip",
        "cip",
    ),
    # Milliseconds unless the name or the value says otherwise (analysis.applogs.field_scale).
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
        "timetaken",
    ),
    "agent": ("useragent", "httpuseragent", "agent", "ua", "csuseragent", "clientuseragent"),
}
# The option naming the format; `auto` (the default) sniffs it.
FORMAT_OPTION = "format"


class AppLogsProcessor(Processor):
    """Access logs (Combined/Common, nginx, ALB, CloudFront, S3, JSON/CSV) -> traffic tables.

    The format is sniffed from the content unless given: `AppLogsProcessor("alb")`, or the
    `format` processor option of the job (`clf`, `alb`, `s3`, `w3c`/`cloudfront`, `jsonl`...).
    """

    name = "applogs"
    version = "2"

    def __init__(self, log_format: str | None = None) -> None:
        self.log_format = _chosen(log_format)

    def sniff(self, sample: Sample) -> float:
        if detect_line_format(sample.text):
            return 0.95
        a = ALIASES
        return score(
            shape_of(sample),
            [a["time"], a["path"], a["status"]],
            [a["latency"], a["client"], a["method"], a["agent"]],
        )

    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        # pandas loads here, in the worker process, never when routing.
        from s3worker.processors.applogs.analysis import run

        return run(src, out_dir, ctx, _chosen(ctx.options.format) or self.log_format)


def _chosen(name: str | None) -> str | None:
    if name is None or name.strip().lower() in ("", "auto"):
        return None
    try:
        return canonical_format(name)
    except ValueError as exc:
        raise BadDataError(f"applogs option {FORMAT_OPTION!r}: {exc}") from None
