"""The daemon as systemd runs it: a process that gets SIGTERM, SIGKILL and sd_notify."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from faults import FaultPlan, FaultProxy
from procs import Pipeline, runs
from s3worker import exits
from s3worker.regions import ENDPOINT_VARIABLE

TESTS = Path(__file__).parent
STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    """A daemon a failed test left running (and its worker processes) is killed, as systemd
    kills a unit's cgroup: it would poll a proxy that is gone for as long as the host runs."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start(
    pipeline: Pipeline, scratch: Path, runlog: Path, log: Path, **env: object
) -> subprocess.Popen[bytes]:
    full = {**os.environ, **pipeline.env(scratch, **env), "S3WORKER_TEST_RUNLOG": str(runlog)}
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "run_daemon.py")],
        env=full,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, like a systemd unit's cgroup
    )
    STARTED.append(proc)
    return proc


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def log_events(log: Path) -> list[dict[str, object]]:
    events = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(60)
    yield sock
    sock.close()


def receive_until(sock: socket.socket, wanted: str) -> list[str]:
    seen = []
    while True:
        message = sock.recv(4096).decode()
        seen.append(message)
        if wanted in message.splitlines():
            return seen


def test_sigterm_finishes_the_running_job_and_exits_zero(
    aws: str, name: str, scratch: Path, tmp_path: Path, notify_socket: socket.socket
):
    pipeline = Pipeline.create(name)
    gate = tmp_path / "gate"
    pipeline.upload("term/a.txt", f"echo gate {gate}\n".encode())
    runlog, log = tmp_path / "runlog", tmp_path / "daemon.log"
    # Given a daemon under systemd's notify protocol, with a job running
    proc = start(
        pipeline, scratch, runlog, log, S3WORKER_IDLE_ACTION="none",
        NOTIFY_SOCKET=notify_socket.getsockname(), WATCHDOG_USEC="500000",
    )  # fmt: skip
    assert any("READY=1" in m for m in receive_until(notify_socket, "READY=1"))
    receive_until(notify_socket, "WATCHDOG=1")
    wait_for(Path(f"{gate}.started"))
    # When systemd stops it, and the job finishes within the drain bound
    proc.send_signal(signal.SIGTERM)
    receive_until(notify_socket, "STOPPING=1")
    gate.touch()
    # Then it exits 0 with the work done and the message deleted
    assert proc.wait(timeout=60) == 0
    assert pipeline.manifest("term/a.txt") is not None
    assert pipeline.depth() == 0
    assert runs(runlog) == ["term/a.txt"]
    # And one canonical log line tells the job's story, with the job's context bound
    (job,) = [e for e in log_events(log) if e["event"] == "job"]
    assert job["key"] == "term/a.txt"
    assert job["processor"] == "echo"
    assert job["outcome"] == "processed"
    assert job["size"] > 0
    assert job["duration_s"] >= 0
    assert job["message_id"]


def test_sigterm_past_the_drain_bound_releases_the_message(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    pipeline = Pipeline.create(name, visibility_timeout=300)
    gate = tmp_path / "gate"
    pipeline.upload("term/b.txt", f"echo gate {gate}\n".encode())
    runlog, log = tmp_path / "runlog", tmp_path / "daemon.log"
    # Given a job that will not finish within a 1-second drain bound
    proc = start(
        pipeline, scratch, runlog, log, S3WORKER_IDLE_ACTION="none", S3WORKER_DRAIN_SECONDS=1
    )
    wait_for(Path(f"{gate}.started"))
    # When the daemon is stopped
    proc.send_signal(signal.SIGTERM)
    # Then it exits 0 and hands the message back at once (not after the 300 s timeout)
    assert proc.wait(timeout=60) == 0
    assert pipeline.manifest("term/b.txt") is None
    assert "releasing_unfinished" in [e["event"] for e in log_events(log)]
    # And the next worker processes it: nothing was lost
    gate.touch()
    again = start(pipeline, scratch, runlog, log)
    assert again.wait(timeout=60) == 0
    assert pipeline.manifest("term/b.txt") is not None
    assert runs(runlog) == ["term/b.txt", "term/b.txt"]
    assert pipeline.depth() == 0


def test_sigkill_mid_job_is_redone_once(aws: str, name: str, scratch: Path, tmp_path: Path):
    pipeline = Pipeline.create(name, visibility_timeout=2)
    gate = tmp_path / "gate"
    pipeline.upload("kill/a.txt", f"echo gate {gate}\n".encode())
    runlog, log = tmp_path / "runlog", tmp_path / "daemon.log"
    # Given a daemon killed outright in the middle of a job (with its worker processes)
    proc = start(pipeline, scratch, runlog, log, S3WORKER_IDLE_ACTION="none")
    wait_for(Path(f"{gate}.started"))
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert any(scratch.iterdir()), "the killed job left its scratch directory behind"
    # When a new daemon starts (as systemd would restart it) and waits out the visibility timeout
    gate.touch()
    again = start(pipeline, scratch, runlog, log, S3WORKER_IDLE_SECONDS=8)
    assert again.wait(timeout=90) == 0
    # Then the file was processed again, exactly one manifest exists, and scratch was wiped
    assert runs(runlog) == ["kill/a.txt", "kill/a.txt"]
    assert pipeline.result_keys("/_manifest.json") == ["kill/a.txt/_manifest.json"]
    assert pipeline.depth() == 0
    ready = [e for e in log_events(log) if e["event"] == "ready"]
    assert ready[-1]["scratch_entries_wiped"] >= 1
    assert list(scratch.iterdir()) == []


class HeldSqs(FaultPlan):
    """No faults; while `held` is set, every SQS call waits at the proxy until it is cleared:
    the daemon's main loop blocks on its poll, as on a connection that never answers."""

    def __init__(self) -> None:
        super().__init__(rates={})
        self.held = threading.Event()
        self.released = threading.Event()
        self.waiting = threading.Event()  # a call is being held (set by the proxy's thread)

    def hold(self) -> None:
        self.released.clear()
        self.waiting.clear()
        self.held.set()

    def release(self) -> None:
        self.held.clear()
        self.released.set()

    def delay(self, service: str) -> float:
        if service == "sqs" and self.held.is_set():
            self.waiting.set()
            self.released.wait(60)
        return 0.0


def test_watchdog_pings_only_while_the_main_loop_turns(
    aws: str, name: str, scratch: Path, tmp_path: Path, notify_socket: socket.socket
):
    pipeline = Pipeline.create(name)
    plan = HeldSqs()
    with FaultProxy(aws, plan) as proxy:
        # Given a daemon under a 2 s watchdog, pinging while its loop polls the queue
        proc = start(
            pipeline, scratch, tmp_path / "runlog", tmp_path / "daemon.log",
            AWS_ENDPOINT_URL=proxy.url, S3WORKER_IDLE_ACTION="none",
            NOTIFY_SOCKET=notify_socket.getsockname(), WATCHDOG_USEC="2000000",
        )  # fmt: skip
        receive_until(notify_socket, "READY=1")
        receive_until(notify_socket, "WATCHDOG=1")
        # When its main loop stalls (its queue calls never answer): a call of its is held. A
        # poll that went out before the hold may still answer first (on a loaded machine, after
        # a stall was already reported), but the loop polls one call at a time: from then on
        # it stays blocked.
        plan.hold()
        assert plan.waiting.wait(30), "no queue call reached the proxy"
        drain(notify_socket)  # what was sent before: a stall while the intake was still closed
        # Then the pings stop: between two "stalled" reports no WATCHDOG=1 is sent
        until_stalled(notify_socket)
        assert "WATCHDOG=1" not in until_stalled(notify_socket)
        # And once the loop moves again, so do the pings
        plan.release()
        receive_until(notify_socket, "WATCHDOG=1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def drain(sock: socket.socket) -> None:
    """Drop the notifications already received."""
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        while sock.recv(4096):
            pass
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(timeout)


def until_stalled(sock: socket.socket) -> list[str]:
    """The notifications up to and including the next that reports a stalled main loop."""
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while not any("main loop stalled" in line for line in lines):
        assert time.monotonic() < deadline, f"no stalled report; seen {lines[-5:]}"
        lines += sock.recv(4096).decode().splitlines()
    return lines


def test_a_second_signal_cuts_the_drain_short_and_releases(
    aws: str, name: str, scratch: Path, tmp_path: Path, notify_socket: socket.socket
):
    pipeline = Pipeline.create(name, visibility_timeout=300)
    gate = tmp_path / "gate"
    pipeline.upload("term/c.txt", f"echo gate {gate}\n".encode())
    log = tmp_path / "daemon.log"
    # Given a daemon draining a job that will not finish (the unit's 90 s drain bound)
    proc = start(
        pipeline, scratch, tmp_path / "runlog", log, S3WORKER_IDLE_ACTION="none",
        S3WORKER_DRAIN_SECONDS=90, NOTIFY_SOCKET=notify_socket.getsockname(),
    )  # fmt: skip
    wait_for(Path(f"{gate}.started"))
    proc.send_signal(signal.SIGTERM)
    receive_until(notify_socket, "STOPPING=1")
    # When a second signal comes
    proc.send_signal(signal.SIGINT)
    # Then the daemon exits at once, non-zero, without the job's results
    assert proc.wait(timeout=30) == exits.INTERRUPTED
    assert pipeline.manifest("term/c.txt") is None
    events = [e["event"] for e in log_events(log)]
    assert "exit_forced" in events
    assert "releasing_unfinished" in events
    # And the message is back on the queue now, not after its 300 s visibility timeout
    resp = boto3.client("sqs").receive_message(QueueUrl=pipeline.queue_url, WaitTimeSeconds=5)
    assert len(resp.get("Messages", [])) == 1


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"S3WORKER_QUEUE_URL": ""}, "S3WORKER_QUEUE_URL"),
        ({"S3WORKER_OUTPUT_BUCKET": ""}, "S3WORKER_OUTPUT_BUCKET"),
        ({"S3WORKER_CONCURRENCY": "lots"}, "S3WORKER_CONCURRENCY"),
        ({"S3WORKER_IDLE_ACTION": "reboot"}, "S3WORKER_IDLE_ACTION"),
        ({"S3WORKER_POLL_SECONDS": "30"}, "S3WORKER_POLL_SECONDS"),
        ({"S3WORKER_ROUTES": "sensors/"}, "S3WORKER_ROUTES"),
        ({"S3WORKER_ROUTES": "sensors/=no-such-processor"}, "S3WORKER_ROUTES"),
        ({"S3WORKER_INPUT_BUCKETS": ""}, "S3WORKER_INPUT_BUCKETS"),
        ({"S3WORKER_INPUT_BUCKETS": "raw,x"}, "S3WORKER_INPUT_BUCKETS"),
        ({"S3WORKER_JOB_MEMORY_MB": "100"}, "S3WORKER_JOB_MEMORY_MB"),
    ],
)
def test_bad_setting_exits_nonzero_naming_the_variable(
    tmp_path: Path, env: dict[str, str], variable: str
):
    # No region anywhere, and the instance metadata (the stand-in's endpoint) unreachable: a
    # broken setting is still named, not hidden behind "no AWS region".
    base = {
        ENDPOINT_VARIABLE: "http://127.0.0.1:9",
        "S3WORKER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
        "S3WORKER_OUTPUT_BUCKET": "b",
        "S3WORKER_INPUT_BUCKETS": "raw",
        "S3WORKER_SCRATCH_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "s3worker", "run"],
        env={**os.environ, **base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert variable in result.stderr
    assert "configuration error" in result.stderr
