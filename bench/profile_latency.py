"""Where the time goes while the daemon drains small files through the latency proxy: the
emulator's (moto's) GIL time per call kind, and the daemon's main-process CPU per call.

    .venv/bin/pip install py-spy
    .venv/bin/python bench/profile_latency.py [--latency-ms 30] [--files 75]

One daemon run (as bench_latency.py's) with py-spy recording the moto server (`--gil`: the
thread that holds its one GIL, what bounds it) and the daemon's main process. A moto sample is
put down to the handler its stack passes through (the S3 key/bucket or SQS action); what no
handler frame shows is the HTTP server and moto's dispatch, shared by every call.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench_latency import counted, latency_proxy
from bench_pipeline import enqueue, make_corpus, new_queue, run_daemon, upload_corpus
from common import BIN, emulator
from procs import Pipeline

RATE = 200  # py-spy samples per second
# A sample's kind: the first of these frames (function name) its stack passes through.
HANDLERS = {
    "_key_response_put": "s3:PUT",
    "_key_response_get": "s3:GET",
    "_key_response_head": "s3:HEAD",
    "_key_response_delete": "s3:DELETE",
    "_bucket_response_post": "s3:POST",
    "receive_message": "sqs:ReceiveMessage",
    "delete_message_batch": "sqs:DeleteMessageBatch",
    "change_message_visibility_batch": "sqs:ChangeMessageVisibilityBatch",
    "get_queue_attributes": "sqs:GetQueueAttributes",
}
FRAME = re.compile(r"([A-Za-z_][\w]*) \(([^)]*)\)")


def children(parent: int, needle: str) -> list[int]:
    """Pids whose parent is `parent` and whose command line holds `needle`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if ppid == parent and needle in cmd:
            found.append(int(entry.name))
    return found


def spy(pid: int, out: Path, gil: bool) -> subprocess.Popen[bytes]:
    argv = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", str(RATE),
            "--format", "raw", "--output", str(out), "--nonblocking"]  # fmt: skip
    return subprocess.Popen(argv + (["--gil"] if gil else []), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def spy_daemon(out: Path, cpu_seen: list[float]) -> None:
    """py-spy on the daemon's main process once it is up, until it exits; its CPU seconds."""
    while not (found := children(os.getpid(), "s3worker")):
        time.sleep(0.05)
    (pid,) = found
    proc = spy(pid, out, gil=False)
    while proc.poll() is None:
        try:
            cpu_seen.append(cpu_seconds(pid))
        except OSError:
            break
        time.sleep(0.1)
    proc.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hottest(raw: Path, top: int = 30) -> dict[str, float]:
    """Seconds per frame, counted once per stack it appears in (inclusive), hottest first."""
    seen: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        names = {f"{fn} ({where.split('/site-packages/')[-1].split(':')[0]})"
                 for fn, where in FRAME.findall(stack)}  # fmt: skip
        for name in names:
            seen[name] += int(count)
    return {k: round(v / RATE, 2) for k, v in seen.most_common(top)}


def by_kind(raw: Path) -> tuple[Counter[str], Counter[str]]:
    """Samples per call kind, and the hottest leaf frames of all (collapsed stacks)."""
    kinds: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = FRAME.findall(stack)
        kind = next((HANDLERS[f] for f, _ in frames if f in HANDLERS), "shared (http, dispatch)")
        kinds[kind] += int(count)
        if frames:
            fn, where = frames[-1]
            leaves[f"{fn} ({where.split('/site-packages/')[-1]})"] += int(count)
    return kinds, leaves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=30)
    parser.add_argument("--files", type=int, default=75)
    parser.add_argument("--raw", type=Path, help="keep moto's collapsed stacks here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s3worker-prof-") as tmp, emulator() as upstream:
        folder = Path(tmp)
        (moto,) = children(os.getpid(), "moto_server")
        pipe = Pipeline.create(f"prof-{uuid.uuid4().hex[:8]}", visibility_timeout=60)
        events = upload_corpus(pipe, make_corpus(folder, 60), args.files)
        cpu_seen: list[float] = [0.0]
        with latency_proxy(upstream, args.latency_ms) as url:
            queue = new_queue(f"{pipe.raw}-d")
            enqueue(queue, events)
            moto_raw = args.raw or folder / "moto.txt"
            moto_spy = spy(moto, moto_raw, gil=True)
            (folder / "d").mkdir()
            daemon_raw = args.raw.with_suffix(".daemon.txt") if args.raw else folder / "d.txt"
            watcher = threading.Thread(target=spy_daemon, args=(daemon_raw, cpu_seen), daemon=True)
            watcher.start()
            run = counted(url, args.files, lambda: run_daemon(
                pipe, queue, pipe.processed, args.files, folder / "d"))  # fmt: skip
            moto_spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            moto_spy.wait(timeout=60)
            watcher.join(timeout=60)
        result = report(run, moto_raw, args.files)
        calls = run["calls_per_file_total"] * args.files
        result["daemon_main_cpu_ms_per_call"] = round(1000 * cpu_seen[-1] / calls, 2)
        result["daemon_main_cpu_s_per_file"] = round(cpu_seen[-1] / args.files, 4)
        result["daemon_main_hottest"] = hottest(daemon_raw)
        print(json.dumps(result, indent=2))


def report(run: dict[str, Any], moto_raw: Path, files: int) -> dict[str, Any]:
    kinds, leaves = by_kind(moto_raw)
    calls = {k: v * files for k, v in run["calls_per_file"].items()}
    ms_per_call = {k: round(1000 * kinds[k] / RATE / calls[k], 2) for k in kinds if calls.get(k)}
    total = sum(kinds.values()) / RATE
    return {
        "daemon": {k: v for k, v in run.items() if k != "note"},
        "moto_gil_s": round(total, 2),
        "moto_gil_share_of_run": round(total / run["seconds"], 2),
        "moto_gil_s_by_kind": {k: round(v / RATE, 2) for k, v in kinds.most_common()},
        "moto_gil_ms_per_call": ms_per_call,
        "moto_gil_ms_per_file": round(1000 * total / files, 1),
        "moto_hottest": {k: round(v / RATE, 2) for k, v in leaves.most_common(25)},
    }


if __name__ == "__main__":
    main()
