"""Each processor against the DuckDB query that produces the same outputs from the same file.

For every kind in bench/vs_duckdb/ (see its __init__ for the interface) and every size: the
kind writes its input (kept in --dir between runs), then the processor, DuckDB and pandas'
pyarrow CSV read run alternately in fresh processes. Writes bench/results/vs_duckdb.{json,md}
(a kind and size measured again replaces its old figures).

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

GIB = 1 << 30
RESULTS = Path(__file__).parent / "results"


def kinds() -> dict[str, ModuleType]:
    """KIND -> module, for every module of bench/vs_duckdb/."""
    found = {}
    for info in pkgutil.iter_modules(vs_duckdb.__path__):
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


def write_results(new: list[dict[str, Any]], command: str) -> None:
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
    }
    saved.write_text(json.dumps({"meta": meta, "runs": rows}, indent=2) + "\n")
    (RESULTS / "vs_duckdb.md").write_text("\n".join(markdown(meta, rows)) + "\n")


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"# Processors vs DuckDB ({meta['cpus']} CPUs, DuckDB {meta['duckdb']}, {meta['when']})",
        "",
        f"`{meta['command']}`; medians of alternating runs; ratio = processor s / DuckDB s "
        "(at or below 1.0: the processor is at or ahead); vs read = pandas' pyarrow CSV read "
        "s / processor s.",
        "",
        "| kind | GiB | MB | processor s | DuckDB s | ratio | processor peak RSS MB "
        "| DuckDB peak RSS MB | vs read | same outputs |",
        "|" + "---|" * 10,
    ]
    for r in rows:
        same = {True: "yes", False: "**no**", None: "-"}[r.get("same_outputs")]
        duckdb, ratio = r["duckdb_s"], r["ratio"]
        if "duckdb_unfinished_after_s" in r:  # stopped at --duckdb-timeout-factor
            duckdb, ratio = (
                f"unfinished after {r['duckdb_unfinished_after_s']}",
                f"< {r['ratio_below']}",
            )
        lines.append(
            f"| {r['kind']} | {r['size_gib']} | {r['file_mb']} | {r['processor_s']} "
            f"| {duckdb} | {ratio} | {r['peak_rss'] / 1e6:.0f} "
            f"| {_mb(r.get('duckdb_peak_rss'))} | {r.get('floor_ratio', '-')} | {same} |"
        )
    lines += ["", *flatness(rows)]
    return lines


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
        help="stop DuckDB once it has run this many times the processor's time in the same "
        "round, and report it unfinished (the ratio then below 1 / the factor)",
    )
    args = parser.parse_args()
    vs_duckdb.DUCKDB_TIMEOUT_FACTOR = args.duckdb_timeout_factor
    with tempfile.TemporaryDirectory(prefix="s3worker-vs-duckdb-") as tmp:
        folder = Path(args.dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        sizes = [float(s) for s in args.sizes.split(",")]
        rows = [
            bench(available[kind], size, folder, args.repeats)
            for kind in args.kinds.split(",")
            for size in sizes
        ]
    write_results(rows, " ".join(["bench/bench_vs_duckdb.py", *sys.argv[1:]]))
    print((RESULTS / "vs_duckdb.md").read_text())


if __name__ == "__main__":
    main()
