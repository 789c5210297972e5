"""`make demo`: deploy the stack into an embedded AWS, upload a batch, watch it processed.

Every step uses the product itself: the CloudFormation template, the start Lambda's code,
the daemon as systemd runs it, the processors. What the emulator cannot do is bridged in
`demo/emulator.py` and named in the output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from s3worker.contract import ERRORS_DIR, MANIFEST_NAME

from demo.emulator import (
    REGION,
    EmbeddedAws,
    FakeImds,
    LambdaBridge,
    daemon_env,
    deploy_stack,
    enable_eventbridge,
    pool_instances,
    worker_env_file,
)
from demo.report import (
    describe_actions,
    planted_text,
    print_keep_instructions,
    print_query,
    print_results,
    write_report,
)

STACK = "s3worker-demo"
WIDTH = 100  # columns of the demo's output
TETHER = Path(__file__).resolve().with_name("tether.py")
READY_TIMEOUT_SECONDS = 30
KEEP_RECONCILE_SECONDS = 10  # the schedule rule's period, shortened as the idle times are
# Shorter than the stack's defaults (600 s idle, 60 s confirmation, 20 s long polls) so the
# demo shows a worker stopping itself within seconds. The idle rule is checked after each
# empty poll, so the poll is shortened too.
DEMO_SETTINGS = {
    "S3WORKER_IDLE_SECONDS": "4",
    "S3WORKER_IDLE_CONFIRM_SECONDS": "2",
    "S3WORKER_POLL_SECONDS": "1",
}
SAMPLES = [  # (key in the raw bucket, kind, format, gzip, rows)
    ("clinic/2026-11-26/schedule.csv", "appointments", "csv", False, 3000),
    ("factory/line-3/readings.csv.gz", "sensors", "csv", True, 20000),
    ("sales/2026-11-25/stores.jsonl", "sales", "jsonl", False, 8000),
    ("logs/web-01/access.log", "applogs", "clf", False, 10000),
    ("logs/api/events.json", "applogs", "jsonl", False, 4000),
    ("clinic/2026-11-27/agenda.json", "appointments", "json", False, 1500),
]
CORRUPT_KEY = "factory/line-4/readings.csv.gz"  # truncated gzip: a permanent error, reported


_T0 = time.monotonic()


def step(n: int, text: str) -> None:
    text = f"[{n}/8] {text}  (+{time.monotonic() - _T0:.0f} s)"
    print(f"\n\033[1m{text}\033[0m" if sys.stdout.isatty() else f"\n{text}", flush=True)


def say(text: str, hang: int = 2) -> None:
    """One line of a step, wrapped at 100 columns; continuation lines hang under it."""
    lead = "      " + " " * (len(text) - len(text.lstrip()))
    print(textwrap.fill(text.strip(), WIDTH, initial_indent=lead,
                        subsequent_indent=lead + " " * hang,
                        break_long_words=False, break_on_hyphens=False))  # fmt: skip


@dataclass
class Daemon:
    """One worker instance 'booted': the daemon run as systemd runs it, with its own IMDS."""

    instance_id: str
    process: subprocess.Popen[bytes]
    imds: FakeImds
    log: Path
    ready_after: float | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            with_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with_group(self.process, signal.SIGKILL)
                self.process.wait()
        self.imds.close()


def with_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)  # the daemon and its worker processes, like a unit's cgroup


def boot(instance_id: str, env_file: dict[str, str], aws: EmbeddedAws, workdir: Path) -> Daemon:
    boots = len(list(workdir.glob(f"{instance_id}/boot-*")))
    home = workdir / instance_id / f"boot-{boots + 1}"
    scratch = home / "scratch"
    scratch.mkdir(parents=True)
    imds = FakeImds(instance_id)
    notify = home / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    env = daemon_env(
        {**env_file, **DEMO_SETTINGS, "S3WORKER_SCRATCH_DIR": str(scratch)},
        aws.endpoint,
        AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url,
        NOTIFY_SOCKET=str(notify),
    )
    log = home / "journal.jsonl"
    started = time.monotonic()
    # Through the tether: the daemon and its children die with the demo, even on kill -9.
    command = [sys.executable, "-m", "s3worker", "run"]
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and files)
        [sys.executable, str(TETHER), str(os.getpid()), *command],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    daemon = Daemon(instance_id, process, imds, log)
    try:
        daemon.ready_after = wait_ready(sock, process, started)
    except BaseException:
        daemon.stop()  # never leave a daemon behind that did not come up
        raise
    finally:
        sock.close()
    return daemon


def wait_ready(sock: socket.socket, process: subprocess.Popen[bytes], started: float) -> float:
    """Seconds until READY=1, as systemd waits for Type=notify; fails fast if it exits."""
    sock.settimeout(0.5)
    while time.monotonic() - started < READY_TIMEOUT_SECONDS:
        try:
            if b"READY=1" in sock.recv(4096):
                return time.monotonic() - started
        except TimeoutError:
            if process.poll() is not None:
                msg = f"the daemon exited ({process.returncode}) before READY=1"
                raise RuntimeError(msg) from None
    raise TimeoutError(f"no READY=1 within {READY_TIMEOUT_SECONDS} s")


def states(pool_tag: str) -> dict[str, str]:
    return {i["InstanceId"]: i["State"]["Name"] for i in pool_instances(pool_tag)}


def generate_samples(workdir: Path) -> tuple[list[tuple[str, Path]], float]:
    """The batch, and the revenue planted in its sales (what the closing query must find)."""
    from s3worker.samples import write_sample

    files: list[tuple[str, Path]] = []
    revenue = 0.0
    for key, kind, fmt, gz, rows in SAMPLES:
        path = workdir / "batch" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        truth = write_sample(kind, rows, path, fmt, gz, seed=len(files) + 1)
        say(f"{key:<32} {kind:<12} {truth.rows:>6,} rows")
        say(f"{'':<2} planted: {planted_text(truth)}", hang=9)
        files.append((key, path))
        revenue += sum(truth.planted.get("revenue", []))
    corrupt = workdir / "batch" / CORRUPT_KEY
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes((workdir / "batch" / SAMPLES[1][0]).read_bytes()[:5000])
    say(f"{CORRUPT_KEY:<32} {'sensors':<12} a truncated gzip, to show a failure")
    files.append((CORRUPT_KEY, corrupt))
    return files, revenue


def upload(files: list[tuple[str, Path]], bucket: str) -> None:
    """The operator's upload (`s3worker upload`): concurrent, with a progress bar."""
    from s3worker.ops.progress import Progress
    from s3worker.ops.upload import LocalFile, Uploader

    batch = [LocalFile(path, key, path.stat().st_size) for key, path in files]
    progress = Progress(len(batch), sum(f.size for f in batch), stream=sys.stdout)
    report = Uploader(boto3.client("s3"), bucket, progress).run(batch, concurrency=4)
    progress.close()
    say(report.summary())
    if report.failed:
        raise RuntimeError("the upload failed")


def wait_for_drain(daemons: list[Daemon], outputs: dict[str, str], expected: int) -> None:
    s3 = boto3.client("s3")
    bucket = outputs["ProcessedBucketName"]
    deadline = time.monotonic() + 120
    last = ""
    while any(d.process.poll() is None for d in daemons):
        if time.monotonic() > deadline:
            raise TimeoutError("the workers did not finish within two minutes")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        done = sum(k.endswith(f"/{MANIFEST_NAME}") for k in keys)
        failed = sum(k.startswith(f"{ERRORS_DIR}/") for k in keys)
        line = f"results: {done} of {expected} processed, {failed} failed; " + ", ".join(
            f"{d.instance_id} {'running' if d.process.poll() is None else 'exited'}"
            for d in daemons
        )
        if line != last:
            say(line)
            last = line
        time.sleep(0.5)


def run(workdir: Path, keep: bool = False) -> None:
    started = time.monotonic()
    with EmbeddedAws() as aws:
        bridge = LambdaBridge(aws.endpoint)
        with bridge.installed():
            step(1, f"Deploy deploy/cloudformation.yaml into the embedded AWS at {aws.endpoint}")
            outputs = deploy_stack(STACK, {"MaxWorkers": "2", "FilesPerWorker": "3"})
            enable_eventbridge(outputs["RawBucketName"])
            say(f"CREATE_COMPLETE: raw s3://{outputs['RawBucketName']}, "
                f"processed s3://{outputs['ProcessedBucketName']},")  # fmt: skip
            say("work queue + DLQ, EventBridge rule and schedule, start Lambda, launch template")
            say("emulator gaps bridged by the demo harness (demo/emulator.py):")
            for gap in GAPS:
                say(f"  - {gap}")
            env_file = worker_env_file(outputs["LaunchTemplateId"])
            pool_tag = outputs["PoolTag"]
            daemons: list[Daemon] = []
            try:
                canary_check(aws, env_file, pool_tag, workdir, daemons)
                step(3, "Generate a batch of sample files (planted anomalies, conflicts, bad rows)")
                files, planted_revenue = generate_samples(workdir)
                step(4, f"Upload the batch to s3://{outputs['RawBucketName']}/")
                upload(files, outputs["RawBucketName"])
                step(5, "Events flow: S3 → EventBridge → work queue, and → start Lambda")
                bridge.wait_idle()
                show_lambda(bridge, pool_tag)
                step(6, "Boot the started workers: the daemon as systemd runs it")
                for instance, state in states(pool_tag).items():
                    if state in ("pending", "running"):
                        daemons.append(boot(instance, env_file, aws, workdir))
                        d = daemons[-1]
                        say(
                            f"{instance}: READY=1 after {d.ready_after:.2f} s (pid {d.process.pid})"
                        )
                wait_for_drain(daemons[1:], outputs, len(files))
                step(7, "Idle: each worker stopped its own instance")
                for instance, state in states(pool_tag).items():
                    say(f"{instance}: {state}")
                reconcile(bridge, outputs)
                step(8, "Results")
                print_results(outputs, [key for key, _ in files], [d.log for d in daemons])
                print_query(STACK, REGION, planted_revenue)
                write_report(outputs, workdir)
                if keep:
                    keep_up(aws, bridge, outputs, env_file, workdir, daemons)
            finally:
                for daemon in daemons:
                    daemon.stop()
    print(f"\nDone in {time.monotonic() - started:.0f} s. Emulator stopped; no process left.")
    journals = f"{workdir}/<instance>/boot-N/journal.jsonl"
    print(f"Worker journals (JSON lines, as journald keeps them):\n  {journals}")


def canary_check(
    aws: EmbeddedAws, env_file: dict[str, str], pool_tag: str, workdir: Path, daemons: list[Daemon]
) -> None:
    step(2, "Boot check: the canary worker the stack launched runs the daemon, then idles")
    (canary,) = [i for i, s in states(pool_tag).items() if s == "running"]
    daemon = boot(canary, env_file, aws, workdir)
    daemons.append(daemon)
    say(f"{canary}: READY=1 after {daemon.ready_after:.2f} s (pid {daemon.process.pid}); "
        "cfn-signal reports success here")  # fmt: skip
    daemon.process.wait(timeout=60)
    say(f"{canary}: queue empty for {DEMO_SETTINGS['S3WORKER_IDLE_SECONDS']} s + "
        f"{DEMO_SETTINGS['S3WORKER_IDLE_CONFIRM_SECONDS']} s confirmation → "
        f"StopInstances on itself → {states(pool_tag)[canary]}")  # fmt: skip


def show_lambda(bridge: LambdaBridge, pool_tag: str) -> None:
    events = [i for i in bridge.invocations if i.event.get("detail-type") == "Object Created"]
    say(f"the rule delivered {len(events)} events to the start Lambda (run in-process)")
    for inv in events:
        if text := describe_actions(inv.result or {}) or inv.error:
            say(f"  {inv.event['detail']['object']['key']}: {text}")
    say("pool now: " + ", ".join(f"{i} {s}" for i, s in states(pool_tag).items()))


def run_reconciler(bridge: LambdaBridge, outputs: dict[str, str]) -> dict[str, object]:
    """The schedule rule's event, given to the start Lambda as EventBridge would."""
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    from moto.awslambda.models import lambda_backends

    function = lambda_backends["123456789012"]["us-east-1"].get_function(
        outputs["StartWorkerFunctionName"]
    )
    env = {k: str(v) for k, v in function.environment_vars.items()}
    return bridge.invoke(outputs["StartWorkerFunctionName"], env, event)


def reconcile(bridge: LambdaBridge, outputs: dict[str, str]) -> None:
    result = run_reconciler(bridge, outputs)
    say("reconciler (every 5 minutes on AWS): " + ", ".join(f"{k} {v}" for k, v in result.items()))


GAPS = [
    "S3's EventBridge switch (ignored by moto's CloudFormation) is set on the raw bucket",
    "EventBridge's Lambda target is run in-process: lambda/start_worker.py gets the rule's event",
    "the CloudFormation custom resource (pool cleanup) runs the same handler in-process",
    "each 'instance' is the daemon started as systemd would, with a local IMDSv2 for its id",
    "instance boot (user data) is skipped: the daemon uses the env file the user data writes, "
    "with shorter idle and poll times (4 s idle, 2 s confirmation, 1 s polls)",
]


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def keep_up(
    aws: EmbeddedAws,
    bridge: LambdaBridge,
    outputs: dict[str, str],
    env_file: dict[str, str],
    workdir: Path,
    daemons: list[Daemon],
) -> None:
    """`--keep`: the stack stays up; each instance the start Lambda starts is booted, until
    Ctrl-C. The operator CLI works against it from another terminal. The schedule rule's
    reconciler runs every KEEP_RECONCILE_SECONDS (every 5 minutes on AWS), as a late start
    deferred by the event path is the reconciler's to make."""
    pool_tag = outputs["PoolTag"]
    print_keep_instructions(aws.endpoint, STACK, [k for k, *_ in SAMPLES])
    seen, next_reconcile = len(bridge.invocations), time.monotonic() + KEEP_RECONCILE_SECONDS
    while True:
        seen = say_decisions(bridge, seen)
        if time.monotonic() >= next_reconcile:
            next_reconcile = time.monotonic() + KEEP_RECONCILE_SECONDS
            if text := describe_actions(run_reconciler(bridge, outputs)):
                say(f"reconciler: {text}")
        live = {d.instance_id for d in daemons if d.process.poll() is None}
        for instance, state in states(pool_tag).items():
            if state in ("pending", "running") and instance not in live:
                daemons.append(boot(instance, env_file, aws, workdir))
                pid = daemons[-1].process.pid
                say(f"{instance}: started by the start Lambda, READY=1 (pid {pid})")
        for d in daemons:
            if d.instance_id in live and d.process.poll() is not None:
                say(f"{d.instance_id}: idle, stopped its own instance")
        time.sleep(1)


def say_decisions(bridge: LambdaBridge, seen: int) -> int:
    """Print the start Lambda's answer to each object event after the first `seen`
    invocations; returns how many are now printed or passed over."""
    for inv in bridge.invocations[seen:]:
        if inv.event.get("detail-type") == "Object Created":
            if inv.result is None and inv.error is None:
                break  # still running: printed on a later turn
            key = inv.event.get("detail", {}).get("object", {}).get("key", "?")
            answer = inv.error or describe_actions(inv.result or {})
            say(f"{key}: start Lambda: {answer or 'no start needed'}")
        seen += 1
    return seen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the stack up after the tour and print the exports for the s3worker CLI",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # `| tee` sees each step
    # Ctrl-C, SIGTERM and a closed terminal (SIGHUP) end the demo cleanly, nothing left
    # behind; SIGINT explicitly, as a shell may have started us with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    workdir = Path(__file__).resolve().parent.parent / ".demo"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    try:
        run(workdir, keep=args.keep)
    except KeyboardInterrupt:
        if args.keep:
            print("\nstopped: workers and emulator; no process left")
            return 0
        print("\ninterrupted: workers and emulator stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
