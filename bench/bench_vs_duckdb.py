"""Each processor against the DuckDB query that produces the same outputs from the same file.

For every kind in bench/vs_duckdb/ (see its __init__ for the interface) and every size: the
kind writes its input (kept in --dir between runs), then the processor, pandas' pyarrow CSV
read, DuckDB and the read again run in turn in fresh processes, each after the machine has
been settled the same way (bench/vs_duckdb/_settle.py says how and why). Writes
bench/results/vs_duckdb.{json,md} (a kind and size measured again replaces its old figures).

    .venv/bin/python bench/bench_vs_duckdb.py --kinds sales,appointments --sizes 0.5,1,2
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import vs_duckdb
from vs_duckdb import _settle

GIB = 1 << 30
RESULTS = Path(__file__).parent / "results"


def kinds() -> dict[str, ModuleType]:
    """KIND -> module, for every module of bench/vs_duckdb/."""
    found = {}
    for info in pkgutil.iter_modules(vs_duckdb.__path__):
        if info.name.startswith("_"):  # the package's helpers (_settle), not kinds
            continue
        module = importlib.import_module(f"vs_duckdb.{info.name}")
        found[module.KIND] = module
    return found


def bench(module: ModuleType, size: float, folder: Path, repeats: int) -> dict[str, Any]:
    path = folder / f"{module.KIND}-{size:g}GiB{getattr(module, 'SUFFIX', '.csv')}"
    if not path.exists():
        started = time.perf_counter()
        module.make_input(path, int(size * GIB))
        took = time.perf_counter() - started
        print(f"wrote {path.name}: {path.stat().st_size / 1e6:.0f} MB in {took:.0f} s", flush=True)
    row = {
        "kind": module.KIND,
        "size_gib": size,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        **module.measure(path, repeats=repeats),
    }
    print(json.dumps(row), flush=True)
    return row


def write_results(new: list[dict[str, Any]], command: str, load: list[float]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = RESULTS / "vs_duckdb.json"
    old = json.loads(saved.read_text())["runs"] if saved.exists() else []
    fresh = {(r["kind"], r["size_gib"]) for r in new}
    rows = [r for r in old if (r["kind"], r["size_gib"]) not in fresh] + new
    rows.sort(key=lambda r: (str(r["kind"]), float(r["size_gib"])))
    meta = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "duckdb": _duckdb_version(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command,
        "load_average": load,  # 1-minute, at the start and at the end of the run
    }
    for r in new:  # older rows keep the run that measured them
        r["measured"] = {k: meta[k] for k in ("when", "command", "load_average")}
    saved.write_text(json.dumps({"meta": meta, "runs": rows}, indent=2) + "\n")
    (RESULTS / "vs_duckdb.md").write_text("\n".join(markdown(meta, rows)) + "\n")


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"# Processors vs DuckDB ({meta['cpus']} CPUs, DuckDB {meta['duckdb']}, {meta['when']})",
        "",
        f"`{meta['command']}` (load average {_or_dash(meta.get('load_average'))}); "
        "medians of alternating runs, each after the same settling "
        "(bench/vs_duckdb/_settle.py); ratio = processor s / DuckDB s (at or below 1.0: the "
        "processor is at or ahead); CPU = user+sys of the timed part; vs read = pandas' pyarrow "
        "CSV read s / processor s, read / processor CPU the same in CPU seconds; read s = best "
        "/ median of the reads (two a round: after the processor, after DuckDB).",
        "",
        "| kind | GiB | MB | processor s | DuckDB s | ratio | processor peak RSS MB "
        "| DuckDB peak RSS MB | vs read | same outputs | processor CPU s | DuckDB CPU s "
        "| read s | read CPU s | read / processor CPU |",
        "|" + "---|" * 15,
    ]
    for r in rows:
        same = {True: "yes", False: "**no**", None: "-"}[r.get("same_outputs")]
        duckdb, ratio = r["duckdb_s"], r["ratio"]
        if duckdb is None:  # stopped by --duckdb-timeout-factor
            duckdb = f"unfinished after {r['duckdb_unfinished_after_s']}"
            ratio = f"< {r['ratio_below']}"
        read = f"{r['floor_best_s']} / {r['floor_s']}" if "floor_best_s" in r else "-"
        lines.append(
            f"| {r['kind']} | {r['size_gib']} | {r['file_mb']} | {r['processor_s']} "
            f"| {duckdb} | {ratio} | {r['peak_rss'] / 1e6:.0f} "
            f"| {_mb(r.get('duckdb_peak_rss'))} | {r.get('floor_ratio', '-')} | {same} "
            f"| {_or_dash(r.get('processor_cpu_s'))} | {_or_dash(r.get('duckdb_cpu_s'))} "
            f"| {read} | {_or_dash(r.get('floor_cpu_s'))} | {_or_dash(r.get('floor_cpu_ratio'))} |"
        )
    lines += ["", *flatness(rows), *order_check(rows)]
    return lines


def order_check(rows: list[dict[str, Any]]) -> list[str]:
    """Per row: the read's median after the processor and after DuckDB, seconds and CPU."""
    out = []
    for r in rows:
        after = r.get("floor_after", {})
        if {"processor", "duckdb"} <= set(after):
            p, d = after["processor"], after["duckdb"]
            user, system = r.get("user_s", {}), r.get("sys_s", {})
            out.append(
                f"- {r['kind']} {r['size_gib']} GiB: read after the processor {p['s']} s "
                f"({p['cpu_s']} CPU s), after DuckDB {d['s']} s ({d['cpu_s']} CPU s); "
                f"user / sys CPU s: processor {user.get('processor')} / {system.get('processor')}, "
                f"read {user.get('floor')} / {system.get('floor')}, DuckDB {user.get('duckdb')} / "
                f"{system.get('duckdb')}; read / processor in user CPU {r.get('floor_user_ratio')}"
                + _measured(r)
            )
    return ["", *out] if out else []


def flatness(rows: list[dict[str, Any]]) -> list[str]:
    """Per kind: peak RSS at the largest size over peak RSS at the smallest."""
    out = []
    for kind in sorted({r["kind"] for r in rows}):
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["size_gib"])
        if len(mine) > 1:
            lo, hi = mine[0], mine[-1]
            growth = hi["peak_rss"] / lo["peak_rss"]
            out.append(
                f"- {kind}: peak RSS {lo['peak_rss'] / 1e6:.0f} MB at {lo['size_gib']} GiB, "
                f"{hi['peak_rss'] / 1e6:.0f} MB at {hi['size_gib']} GiB ({growth:.2f}x)"
            )
    return out


def _mb(value: Any) -> str:
    return f"{value / 1e6:.0f}" if isinstance(value, (int, float)) else "-"


def _measured(row: dict[str, Any]) -> str:
    m = row.get("measured")
    return f" (`{m['command']}`, {m['when']}, load average {m['load_average']})" if m else ""


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _duckdb_version() -> str:
    import duckdb

    return str(duckdb.__version__)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    available = kinds()
    parser.add_argument("--kinds", default=",".join(sorted(available)))
    parser.add_argument("--sizes", default="0.5,1,2", help="GiB, comma-separated")
    parser.add_argument("--repeats", type=int, default=vs_duckdb.REPEATS)
    parser.add_argument("--dir", help="where inputs go and stay (default: a temporary one)")
    parser.add_argument(
        "--duckdb-timeout-factor",
        type=float,
        help="stop a DuckDB run after F x the processor's time: its ratio is then below 1/F",
    )
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="only read the input before each run (to see what the settling changes)",
    )
    args = parser.parse_args()
    vs_duckdb.TIMEOUT_FACTOR = args.duckdb_timeout_factor
    _settle.ENABLED = not args.no_settle
    load = [round(os.getloadavg()[0], 2)]
    with tempfile.TemporaryDirectory(prefix="s3worker-vs-duckdb-") as tmp:
        folder = Path(args.dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        sizes = [float(s) for s in args.sizes.split(",")]
        rows = [
            bench(available[kind], size, folder, args.repeats)
            for kind in args.kinds.split(",")
            for size in sizes
        ]
    load.append(round(os.getloadavg()[0], 2))
    write_results(rows, " ".join(["bench/bench_vs_duckdb.py", *sys.argv[1:]]), load)
    print((RESULTS / "vs_duckdb.md").read_text())


if __name__ == "__main__":
    main()
