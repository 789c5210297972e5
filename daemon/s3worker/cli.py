"""The `s3worker` command. Each subcommand is a small function; `run` starts the daemon."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from s3worker import __version__
from s3worker.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s3worker", description=__doc__)
    parser.add_argument("--version", action="version", version=f"s3worker {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run(sub)
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
    return run_daemon(settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"s3worker: configuration error: {exc}", file=sys.stderr)
        return 2
    return code
