"""`make demo` end to end: it must keep working, finish, and leave nothing behind."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_and_cleans_up():
    # When the demo runs (in its own process group, so any straggler would be found)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3WORKER_"))}
    result = subprocess.run(
        [sys.executable, "-m", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        start_new_session=True,
    )
    out = result.stdout
    # Then it succeeded through every step
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for n in range(1, 9):
        assert f"[{n}/8]" in out
    # The Lambda started the stopped canary first, then launched a second worker
    lambda_step = out.split("[5/8]")[1].split("[6/8]")[0]
    assert re.search(r": started i-\w+", lambda_step)
    assert re.search(r"launched i-\w+", lambda_step)
    # Every sample was processed, the corrupt one reported, and every worker stopped itself
    assert "results: 6 of 7 processed, 1 failed" in out
    assert "FAILED\n      BadDataError: the gzip stream is corrupt or truncated" in out
    assert "double bookings" in out
    assert "anomalies (" in out
    idle = out.split("[7/8]")[1].split("[8/8]")[0]
    assert idle.count(": stopped") == 2
    assert "running" not in idle.split("reconciler")[0]
    # The output reads as a person reads it: 100 columns, no emulator noise, no Python dicts
    widest = max(out.splitlines(), key=len)
    assert len(widest) <= 100, widest
    assert "WARNING" not in out + result.stderr
    assert "{'" not in out
    assert "planted: 8 professional double bookings, 7 patient double bookings" in out
    # And it wrote the results report (`s3worker report`), charts of the six processed inputs
    assert "report: .demo/report.html (" in out
    assert "charts of 6 inputs; opens offline)" in out
    assert (ROOT / ".demo/report.html").read_text().count('class="plotly-graph-div"') > 6
    # And none of the daemons it started (nor their worker processes' group) is left running
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", out)]
    assert len(pids) == 3  # the canary's check, then two workers
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def test_a_worker_that_dies_before_ready_fails_fast_and_is_not_left_behind(tmp_path: Path):
    from types import SimpleNamespace

    from demo.__main__ import boot

    # Given an env file without the queue: the daemon exits at once with a config error
    aws = SimpleNamespace(endpoint="http://127.0.0.1:9")
    env_file = {"S3WORKER_OUTPUT_BUCKET": "b", "S3WORKER_QUEUE_URL": ""}
    # When the demo boots it, Then it says so instead of waiting, and no process remains
    with pytest.raises(RuntimeError, match=r"exited \(2\) before READY=1"):
        boot("i-dead", env_file, aws, tmp_path)  # type: ignore[arg-type]
    journal = next(tmp_path.glob("i-dead/boot-*/journal.jsonl")).read_text()
    assert "S3WORKER_QUEUE_URL" in journal


def demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3WORKER_"))}


class Demo:
    """`python -m demo ARGS` in the background, its output read line by line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "demo", *args],
            cwd=ROOT, env=demo_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._output: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._output.put(line)
        self._output.put("")  # the end of its output

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match[str]:
        """The first line matching `pattern`; fails with the demo's last lines otherwise."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._output.get(timeout=left)
            except queue.Empty:
                break
            assert line, "the demo ended early:\n" + "".join(self.lines[-40:])
            self.lines.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n" + "".join(self.lines[-40:]))

    def rest(self, timeout: float) -> str:
        """What the demo prints until it ends."""
        self.process.wait(timeout=timeout)
        lines = []
        while (line := self._output.get(timeout=timeout)) != "":
            lines.append(line)
        self.lines.extend(lines)
        return "".join(lines)

    def pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"\(pid (\d+)\)", "".join(self.lines))]


def gone_within(pids: list[int], seconds: float) -> bool:
    """True when no process is left in any of these process groups (the daemons' sessions)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                os.killpg(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_keep_leaves_the_stack_up_for_the_operator_cli(tmp_path: Path):
    demo = Demo("--keep")
    try:
        exports = demo.wait_for(r"^  export (AWS_ENDPOINT_URL=.*)$").group(1)
        env = {**demo_env(), **dict(pair.split("=", 1) for pair in exports.split())}
        cli = [sys.executable, "-m", "s3worker"]

        def s3worker(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*cli, *argv], env=env, capture_output=True, text=True,
                                  timeout=120, check=False)  # fmt: skip

        # When the operator runs the printed commands against the kept stack
        status = s3worker("status")
        done = s3worker("results", "clinic/2026-11-26/schedule.csv")
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("stack s3worker-demo (us-east-1)")
        assert done.returncode == 0
        # And uploads a new file: the start Lambda starts a worker, which the demo boots
        new = tmp_path / "late.csv"
        assert s3worker("sample", "sales", "--rows", "200", "--out", str(new)).returncode == 0
        assert s3worker("upload", str(new), "--prefix", "late/").returncode == 0
        demo.wait_for(r"started by the start Lambda, READY=1")
        deadline = time.monotonic() + 120
        while (late := s3worker("results", "late/late.csv")).returncode == 3:
            assert time.monotonic() < deadline, late.stdout
            time.sleep(1)
        assert late.returncode == 0
        assert "processed by sales" in late.stdout
    finally:
        demo.process.send_signal(signal.SIGINT)  # Ctrl-C ends it
        rest = demo.rest(timeout=120)
    assert demo.process.returncode == 0
    assert "stopped: workers and emulator; no process left" in rest
    assert gone_within(demo.pids(), 10)


@pytest.mark.slow
def test_kill_9_of_the_demo_leaves_no_daemon_behind():
    # Given the demo with its canary daemon up
    demo = Demo()
    demo.wait_for(r"READY=1 after .* \(pid \d+\)")
    assert demo.pids()
    # When the demo is killed without a chance to clean up
    demo.process.kill()
    demo.process.wait(timeout=30)
    # Then the daemon, its forkserver and its worker processes go too
    assert gone_within(demo.pids(), 15)


@pytest.mark.slow
def test_closing_the_terminal_stops_the_demo_and_its_daemons(tmp_path: Path):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed (make tools installs it)")
    log, session = tmp_path / "demo.log", f"demo-{os.getpid()}"
    command = f"cd {ROOT} && {sys.executable} -m demo > {log} 2>&1"
    env = demo_env()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, command], env=env, check=True)
    deadline = time.monotonic() + 180
    while not re.search(r"READY=1 after .* \(pid \d+\)", log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, log.read_text() if log.exists() else "no output"
        time.sleep(0.2)
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", log.read_text())]
    # When the terminal goes away (the demo gets SIGHUP)
    subprocess.run(["tmux", "kill-session", "-t", session], check=True)
    # Then no daemon of it is left
    assert gone_within(pids, 15)
