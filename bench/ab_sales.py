"""The sales processor against another checkout's, with pandas' pyarrow read, alternated.

Each round runs, in fresh processes on the same file: the read, the baseline (the `daemon`
folder of another checkout, e.g. `git archive main daemon | tar -x -C /tmp/main`), then this
checkout. Prints one JSON line per run, then the medians and read / processor ratios.

    .venv/bin/python bench/ab_sales.py --baseline /tmp/main/daemon --file F.csv --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from bench_processors import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", required=True, help="another checkout's daemon folder")
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sides = {"read": ("floor", None), "baseline": ("process", args.baseline)}
    sides["this"] = ("process", None)
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="ab-sales-", dir=args.file.parent) as tmp:
        measure("floor", "sales", args.file, Path(tmp) / "warm")  # the page cache
        for _ in range(args.rounds):
            for side, (mode, code) in sides.items():
                out = Path(tmp) / side
                shutil.rmtree(out, ignore_errors=True)
                result = measure(mode, "sales", args.file, out, code)
                load = os.getloadavg()[0]
                runs[side].append(result)
                print(json.dumps({"side": side, **result, "load": load}), flush=True)
    median = {s: statistics.median(r["seconds"] for r in rs) for s, rs in runs.items()}
    summary = {f"{s}_s": round(v, 3) for s, v in median.items()}
    for side in ("baseline", "this"):
        summary[f"read_over_{side}"] = round(median["read"] / median[side], 3)
    summary["this_over_baseline"] = round(median["this"] / median["baseline"], 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
