"""What `s3worker --help` and `s3worker run --help` say beyond the flags: the daemon's
variables, examples and the exit codes. Kept apart so the CLI module stays about parsing."""

from __future__ import annotations

from s3worker.exits import describe

DESCRIPTION = """\
Process files that land in S3 on EC2 workers that stop themselves when idle.

On a worker, systemd runs `s3worker run` (the daemon). From your machine, `upload`,
`status`, `results`, `show`, `query`, `report` and `dlq` operate a deployed stack; `sample`
and `process` try the processors on local files, without AWS."""

EXAMPLES = """\
examples:
  s3worker sample sales --rows 5000 --out sales.csv     # a sample file with planted bad rows
  s3worker process sales.csv --out results/             # run a processor locally
  s3worker show results/daily_totals.parquet            # a result table, as text
  export S3WORKER_STACK=s3worker                        # instead of --stack on every command
  s3worker upload ./batch --prefix incoming/            # upload; unchanged files are skipped
  s3worker status                                       # queues, workers, recent results
  s3worker results incoming/day1.csv                    # the results of one input
  s3worker report --out report.html                     # every result charted, one HTML page
  s3worker query "SELECT * FROM sales_daily LIMIT 5"    # SQL over the BI tables
  s3worker dlq list && s3worker dlq redrive --dry-run   # what failed, what would move back"""

# (variable, meaning, default): every variable the daemon reads (tests check against config.py).
VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("S3WORKER_QUEUE_URL", "the work queue", "required"),
    ("S3WORKER_OUTPUT_BUCKET", "the processed bucket (checked at start)", "required"),
    ("S3WORKER_INPUT_BUCKETS", "buckets whose events are accepted (comma list)", "required"),
    ("S3WORKER_OUTPUT_PREFIX", "prefix for all results", "empty"),
    ("S3WORKER_SCRATCH_DIR", "scratch space; must exist (the EBS mount)", "/var/lib/s3worker"),
    ("S3WORKER_CONCURRENCY", "files processed at once (worker processes)", "CPU count"),
    ("S3WORKER_MAX_IN_FLIGHT", "messages held at once; 2 per process may wait", "8 x concurrency"),
    ("S3WORKER_IDLE_SECONDS", "idle time before the idle action", "600"),
    ("S3WORKER_IDLE_CONFIRM_SECONDS", "how long the queue must read empty", "60"),
    ("S3WORKER_IDLE_ACTION", "stop (the instance), exit (exit 0) or none", "none"),
    ("S3WORKER_ROUTES", "key-prefix rules, e.g. sensors/=sensors,sales/=sales", "sniff only"),
    ("S3WORKER_LOG_FORMAT", "json or console", "json unless a TTY"),
    ("S3WORKER_DLQ_URL", "where permanent failures go", "the redrive target"),
    ("S3WORKER_DRAIN_SECONDS", "on SIGTERM, how long running jobs may finish", "90"),
    ("S3WORKER_POLL_SECONDS", "SQS long-poll wait (0-20)", "20"),
    ("S3WORKER_SCRATCH_MAX_BYTES", "cap on the scratch bytes used", "the file system's size"),
    ("S3WORKER_MAX_ATTEMPTS", "attempts of one AWS call on transient errors", "5"),
    ("S3WORKER_JOB_TIMEOUT_SECONDS", "longest a file may be processed (at most 11 h)", "21600"),
    ("S3WORKER_JOB_MEMORY_MB", "address space of one job's process", "memory / concurrency"),
    ("S3WORKER_PROCESSOR_CONFIG", "per-route processor options: a JSON/TOML file or JSON", "none"),
    ("S3WORKER_METRICS_NAMESPACE", "CloudWatch namespace of the per-minute metrics", "none sent"),
    ("AWS_REGION", "the region (else AWS_DEFAULT_REGION, the profile's, the instance's)", "-"),
)


def top_epilog() -> str:
    return f"{EXAMPLES}\n\n{describe()}"


def run_epilog() -> str:
    width = max(len(name) for name, _, _ in VARIABLES)
    rows = [f"  {name:<{width}}  {meaning} [{default}]" for name, meaning, default in VARIABLES]
    return (
        "environment (on an instance: /etc/s3worker/s3worker.env; flags override):\n"
        + "\n".join(rows)
        + "\n\n"
        + describe()
    )
