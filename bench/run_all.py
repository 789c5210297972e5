"""`make bench`: every benchmark in one run, each figure next to its baseline from the same run.
Writes bench/results/bench.{json,md} and the README's "Benchmarks" section.

    .venv/bin/python bench/run_all.py            # the full set (large files: 0.5, 1, 2 GiB)
    .venv/bin/python bench/run_all.py --quick    # smoke: 200 small files, 0.05 GiB inputs
    .venv/bin/python bench/run_all.py --latency-only   # `make bench-latency`: the proxy run
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_latency
import bench_pipeline
import bench_start
import simulate
from common import RESULTS, ROOT, emulator, loadavg, machine

KINDS = ("appointments", "sensors", "sales", "applogs")
README = ROOT / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def large_files(sizes: list[float], folder: Path) -> list[dict[str, Any]]:
    """bench/bench_processors.py's `generate` then `bench` (its own file) per kind and size, each
    phase in a fresh small process: Linux carries ru_maxrss across fork and exec, so a measured
    child's peak RSS never reads below its parent's, and generating a file grows the parent.
    The floor left is the measuring parent's own (imports only: pandas/pyarrow/numpy)."""
    folder.mkdir(parents=True, exist_ok=True)
    args = [str(folder), ",".join(KINDS), ",".join(map(str, sizes))]
    loop = "for k in sys.argv[2].split(',') for s in sys.argv[3].split(',')"
    head = "import json, sys, pathlib; sys.path.insert(0, 'bench'); import bench_processors as b; "
    folder_arg = "pathlib.Path(sys.argv[1])"
    subprocess.run(
        [sys.executable, "-c", head + f"[b.generate(k, float(s), {folder_arg}) {loop}]", *args],
        cwd=ROOT, check=True,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", head + f"print(json.dumps([b.bench(k, float(s), {folder_arg}) "
         f"{loop}]))", *args],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True,
    )  # fmt: skip
    rows: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def latency_run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The daemon, the plain consumer and the bare-calls ceiling through the latency proxy."""
    latencies = [float(x) for x in args.latencies.split(",")]
    files = args.latency_files
    return bench_latency.run(latencies, files // 2, files // 3, folder)


def run_latency_only(args: argparse.Namespace) -> dict[str, Any]:
    """The proxy run alone, merged into the last full results (bench.json) when there are."""
    previous = RESULTS / "bench.json"
    out: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    with tempfile.TemporaryDirectory(prefix="s3worker-bench-") as tmp, emulator():
        out["latency_proxy"] = latency_run(args, Path(tmp))
    out["latency_proxy"]["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out["latency_proxy"]["load"] = loadavg()
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    out: dict[str, Any] = {
        "machine": machine(),
        "quick": args.quick,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["bench/run_all.py", *sys.argv[1:]]),
    }
    with tempfile.TemporaryDirectory(prefix="s3worker-bench-") as tmp:
        folder = Path(tmp)
        with emulator():
            out["small_files"] = bench_pipeline.small_files(args.files, 60, folder)
            out["latency"] = bench_pipeline.latency(args.latency_samples, folder)
            out["cold_start"] = bench_pipeline.cold_start(args.cold_repeats, folder)
            out["latency_proxy"] = latency_run(args, folder)
        out["start_logic"] = bench_start.run()
        out["simulation"] = simulate.run(simulate.Model())
        sizes = [float(s) for s in args.sizes.split(",")]
        out["large_files"] = large_files(sizes, folder / "large")
    out["seconds"] = round(time.time() - started)
    out["machine"]["load_at_end"] = loadavg()
    return out


def table(rows: list[list[Any]], head: list[str]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def _or(value: Any, instead: str) -> Any:
    return instead if value is None else value


def markdown(r: dict[str, Any]) -> str:
    m, sf, lat, cold = r["machine"], r["small_files"], r["latency"], r["cold_start"]
    d, p, c = sf["daemon"], sf["plain"], sf["ceiling"]
    when = r.get("when") or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = [
        f"Measured {when} on {m['cores']} cores "
        f"({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}; load average "
        f"{m['load_at_start'][0]} at start, {m['load_at_end'][0]} at end (the cores are shared "
        f"with other work: compare ratios, not absolutes){' — QUICK run' if r['quick'] else ''}. "
        "AWS is moto's server on the same machine. Run: "
        f"`{r.get('command', 'make bench')}` (took {r['seconds']} s; `make bench` runs the full "
        "set: 2,000 files, 0.5/1/2 GiB).",
        "",
        f"**Small files** ({sf['files']} sales CSVs of ~{sf['mean_file_bytes']} B, "
        f"{c['puts_per_file']} PUTs each):",
        "",
        *table(
            [
                [
                    "daemon (`s3worker run`, concurrency " + str(d["concurrency"]) + ")",
                    d["files_per_s"],
                    d["cpu_s_per_file"],
                    "1.00",
                ],
                [
                    "plain sync boto3 consumer (receive 1, get, process, put, delete)",
                    p["files_per_s"],
                    p["cpu_s_per_file"],
                    f"{sf['daemon_vs_plain']:.2f}x slower"
                    if sf["daemon_vs_plain"] >= 1
                    else f"{1 / sf['daemon_vs_plain']:.2f}x faster",
                ],
                [
                    f"emulator ceiling: bare client, {c['threads']} threads, calls only",
                    c["files_per_s"],
                    "-",
                    f"daemon reaches {sf['daemon_vs_ceiling']:.0%}",
                ],
            ],
            ["consumer", "files/s", "CPU s/file", "vs daemon"],
        ),
        "",
        f"**Latency**, warm worker, upload → manifest over {lat['samples']} files: "
        f"p50 {lat['p50_s']} s, p95 {lat['p95_s']} s (HEAD poll every "
        f"{lat['poll_granularity_s'] * 1000:.0f} ms).",
        "",
        f"**Cold start** to READY=1 over $NOTIFY_SOCKET: median {cold['ready_median_s']} s, max "
        f"{cold['ready_max_s']} s over {cold['repeats']} starts (target < 1 s: "
        f"{'met' if cold['within_1s'] else 'NOT met'}); `python -c 'import boto3'` takes "
        f"{cold['import_boto3_median_s']} s ({cold['ready_vs_import_boto3']}x).",
        "",
    ]
    bursts = r["start_logic"]["burst"]
    md += [
        "**Start logic**: EC2 calls for 1,000 Object Created events over 20 s on one warm "
        "container (a naive start-per-event Lambda: 2,000): "
        + ", ".join(
            f"max_workers {b['max_workers']}: {b['ec2_calls']} "
            f"({', '.join(f'{v} {k}' for k, v in b['ec2_calls_by_name'].items())})"
            for b in bursts
        )
        + f"; the pure `decide` runs {r['start_logic']['decide']['per_s']:,} decisions/s.",
        "",
    ]
    sim = r["simulation"]
    mo = sim["model"]
    md += [
        f"**Scale and cost on paper** (simulation; {mo['work_s']} s per file per slot, "
        f"{mo['concurrency']} slots per worker, start {mo['boot_s']} s, launch {mo['launch_s']} s, "
        f"stop {mo['stop_s']} s, idle {mo['idle_seconds']:g}+{mo['idle_confirm_seconds']:g} s; "
        f"${sim['prices']['worker_hour_usd']:.4f} per worker-hour, "
        f"${sim['prices']['volumes_per_worker_month_usd']} per kept worker's volumes a month):",
        "",
        *table(
            [
                [
                    x["scenario"],
                    x["pool"],
                    "yes" if x["keeps_up"] else "**no**",
                    x["latency_p50_s"],
                    x["latency_max_s"],
                    _or(x["drain_after_last_upload_s"], "never: falls behind"),
                    x["worker_hours"],
                    x["workers_used"],
                    f"${x['monthly_usd']}",
                ]
                for x in sim["rows"]
            ],
            [
                "scenario",
                "pool",
                "keeps up",
                "latency p50 s",
                "latency max s",
                "drain after last upload s",
                "worker-hours",
                "workers",
                "per month",
            ],
        ),
        "",
        '**Large files** (each processor vs `pandas.read_csv(engine="pyarrow")` on the same '
        "file; ratio = floor time / processor time):",
        "",
        *table(
            [
                [
                    x["kind"],
                    x["size_gib"],
                    x["process_mb_s"],
                    x["floor_mb_s"],
                    x["ratio_to_floor"],
                    x["process_peak_rss_mb"],
                    x["floor_peak_rss_mb"],
                ]
                for x in r["large_files"]
            ],
            [
                "kind",
                "GiB",
                "processor MB/s",
                "floor MB/s",
                "speed ratio",
                "processor peak RSS MB",
                "floor peak RSS MB",
            ],
        ),
    ]
    if "latency_proxy" in r:
        md += ["", *latency_markdown(r["latency_proxy"])]
    md += [
        "",
        "**Fault injection**: `make chaos` runs the real daemon behind a fault-injecting proxy "
        "(S3/SQS throttling, 5xx, SlowDown, resets, lost responses, latency), SIGKILLs and "
        "SIGTERMs it at random moments across 400 files plus a hostile corpus, restarts it, and "
        "checks that nothing is lost or duplicated (tests/chaos.py; the last run's figures are in "
        "bench/results/chaos.txt); `make test` runs a bounded version (tests/test_chaos.py).",
    ]
    return "\n".join(md) + "\n"


def latency_markdown(lp: dict[str, Any]) -> list[str]:
    rows = lp["small_files"]
    big = lp["large_object"]
    when = f" (measured {lp['when']}, load {lp['load'][0]})" if "when" in lp else ""
    first = rows[0]
    ceiling, daemon = first["ceiling"]["runs"][0], first["daemon"]["runs"][0]
    return [
        f"**Through a latency proxy**{when}: every S3/SQS call of the daemon, of the plain "
        "consumer and of two bare-calls ceilings (no processing, 16 threads) delayed by a fixed "
        "time (bench/latency_proxy.py, which also counts the calls); "
        f"{first['daemon']['files']} small sales files per run "
        f"({first['outputs_per_file']} outputs each), daemon and ceilings alternated twice "
        "(medians), the plain consumer once between them. The ceiling makes "
        f"{ceiling['calls_per_file_total']} calls per file (receive, HEAD, GET, a PUT "
        "per output and the manifest, delete); the daemon made "
        f"{daemon['calls_per_file_total']} in its first run at {first['latency_ms']:g} ms "
        f"({_s3_calls(daemon)}): its version checks, compare-and-swap manifest and "
        "table index entries. The same-calls ceiling makes the daemon's S3 calls of each kind "
        "per file, as counted in its run. CPU-bound limit = cores / the daemon's CPU s per "
        "file in the same run. `make bench-latency` runs this part alone.",
        "",
        *table(
            [
                [
                    f"{x['latency_ms']:g} ms",
                    x["daemon"]["files_per_s"],
                    x["plain"]["files_per_s"],
                    x["ceiling"]["files_per_s"],
                    x["same_calls_ceiling"]["files_per_s"],
                    x["cpu_bound_files_per_s"],
                    x["daemon_vs_ceiling"],
                    x["daemon_vs_same_calls_ceiling"],
                    x["daemon_vs_plain"],
                    x["daemon_vs_cpu_bound"],
                ]
                for x in rows
            ],
            [
                "latency per call",
                "daemon files/s",
                "plain files/s",
                "ceiling files/s",
                "same-calls ceiling files/s",
                "CPU-bound files/s",
                "daemon / ceiling",
                "daemon / same-calls ceiling",
                "daemon / plain",
                "daemon / CPU-bound",
            ],
        ),
        "",
        f"**Large object through a bandwidth cap** ({big['object_mib']} MiB, "
        f"{big['latency_ms']} ms per call, link {big['link_mib_s']:g} MiB/s, one stream at "
        f"most {big['stream_mib_s']:g} MiB/s): the daemon's download (parallel ranged GETs) "
        f"{big['download_mib_s']} MiB/s ({big['download_vs_cap']} of the cap), upload "
        f"(parallel multipart parts) {big['upload_mib_s']} MiB/s ({big['upload_vs_cap']} of the "
        f"cap; the parts alone {big['upload_parts_mib_s']} MiB/s, {big['upload_parts_vs_cap']} "
        f"of it, the rest is the emulator assembling the object in CompleteMultipartUpload, "
        f"{big['complete_s']} s); one plain GET stream {big['one_get_stream_mib_s']} MiB/s. The "
        "cap is set below what the emulator moves on this machine, so it is what is measured.",
    ]


def _s3_calls(run: dict[str, Any]) -> str:
    calls = {k.removeprefix("s3:"): v for k, v in run["calls_per_file"].items() if k[:3] == "s3:"}
    return ", ".join(f"{v:g} {k}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1]))


def update_readme(md: str) -> None:
    text = README.read_text()
    block = f"{BEGIN}\n{md}{END}"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Benchmarks\n\n" + block + "\n"
    README.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--files", type=int)
    parser.add_argument("--sizes", help="GiB per large file, comma-separated")
    parser.add_argument("--latency-samples", type=int)
    parser.add_argument("--cold-repeats", type=int, default=5)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--render", type=Path, help="only re-render this results JSON")
    parser.add_argument("--latency-only", action="store_true", help="only the proxy run")
    parser.add_argument("--latencies", help="ms per call through the proxy, comma-separated")
    parser.add_argument("--latency-files", type=int, help="small files per latency")
    args = parser.parse_args()
    args.latencies = args.latencies or ("30" if args.quick else "10,30,60")
    args.latency_files = args.latency_files or (60 if args.quick else 150)
    if args.render:
        md = markdown(json.loads(args.render.read_text()))
        (RESULTS / "bench.md").write_text("# Benchmarks\n\n" + md)
        if not args.no_readme:
            update_readme(md)
        sys.stdout.write(md)
        return
    args.files = args.files or (200 if args.quick else 2000)
    args.sizes = args.sizes or ("0.05" if args.quick else "0.5,1,2")
    args.latency_samples = args.latency_samples or (20 if args.quick else 50)
    result = run_latency_only(args) if args.latency_only else run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if "small_files" not in result:  # a proxy run with no full results to merge into
        sys.stdout.write("\n".join(latency_markdown(result["latency_proxy"])) + "\n")
        return
    (RESULTS / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    (RESULTS / "bench.md").write_text("# Benchmarks\n\n" + md)
    if not args.no_readme:
        update_readme(md)
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
