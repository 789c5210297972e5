"""The operator subcommands' argparse set-up and bodies; cli.py only registers them.

Heavy modules (boto3) are imported inside the command functions: `s3worker run` must start
fast and never pays for the operator's commands.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from s3worker.ops.aws import Aws
    from s3worker.ops.stack import Stack

    Sub: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def stack_options() -> argparse.ArgumentParser:
    """--stack, --profile, --region: shared by every operator command."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--stack",
        default=os.environ.get(STACK_VARIABLE),
        help=f"the CloudFormation stack's name (default: ${STACK_VARIABLE})",
    )
    p.add_argument("--profile", help="AWS profile (default: AWS_PROFILE or the default)")
    p.add_argument(
        "--region",
        help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, the instance's)",
    )
    return p


STACK_VARIABLE = "S3WORKER_STACK"


def add_upload(sub: Sub) -> None:
    p = sub.add_parser("upload", parents=[stack_options()], help="upload files to the raw bucket")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (recursive)")
    p.add_argument("--prefix", default="", help="key prefix (a folder), e.g. incoming/")
    p.add_argument(
        "--concurrency", type=int, default=8, help="files at once (default: %(default)s)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=cmd_upload)


def add_status(sub: Sub) -> None:
    p = sub.add_parser("status", parents=[stack_options()], help="queues, workers, recent results")
    p.add_argument("--limit", type=int, default=10, help="recent results/errors to show")
    p.add_argument("--scan", type=int, default=100_000, help="most result objects to list")
    p.add_argument("--prefix", help="results prefix (default: the stack's OutputPrefix)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)


def add_dlq(sub: Sub) -> None:
    p = sub.add_parser("dlq", help="the dead-letter queue: list or redrive")
    dsub = p.add_subparsers(dest="dlq_command", required=True)
    ls = dsub.add_parser("list", parents=[stack_options()], help="what failed and why")
    ls.add_argument("--limit", type=int, default=1000, help="most messages to show")
    ls.add_argument("--prefix", help="results prefix (default: the stack's OutputPrefix)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_dlq_list)
    rd = dsub.add_parser("redrive", parents=[stack_options()], help="send them back to work")
    rd.add_argument("--dry-run", action="store_true", help="count what would move, move nothing")
    rd.add_argument("--limit", type=int, default=100_000, help="most messages to move by hand")
    rd.add_argument("--wait", type=float, default=300, help="seconds to wait for the move task")
    rd.add_argument("--json", action="store_true", help="machine-readable result")
    rd.set_defaults(func=cmd_dlq_redrive)


def add_results(sub: Sub) -> None:
    p = sub.add_parser("results", parents=[stack_options()], help="the results of one input")
    p.add_argument("key", help="the input's key in the raw bucket (or s3://RAW/KEY)")
    p.add_argument("--prefix", help="results prefix (default: the stack's OutputPrefix)")
    p.add_argument("--json", action="store_true", help="raw JSON documents")
    p.set_defaults(func=cmd_results)


def add_show(sub: Sub) -> None:
    p = sub.add_parser(
        "show",
        parents=[stack_options()],
        help="print a result table (Parquet) as text or CSV",
        description="FILE: a local result file; KEY: a result object in the processed bucket "
        "(as `s3worker results` lists it, or s3://BUCKET/KEY; needs --stack).",
    )
    p.add_argument("source", metavar="KEY|FILE", help="a result key or a local file")
    p.add_argument("--rows", type=int, default=20, help="rows to print (default: %(default)s)")
    p.add_argument("--csv", action="store_true", help="every row, as CSV, on standard output")
    p.set_defaults(func=cmd_show)


def add_query(sub: Sub) -> None:
    p = sub.add_parser(
        "query",
        parents=[stack_options()],
        help="SQL over the BI tables (the catalog's names), locally",
        description="Runs SQL (DuckDB) over the processed bucket's BI tables, named as in the "
        "stack's Glue catalog (README: Querying the results); only the outputs the current "
        "manifests list are read.",
        epilog='example: s3worker query "SELECT dt, SUM(revenue) FROM sales_daily GROUP BY dt"',
    )
    p.add_argument("sql", help="one SELECT statement")
    p.add_argument("--prefix", help="results prefix (default: the stack's OutputPrefix)")
    p.add_argument("--scan", type=int, default=1_000_000, help="most result objects to list")
    p.add_argument("--rows", type=int, default=50, help="rows to print (default: %(default)s)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="every row, as a JSON list of objects")
    out.add_argument("--csv", action="store_true", help="every row, as CSV")
    p.set_defaults(func=cmd_query)


def add_report(sub: Sub) -> None:
    p = sub.add_parser(
        "report",
        parents=[stack_options()],
        help="write the results as one HTML page of charts (opens offline)",
        description="Charts of every input's current results, by processor: sales by day, "
        "store and product; requests, errors and latency per minute; each sensor series with "
        "its anomalies; bookings and no-show rates. From the stack's processed bucket, or "
        "with --from-dir from a local folder of `s3worker process --out` results.",
    )
    p.add_argument(
        "--out", default="s3worker-report.html", help="the page to write (default: %(default)s)"
    )
    p.add_argument("--prefix", help="results prefix (default: the stack's OutputPrefix)")
    p.add_argument(
        "--from-dir",
        metavar="DIR",
        help="read the results under DIR (each folder with a summary.json) instead of S3",
    )
    p.set_defaults(func=cmd_report)


def _connect(args: argparse.Namespace, pool: int = 10) -> tuple[Aws, Stack]:
    from s3worker.ops import OperatorError
    from s3worker.ops.aws import Aws
    from s3worker.ops.stack import load_stack

    if not args.stack:
        raise OperatorError(f"no stack: pass --stack NAME or set {STACK_VARIABLE}")
    aws = Aws(profile=args.profile, region=args.region, pool=pool)
    return aws, load_stack(aws, args.stack)


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, default=str, ensure_ascii=False))


def cmd_upload(args: argparse.Namespace) -> int:
    from pathlib import Path

    from s3worker.ops.progress import Progress
    from s3worker.ops.upload import Uploader, plan

    files = plan([Path(p) for p in args.paths], args.prefix)
    aws, stack = _connect(args, pool=args.concurrency * 5)
    progress = Progress(len(files), sum(f.size for f in files))
    report = Uploader(aws.client("s3"), stack.raw_bucket, progress).run(files, args.concurrency)
    progress.close()
    if args.json:
        _print_json(report.as_dict())
    else:
        print(report.summary())
    return 1 if report.failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from s3worker.ops.status import collect, render

    aws, stack = _connect(args)
    status = collect(aws, stack, stack.layout(args.prefix), args.limit, args.scan)
    if args.json:
        _print_json(status.as_dict())
    else:
        print(render(status))
    return 0


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from s3worker.ops.dlq import as_dicts, list_dead_letters, render_list

    aws, stack = _connect(args)
    letters = list_dead_letters(aws, stack, stack.layout(args.prefix), args.limit)
    if args.json:
        _print_json(as_dicts(letters))
    else:
        print(render_list(letters))
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from s3worker.ops.dlq import redrive, render_redrive

    aws, stack = _connect(args)
    result = redrive(aws, stack, args.dry_run, args.limit, args.wait)
    if args.json:
        _print_json(asdict(result))
    else:
        print(render_redrive(result))
    return 1 if result.failed or result.status not in ("COMPLETED", "not moved") else 0


def cmd_results(args: argparse.Namespace) -> int:
    from s3worker.ops.results import input_key, lookup, render

    aws, stack = _connect(args)
    key = input_key(args.key, stack.raw_bucket)
    outcome = lookup(aws, stack, stack.layout(args.prefix), key)
    if args.json:
        _print_json(outcome.as_dict())
    else:
        print(render(outcome))
    return outcome.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from s3worker import exits
    from s3worker.ops import report  # without the ops extra: cli.explain says which to install

    if args.from_dir:
        results, source = report.from_dir(Path(args.from_dir)), args.from_dir
    else:
        aws, stack = _connect(args)
        layout = stack.layout(args.prefix)
        results = report.from_bucket(aws.client("s3"), stack.processed_bucket, layout)
        source = f"s3://{stack.processed_bucket}/{layout.prefix}"
    size = report.write(results, Path(args.out), source)
    print(f"wrote {args.out} ({size / 1e6:.1f} MB): {len(results)} input(s) from {source}")
    return exits.OK if results else exits.PENDING


def cmd_show(args: argparse.Namespace) -> int:
    from s3worker.ops.show import local_copy, show

    connected: list[tuple[Aws, Stack]] = []

    def stack_and_client() -> tuple[Aws, Stack]:
        if not connected:  # a local file needs no AWS at all
            connected.append(_connect(args))
        return connected[0]

    with local_copy(
        args.source, lambda: stack_and_client()[0].client("s3"), lambda: stack_and_client()[1]
    ) as path:
        show(path, args.source, args.rows, args.csv)
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from s3worker.ops.query import run
    from s3worker.ops.show import render, write_csv

    aws, stack = _connect(args)
    answer = run(aws, stack.processed_bucket, stack.layout(args.prefix), args.sql, args.scan)
    if args.json:
        _print_json(answer.to_pylist())
    elif args.csv:
        write_csv(answer)
    else:
        print(render(answer, args.rows, "query"))
    return 0
