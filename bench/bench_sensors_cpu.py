"""The sensors processor's CPU time and peak RSS against another version of it, alternating.

The machine is shared, so absolute times drift: each pair runs the baseline (`--against`,
another checkout's `daemon` folder) and this checkout one after the other, in fresh
processes, the order swapped every pair (A B, B A, ...); the report is the median of the
per-pair ratios, of CPU seconds (the child's user + system time, the parsing thread too) and
of wall seconds.
With `--read`, pandas' pyarrow read of the same file (`pd.read_csv(engine="pyarrow")`) runs
in each round too (the three rotated), and the report adds each arm's wall time over the
read's in the same round: issue 14 asks for at most 2.
Then the same processor on the larger sizes, for peak RSS from 0.5 to 2 GiB.

    .venv/bin/python bench/bench_sensors_cpu.py --against /tmp/sensors-old/daemon --pairs 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from bench_processors import generate, measure


def pairs(
    path: Path, against: str, this: str | None, n: int, folder: Path, read: bool = False
) -> dict[str, object]:
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "this": []}
    arms: list[tuple[str, str, str | None]] = [
        ("baseline", "process", against),
        ("this", "process", this),
    ]
    if read:
        runs["read"] = []
        arms.append(("read", "floor", None))
    for k in range(n):  # the order rotated every round: A B (R), B (R) A, ...
        for name, mode, code in arms[k % len(arms) :] + arms[: k % len(arms)]:
            runs[name].append(measure(mode, "sensors", path, folder / f"out-{name}", code))
            print(name, json.dumps(runs[name][-1]), flush=True)
    report: dict[str, object] = {"pairs": n}
    for name in ("baseline", "this") if read else ():
        over = [a["seconds"] / r["seconds"] for a, r in zip(runs[name], runs["read"], strict=True)]
        report[f"{name}_wall_over_read"] = [round(x, 3) for x in over]
        report[f"{name}_wall_over_read_median"] = round(statistics.median(over), 3)
    pairs_run = list(zip(runs["baseline"], runs["this"], strict=True))
    ratios = [t["cpu_seconds"] / b["cpu_seconds"] for b, t in pairs_run]
    # Wall time too: the detection and the reading work on two cores, which CPU time hides.
    walls = [t["seconds"] / b["seconds"] for b, t in pairs_run]
    return {
        **report,
        "cpu_s": {k: sorted(round(r["cpu_seconds"], 2) for r in v) for k, v in runs.items()},
        "peak_rss_mb": {k: sorted(round(r["peak_rss"] / 1e6) for r in v) for k, v in runs.items()},
        "cpu_ratio_median": round(statistics.median(ratios), 3),
        "cpu_ratios": [round(r, 3) for r in ratios],
        "wall_s": {k: sorted(round(r["seconds"], 2) for r in v) for k, v in runs.items()},
        "wall_ratio_median": round(statistics.median(walls), 3),
        "wall_ratios": [round(r, 3) for r in walls],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", required=True, help="the baseline's daemon folder")
    parser.add_argument("--this", help="the daemon folder measured (default: this checkout)")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--read", action="store_true", help="pandas' read in every round too")
    parser.add_argument("--sizes", default="0.5,2", help="GiB for the peak RSS runs (none: '')")
    parser.add_argument("--dir", help="where files go (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s3worker-bench-") as tmp:
        folder = Path(args.dir or tmp)
        sizes = [float(s) for s in args.sizes.split(",") if s]
        report: dict[str, object] = {
            "ab_0.5GiB": pairs(
                generate("sensors", 0.5, folder),
                args.against,
                args.this,
                args.pairs,
                folder,
                args.read,
            )
        }
        rss = {}
        for size in sizes:
            path = generate("sensors", size, folder)
            run = measure("process", "sensors", path, folder / "o", args.this)
            rss[f"{size:g}GiB"] = round(run["peak_rss"] / 1e6)
        report["peak_rss_mb"] = rss
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
