"""The `s3worker` command. Each subcommand is a small function; `run` starts the daemon."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

from s3worker import __version__, exits, helptext
from s3worker.errors import ConfigError
from s3worker.exits import UsageError
from s3worker.ops import OperatorError, missing_extra
from s3worker.ops.commands import (
    add_dlq,
    add_query,
    add_report,
    add_results,
    add_show,
    add_status,
    add_upload,
)

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
FORMATTER = argparse.RawDescriptionHelpFormatter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3worker",
        description=helptext.DESCRIPTION,
        epilog=helptext.top_epilog(),
        formatter_class=FORMATTER,
    )
    parser.add_argument("--version", action="version", version=f"s3worker {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run(sub)
    add_process(sub)
    add_sample(sub)
    for add in (
        add_upload,
        add_status,
        add_results,
        add_show,
        add_query,
        add_report,
        add_dlq,
    ):  # the operator's
        add(sub)
    return parser


def add_run(sub: Sub) -> None:
    p = sub.add_parser(
        "run",
        help="run the worker daemon (what systemd starts)",
        description="Poll the work queue and process each file; stop when idle.",
        epilog=helptext.run_epilog(),
        formatter_class=FORMATTER,
    )
    p.add_argument("--queue-url", help="overrides S3WORKER_QUEUE_URL")
    p.add_argument("--output-bucket", help="overrides S3WORKER_OUTPUT_BUCKET")
    p.add_argument("--concurrency", help="overrides S3WORKER_CONCURRENCY")
    p.add_argument("--idle-action", help="overrides S3WORKER_IDLE_ACTION: stop, exit or none")
    p.add_argument("--scratch-dir", help="overrides S3WORKER_SCRATCH_DIR")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    import signal

    from s3worker import certs, collector

    # Importing the daemon takes about a second: a SIGTERM meanwhile is noted, and the daemon
    # stops cleanly once its loop runs, rather than dying of the signal.
    early: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    collector.pause()  # until READY=1 (collector.py)
    certs.import_aiohttp()  # its CA certificates loaded at READY=1 (certs.py)
    try:
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
    finally:
        collector.release()


def add_process(sub: Sub) -> None:
    p = sub.add_parser(
        "process",
        help="run a processor on a local file and print its summary",
        epilog="example: s3worker process readings.csv.gz --out results/\n\n" + exits.describe(),
        formatter_class=FORMATTER,
    )
    p.add_argument("file", help="CSV, JSON, JSON lines or a log file; gzip is detected")
    p.add_argument("--processor", help="a processor name (default: route by content)")
    p.add_argument(
        "--out",
        default="s3worker-out",
        help="results directory, replaced by each successful run (default: %(default)s)",
    )
    p.add_argument(
        "--chunk-rows", type=int, default=250_000, help="rows per chunk (default: %(default)s)"
    )
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
        "timezone=America/Sao_Paulo, header=a,b,c, mapping.ROLE=COLUMN, thresholds.NAME=N, "
        "format=alb",
    )
    p.add_argument("--key", help="the S3 key the file stands for (default: its name)")
    p.set_defaults(func=cmd_process)


def cmd_process(args: argparse.Namespace) -> int:
    from s3worker.errors import PermanentError  # imported here: `run` must start fast
    from s3worker.outdir import fresh_output

    src, out = Path(args.file), Path(args.out)
    if not src.is_file():
        raise UsageError(f"{src}: no such file")
    try:
        with fresh_output(out) as staging:
            _process_into(src, staging, args)
    except (PermanentError, OSError, EOFError) as exc:  # the file's fault: gzip, bad data
        print(f"s3worker: {src}: {exc} (nothing written to {out}/)", file=sys.stderr)
        return exits.FAILED
    print((out / "summary.json").read_text(), end="")
    return exits.OK


def _process_into(src: Path, out: Path, args: argparse.Namespace) -> None:
    from s3worker.errors import UnknownFormatError
    from s3worker.processors.base import JobContext, execute, read_sample
    from s3worker.processors.options import check_against, load_local
    from s3worker.processors.registry import registry

    key = args.key or src.name
    routed, options = load_local(args.config, args.option, key)
    name = args.processor or routed
    if options.header is not None and not name:
        raise ConfigError("a header-less file (the header option) needs --processor")
    try:
        processor = registry.get(name) if name else None
    except UnknownFormatError as exc:
        raise UsageError(f"--processor: {exc}") from None
    sample = read_sample(src, key=key)
    processor = processor or registry.route(sample)
    check_against(options, processor, "options")
    ctx = JobContext(
        key=key, size=src.stat().st_size, chunk_rows=args.chunk_rows, sample=sample,
        options=options,
    )  # fmt: skip
    execute(processor, src, out, ctx)


def add_sample(sub: Sub) -> None:
    p = sub.add_parser(
        "sample",
        help="write a sample file with planted anomalies and bad rows",
        epilog="example: s3worker sample sensors --rows 200000 --gzip --out r.csv.gz "
        "--truth planted.json\n\n" + exits.describe(),
        formatter_class=FORMATTER,
    )
    p.add_argument("kind", choices=["appointments", "sensors", "sales", "applogs"])
    p.add_argument(
        "--rows",
        type=int,
        default=10_000,
        help="about this many data rows (default: %(default)s; whole series or days are "
        "kept, so a few more may come); a few malformed lines are planted on top; the "
        "exact counts are printed",
    )
    p.add_argument("--out", required=True, help="file to write (- for standard output)")
    p.add_argument(
        "--format",
        default="csv",
        choices=["csv", "json", "jsonl", "clf"],
        help="file format (default: %(default)s; clf: Apache/Nginx logs, applogs only)",
    )
    p.add_argument("--gzip", action="store_true", help="gzip the file")
    p.add_argument(
        "--seed", type=int, default=7, help="random seed: same seed, same file (default: 7)"
    )
    p.add_argument("--truth", help="also write what was planted, as JSON, to this file")
    p.set_defaults(func=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    from s3worker.samples import write_sample

    to_stdout = args.out in ("-", "/dev/stdout")
    out = Path("/dev/stdout" if to_stdout else args.out)
    try:
        truth = write_sample(args.kind, args.rows, out, args.format, args.gzip, args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.truth:
        Path(args.truth).write_text(truth.to_json() + "\n")
    extra = f" + {truth.broken_lines} malformed lines" if truth.broken_lines else ""
    message = f"wrote {truth.rows:,} rows{extra} of {args.kind} to {args.out}"
    print(message, file=sys.stderr if to_stdout else sys.stdout)
    return exits.OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at exit as a traceback
    except BrokenPipeError:
        return _stdout_closed()
    except (Exception, KeyboardInterrupt) as exc:
        if (explained := explain(exc)) is None:
            raise  # a bug: the traceback is what a report needs
        text, code = explained
        print(f"s3worker: {text}", file=sys.stderr)
    return code


def explain(exc: BaseException) -> tuple[str, int] | None:
    """One line and the exit code for every failure a user can act on; None for bugs."""
    if (text := missing_extra(exc)) is not None:
        exc = OperatorError(text)
    if isinstance(exc, ConfigError):
        return f"configuration error: {exc}", exits.USAGE
    if isinstance(exc, OperatorError | UsageError):
        return str(exc), getattr(exc, "exit_code", exits.USAGE)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", exits.INTERRUPTED
    if (text := _unreachable(exc)) is not None:
        return text, exits.UNREACHABLE
    if isinstance(exc, OSError):
        return _os_error(exc), exits.USAGE if _is_path_error(exc) else exits.FAILED
    return None


def _stdout_closed() -> int:
    """The reader went away (`| head`): stop quietly, as coreutils do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
    return exits.FAILED


def _is_path_error(exc: OSError) -> bool:
    return isinstance(exc, FileNotFoundError | PermissionError | NotADirectoryError)


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _unreachable(exc: BaseException) -> str | None:
    """One line for "AWS cannot be reached" from botocore or aiohttp, else None."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, EndpointConnectionError | ConnectTimeoutError):
            endpoint = os.environ.get("AWS_ENDPOINT_URL")
            hint = f" (AWS_ENDPOINT_URL={endpoint})" if endpoint else ""
            return f"cannot reach AWS{hint}: {seen}; check the network, then try again"
        seen = seen.__cause__ or seen.__context__
    return None
