"""The `s3worker` command. Each subcommand is a small function; `run` starts the daemon."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from s3worker import __version__
from s3worker.errors import ConfigError
from s3worker.ops import OperatorError
from s3worker.ops.commands import add_dlq, add_results, add_status, add_upload


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s3worker", description=__doc__)
    parser.add_argument("--version", action="version", version=f"s3worker {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run(sub)
    add_process(sub)
    add_sample(sub)
    for add in (add_upload, add_status, add_dlq, add_results):  # the operator's commands
        add(sub)
    return parser


def add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the worker daemon (what systemd starts)")
    p.add_argument("--queue-url", help="overrides S3WORKER_QUEUE_URL")
    p.add_argument("--output-bucket", help="overrides S3WORKER_OUTPUT_BUCKET")
    p.add_argument("--concurrency", help="overrides S3WORKER_CONCURRENCY")
    p.add_argument("--idle-action", help="overrides S3WORKER_IDLE_ACTION: stop, exit or none")
    p.add_argument("--scratch-dir", help="overrides S3WORKER_SCRATCH_DIR")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    import signal

    # Importing the daemon takes about a second: a SIGTERM meanwhile is noted, and the daemon
    # stops cleanly once its loop runs, rather than dying of the signal.
    early: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    from s3worker.config import Settings
    from s3worker.worker import run_daemon

    overrides = {
        "S3WORKER_QUEUE_URL": args.queue_url,
        "S3WORKER_OUTPUT_BUCKET": args.output_bucket,
        "S3WORKER_CONCURRENCY": args.concurrency,
        "S3WORKER_IDLE_ACTION": args.idle_action,
        "S3WORKER_SCRATCH_DIR": args.scratch_dir,
    }
    settings = Settings.from_env(overrides={k: v for k, v in overrides.items() if v})
    return run_daemon(settings, early)


def add_process(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("process", help="run a processor on a local file and print its summary")
    p.add_argument("file", help="CSV, JSON, JSON lines or a log file; gzip is detected")
    p.add_argument("--processor", help="a processor name (default: route by content)")
    p.add_argument("--out", default="s3worker-out", help="output directory (default: %(default)s)")
    p.add_argument("--chunk-rows", type=int, default=250_000, help="rows per chunk")
    p.add_argument(
        "--config",
        default="",
        help="processor options: a JSON/TOML file (or JSON text) holding either the routes "
        "document of S3WORKER_PROCESSOR_CONFIG (matched against --key) or one options object",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one option, over --config: delimiter=';', decimal=',', date_format=%%d/%%m/%%Y, "
        "timezone=America/Sao_Paulo, header=a,b,c, mapping.ROLE=COLUMN, thresholds.NAME=N",
    )
    p.add_argument("--key", help="the S3 key the file stands for (default: its name)")
    p.set_defaults(func=cmd_process)


def cmd_process(args: argparse.Namespace) -> int:
    from pathlib import Path  # subcommands import what they use: `run` must start fast

    from s3worker.errors import PermanentError
    from s3worker.processors.base import JobContext, execute, read_sample
    from s3worker.processors.options import check_against, load_local
    from s3worker.processors.registry import registry

    src, out = Path(args.file), Path(args.out)
    key = args.key or src.name
    try:
        routed, options = load_local(args.config, args.option, key)
        name = args.processor or routed
        if options.header is not None and not name:
            raise ConfigError("a header-less file (the header option) needs --processor")
        sample = read_sample(src, key=key)
        processor = registry.get(name) if name else registry.route(sample)
        check_against(options, processor, "options")
        ctx = JobContext(
            key=key, size=src.stat().st_size, chunk_rows=args.chunk_rows, sample=sample,
            options=options,
        )  # fmt: skip
        execute(processor, src, out, ctx)
    except (PermanentError, OSError) as exc:
        print(f"s3worker: {exc}", file=sys.stderr)
        return 1
    print((out / "summary.json").read_text(), end="")
    return 0


def add_sample(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sample", help="write a sample file with planted anomalies and bad rows")
    p.add_argument("kind", choices=["appointments", "sensors", "sales", "applogs"])
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--format", default="csv", choices=["csv", "json", "jsonl", "clf"])
    p.add_argument("--gzip", action="store_true", help="gzip the file")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--truth", help="also write what was planted, as JSON, to this file")
    p.set_defaults(func=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    from pathlib import Path  # subcommands import what they use: `run` must start fast

    from s3worker.samples import write_sample

    try:
        truth = write_sample(
            args.kind, args.rows, Path(args.out), args.format, args.gzip, args.seed
        )
    except ValueError as exc:
        print(f"s3worker: {exc}", file=sys.stderr)
        return 2
    if args.truth:
        Path(args.truth).write_text(truth.to_json() + "\n")
    print(f"wrote {truth.rows} rows of {args.kind} to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"s3worker: configuration error: {exc}", file=sys.stderr)
        return 2
    except OperatorError as exc:
        print(f"s3worker: {exc}", file=sys.stderr)
        return 2
    return code
