"""The worker booted for real: systemd as PID 1, the template's own user data, the real unit.

`make boot-test` (part of `make test`) builds the cached Debian rootfs and the x86_64 bundle,
then runs this module. One container boots for the whole module and the tests below run in
order against it, as an operator's day would: boot, work, kill -9, stop mid-job, restarts,
idle stop, and last a crash loop (which powers the machine off). What is real and what is a
stand-in is listed in tests/boot/machine.py and README "How it is tested".
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import CREDENTIALS, REGION

from demo.emulator import FakeImds, LambdaBridge, deploy_stack, enable_eventbridge, pool_instances
from tests.boot import machine, rootfs
from tests.boot.container import Container
from tests.boot.slow_s3 import Slow, Traffic, slow_s3_proxy

pytestmark = [pytest.mark.boot, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
UNIT_FILE = ROOT / "systemd/s3worker.service"
STACK = "s3worker-boot"
IMDS_ADDRESS = "169.254.169.254"
LOCK = Path("/run/lock/s3worker-boot-test.lock")  # one boot test per machine (IMDS address)
BOOT_TIMEOUT_SECONDS = 300
# Stack parameters: the template's minimums, so kill/redo and idle happen within minutes.
PARAMS = {"Architecture": "x86_64", "IdleSeconds": "60", "VisibilityTimeout": "30"}
DRAIN_SECONDS = 90  # S3WORKER_DRAIN_SECONDS as the product sets it
BAD_LOG_WORDS = ("Traceback", "SIGSYS", "EPERM", "Operation not permitted", "Bad system call")


def bundle() -> Path:
    found = sorted(
        (ROOT / "dist").glob("s3worker-x86_64-*.tar.gz"), key=lambda p: p.stat().st_mtime
    )
    assert found, "no x86_64 bundle: run `make package ARCH=x86_64` (make boot-test does)"
    return found[-1]


def wait_for(
    what: str, predicate: Callable[[], Any], timeout: float, boot: Boot | None = None
) -> Any:
    """Poll until `predicate` is truthy; past the deadline fail with the machine's state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        if boot and not boot.container.running():
            break
        time.sleep(0.5)
    context = boot.evidence() if boot else ""
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n{context}")


@dataclass
class Boot:
    container: Container
    traffic: Traffic
    outputs: dict[str, str]
    instance_id: str
    imds: FakeImds

    @property
    def tree(self) -> Path:
        return self.container.merged

    def sh(self, *command: str, timeout: float = 60, check: bool = True) -> str:
        return self.container.run(*command, timeout=timeout, check=check).stdout.strip()

    def unit(self, *props: str) -> dict[str, str]:
        out = self.sh("systemctl", "show", "s3worker.service", *(f"--property={p}" for p in props))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def daemon_log(self) -> list[dict[str, Any]]:
        """The daemon's JSON lines (structlog) from the journal, oldest first."""
        events = []
        for entry in self.container.journal("--unit=s3worker.service"):
            message = entry.get("MESSAGE")
            if isinstance(message, str) and message.startswith("{"):
                events.append(json.loads(message))
        return events

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.daemon_log() if e.get("event") == name]

    def messages(self, *filters: str) -> list[str]:
        return [str(e.get("MESSAGE", "")) for e in self.container.journal(*filters)]

    def manifest(self, key: str) -> str:
        return f"{self.outputs['ProcessedBucketName']}/{key}/_manifest.json"

    def has_manifest(self, key: str) -> bool:
        bucket, _, path = self.manifest(key).partition("/")
        try:
            boto3.client("s3").head_object(Bucket=bucket, Key=path)
        except boto3.client("s3").exceptions.ClientError:
            return False
        return True

    def upload(self, key: str, body: bytes) -> None:
        boto3.client("s3").put_object(Bucket=self.outputs["RawBucketName"], Key=key, Body=body)

    def evidence(self) -> str:
        lines = self.messages("--unit=s3worker.service", "--unit=user-data.service")[-60:]
        return (
            "journal (s3worker, user data):\n"
            + "\n".join(lines)
            + "\nconsole:\n"
            + self.container.tail()
        )


def sample(kind: str, rows: int, folder: Path) -> bytes:
    out = folder / f"{kind}-{rows}.csv"
    subprocess.run(
        [str(ROOT / ".venv/bin/s3worker"), "sample", kind, "--rows", str(rows), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


@pytest.fixture(scope="module")
def machine_lock() -> Iterator[None]:
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="module")
def imds_address(machine_lock: None) -> Iterator[str]:
    """169.254.169.254 on the host's loopback, where both the product and curl look."""
    shown = subprocess.run(
        ["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True, check=True
    )
    added = f"{IMDS_ADDRESS}/32" not in shown.stdout
    if added:
        subprocess.run(["ip", "addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo"], check=True)
    try:
        yield IMDS_ADDRESS
    finally:
        if added:
            subprocess.run(["ip", "addr", "del", f"{IMDS_ADDRESS}/32", "dev", "lo"], check=False)


@pytest.fixture(scope="module")
def stack(moto_server: str) -> Iterator[dict[str, str]]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in CREDENTIALS.items():
            mp.setenv(name, value)
        mp.setenv("AWS_ENDPOINT_URL", moto_server)
        with LambdaBridge(moto_server).installed():
            release = bundle()
            outputs = deploy_stack(STACK, {**PARAMS, "ArtifactKey": f"releases/{release.name}"})
            boto3.client("s3").upload_file(
                str(release), f"{STACK}-artifacts", f"releases/{release.name}"
            )
            enable_eventbridge(outputs["RawBucketName"])
            yield outputs


@pytest.fixture(scope="module")
def boot(
    stack: dict[str, str],
    moto_server: str,
    imds_address: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Boot]:
    canary = [
        i
        for i in pool_instances(stack["PoolTag"])
        if {"Key": "s3worker:canary", "Value": "true"} in i["Tags"]
    ]
    instance_id = canary[0]["InstanceId"]
    imds = FakeImds(instance_id, REGION, machine.instance_metadata(instance_id), (imds_address, 80))
    traffic = Traffic()
    workdir = rootfs.CACHE / "run"
    subprocess.run(["rm", "-rf", str(workdir)], check=True)  # a run killed before its clean-up
    container = Container(rootfs.ensure(), workdir, "s3worker-boot")
    with slow_s3_proxy(moto_server, traffic) as endpoint:
        try:
            container.mount()
            scratch = container.attach_scratch()
            user_data = machine.rendered_user_data(stack["LaunchTemplateId"])
            machine.provision(container.merged, user_data, endpoint, scratch)
            container.boot()
            result = Boot(container, traffic, stack, instance_id, imds)
            wait_for("the boot signalled", lambda: signals(result), BOOT_TIMEOUT_SECONDS, result)
            yield result
        finally:
            (rootfs.CACHE / "last-run.log").write_text(_journal_text(container))
            container.close()
            imds.close()
            container.remove()


def signals(boot: Boot) -> list[str]:
    """The --status of every `aws cloudformation signal-resource` the user data made."""
    return [
        c[c.index("--status") + 1]
        for c in machine.aws_calls(boot.tree)
        if c[:2] == ["cloudformation", "signal-resource"]
    ]


def _journal_text(container: Container) -> str:
    try:
        return "\n".join(
            f"{e.get('SYSLOG_IDENTIFIER', e.get('_COMM', '?'))}: {e.get('MESSAGE', '')}"
            for e in container.journal()
        )
    except Exception as exc:  # the record of a failed run must not hide the failure
        return f"journal unreadable: {exc!r}"


# -- the day, in order ------------------------------------------------------------------------


def test_boot_signals_success_and_the_daemon_is_ready_under_the_unmodified_unit(boot: Boot) -> None:
    assert signals(boot) == ["SUCCESS"], boot.evidence()
    installed = (boot.tree / "etc/systemd/system/s3worker.service").read_text()
    assert installed == UNIT_FILE.read_text()
    state = boot.unit("ActiveState", "SubState", "DropInPaths", "MainPID", "NRestarts")
    assert state["ActiveState"] == "active", state
    assert state["DropInPaths"] == "", state
    assert boot.events("ready"), boot.evidence()
    # The sandbox really applied to the running daemon (a setting systemd could not apply
    # fails the start with status 226/NAMESPACE and the like, so active means applied).
    status = boot.sh("cat", f"/proc/{state['MainPID']}/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"
    assert int(fields["CapEff"].strip(), 16) == 0
    assert boot.sh("stat", "--file-system", "--format=%T", "/var/lib/s3worker/") == "xfs", (
        boot.sh("cat", "/proc/self/mountinfo"),
        boot.sh("systemctl", "status", "var-lib-s3worker.mount", check=False),
    )


def test_files_uploaded_to_the_raw_bucket_are_processed(boot: Boot, tmp_path: Path) -> None:
    keys = {
        "sales/2026-11-30/stores.csv": sample("sales", 3000, tmp_path),
        "factory/line-1/readings.csv": sample("sensors", 5000, tmp_path),
        "clinic/2026-11-30/schedule.csv": sample("appointments", 2000, tmp_path),
    }
    for key, body in keys.items():
        boot.upload(key, body)
    wait_for("manifests", lambda: all(boot.has_manifest(k) for k in keys), 120, boot)


def test_kill_9_restarts_the_daemon_and_the_job_is_redone_once(boot: Boot, tmp_path: Path) -> None:
    key = "factory/line-2/killed.csv"
    body = sample("sensors", 20000, tmp_path)
    boot.traffic.slow[f"{boot.outputs['RawBucketName']}/{key}"] = Slow(len(body) // 120)
    before = boot.unit("MainPID", "NRestarts")
    boot.upload(key, body)
    wait_for(
        "the slow download",
        lambda: boot.traffic.slow_started[f"{boot.outputs['RawBucketName']}/{key}"],
        60,
        boot,
    )
    boot.sh("kill", "-9", before["MainPID"])
    wait_for(
        "Restart= brought it back",
        lambda: (
            (u := boot.unit("ActiveState", "MainPID", "NRestarts"))["ActiveState"] == "active"
            and u["MainPID"] not in ("0", before["MainPID"])
            and int(u["NRestarts"]) == int(before["NRestarts"]) + 1
        ),
        60,
        boot,
    )
    wait_for("the redone job's manifest", lambda: boot.has_manifest(key), 120, boot)
    assert boot.traffic.count("GET", f"{boot.outputs['RawBucketName']}/{key}") == 2
    assert boot.traffic.count("PUT", boot.manifest(key)) == 1


def test_stop_drains_within_the_bound_exits_0_and_the_rest_is_redone_once(
    boot: Boot, tmp_path: Path
) -> None:
    raw = boot.outputs["RawBucketName"]
    quick, slow = "sales/2026-12-01/quick.csv", "sales/2026-12-01/slow.csv"
    quick_body, slow_body = sample("sales", 20000, tmp_path), sample("sales", 20001, tmp_path)
    boot.traffic.slow[f"{raw}/{quick}"] = Slow(len(quick_body) // 40)  # done ~40 s after it starts
    boot.traffic.slow[f"{raw}/{slow}"] = Slow(len(slow_body) // 600)  # far past the drain bound
    boot.upload(quick, quick_body)
    boot.upload(slow, slow_body)
    wait_for(
        "both downloads",
        lambda: (
            boot.traffic.slow_started[f"{raw}/{quick}"]
            and boot.traffic.slow_started[f"{raw}/{slow}"]
        ),
        60,
        boot,
    )
    started = time.monotonic()
    boot.sh("systemctl", "stop", "s3worker.service", timeout=300)
    took = time.monotonic() - started
    state = boot.unit("ActiveState", "Result", "ExecMainStatus", "ExecMainCode", "TimeoutStopUSec")
    assert state["Result"] == "success", state
    assert state["ExecMainStatus"] == "0", state
    assert DRAIN_SECONDS - 5 < took < 120, (took, state)
    assert boot.has_manifest(quick)
    assert not boot.has_manifest(slow)
    assert boot.events("releasing_unfinished"), boot.evidence()
    boot.sh("systemctl", "start", "s3worker.service", timeout=150)
    wait_for("the released job redone", lambda: boot.has_manifest(slow), 120, boot)
    assert boot.traffic.count("GET", f"{raw}/{slow}") == 2
    assert boot.traffic.count("PUT", boot.manifest(slow)) == 1
    assert boot.traffic.count("PUT", boot.manifest(quick)) == 1


def test_manual_restarts_do_not_power_the_machine_off(boot: Boot) -> None:
    for _ in range(6):
        boot.sh("systemctl", "restart", "s3worker.service", timeout=150, check=False)
    state = boot.unit("ActiveState", "Result")
    assert boot.container.running(), boot.evidence()
    assert state["ActiveState"] == "active", (state, boot.evidence())


def test_watchdog_pings_reach_systemd(boot: Boot) -> None:
    # While the restarted daemon waits to go idle: a ping after READY moves the timestamp.
    first = int(boot.unit("WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
    wait_for(
        "a later WATCHDOG=1",
        lambda: int(boot.unit("WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]) > first,
        45,
        boot,
    )


def test_idle_stops_the_instance(boot: Boot) -> None:
    ec2 = boto3.client("ec2")

    def state() -> str:
        return str(
            ec2.describe_instances(InstanceIds=[boot.instance_id])["Reservations"][0]["Instances"][
                0
            ]["State"]["Name"]
        )

    wait_for("the instance stopped", lambda: state() == "stopped", 240, boot)
    assert boot.events("stopping_instance")[-1]["instance_id"] == boot.instance_id


def test_no_eperm_sigsys_or_traceback_in_the_journal(boot: Boot) -> None:
    lines = boot.messages("--unit=s3worker.service", "--unit=user-data.service")
    bad = [line for line in lines if any(word in line for word in BAD_LOG_WORDS)]
    assert not bad, bad


def test_a_crash_loop_powers_the_machine_off(boot: Boot) -> None:
    env = boot.tree / "etc/s3worker/s3worker.env"
    env.write_text(
        env.read_text().replace("S3WORKER_IDLE_ACTION=stop", "S3WORKER_IDLE_ACTION=broken")
    )
    boot.sh("systemctl", "start", "s3worker.service", check=False)
    wait_for("the power-off", lambda: not boot.container.running(), 180)
    assert any(
        "Start request repeated too quickly" in m or "start-limit-hit" in m
        for m in boot.messages("--unit=s3worker.service")
    ), boot.container.tail()
