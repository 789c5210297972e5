"""Fault injection end to end: the real daemon (`python -m s3worker run`, built-in processors)
behind the fault proxy, killed with SIGKILL or SIGTERM at random moments and restarted as
systemd would, fed good files and a corpus of hostile inputs. At the end the invariants are
checked and the figures printed. `make chaos` runs it long; tests/test_chaos.py runs it bounded.

    .venv/bin/python tests/chaos.py --files 400 --kills 30
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from faults import FaultPlan, FaultProxy
from procs import Pipeline, eventbridge_event
from s3worker.contract import TABLES_DIR
from s3worker.tables import NEWLINES

TESTS = Path(__file__).parent
HUGE_LINE = 10 * 1024 * 1024
# Memory bombs are routed to a real processor (their first line is longer than the sniffing
# sample) and each job's address space is bounded, so a bomb fails alone.
ROUTES = "bombs/=sales"
JOB_MEMORY_MB = 2560
OVERWRITES = 12  # good files uploaded again, with other content, while the daemon runs


# --- the corpus -----------------------------------------------------------------------------


def good_files(n: int, folder: Path) -> dict[str, bytes]:
    """Small real inputs for the built-in processors, several kinds, one gzipped."""
    from s3worker.samples import write_sample

    files: dict[str, bytes] = {}
    kinds = ["sales", "sensors", "appointments", "applogs"]
    for i in range(n):
        kind = kinds[i % len(kinds)]
        path = folder / f"{kind}-{i}.csv"
        if not path.exists():
            write_sample(kind, 40, path, seed=i % 7)
        body = path.read_bytes()
        key = f"good/{kind}/{i:04d}.csv"
        if i % 10 == 9:
            body, key = gzip.compress(body), key + ".gz"
        files[key] = body
    return files


def hostile_files() -> dict[str, bytes]:
    """Objects that must end in a manifest or an error report, never in a crash or a stray file."""
    rng = random.Random(3)
    header = b"date,store,ticket_id,product,quantity,unit_price,revenue\n"
    row = b"2024-01-01,S1,T1,SKU-1,1,2.5,2.5\n"
    sales = header + row * 20
    return {
        "../../../../escape/passwd.csv": sales,
        "/leading/slash.csv": sales,
        "dots/../../up.csv": sales,
        "long-component/" + "c" * 300 + ".csv": sales,
        "k" * 1000 + ".csv": sales,  # S3 allows it; its results would not fit a key
        "corrupt.csv.gz": b"\x1f\x8b\x08\x00" + rng.randbytes(4096),
        "binary.bin": rng.randbytes(8192),
        "huge-line.csv": header + b"2024-01-01,S1,T1," + b"x" * HUGE_LINE + b",1,1,1\n" + row,
        "utf16.csv": sales.decode().encode("utf-16"),
        "latin1.csv": (header.decode() + "2024-01-01,Café Zürich,T1,Crème,1,2.5,2.5\n").encode(
            "latin-1"
        ),
        "nul-bytes.csv": header + b"\x00" * 1000 + row,
        "spaces and+plus%20.csv": sales,
        "unicode/ñandú-日本.csv": sales,
        "bombs/million-columns.csv": header.rstrip(b"\n")
        + b"".join(b",c%d" % i for i in range(1_000_000))
        + b"\n"
        + row,
        "bombs/huge-line.csv": header + b"2024-01-01,S1," + b"x" * HUGE_LINE + b",P,1,1,1\n",
    }


def hostile_bodies(raw_bucket: str) -> dict[str, str]:
    """Message bodies that are not (or not only) object creations: name -> body."""
    deleted = eventbridge_event(raw_bucket, "gone.csv", 10, "e")
    deleted["detail-type"] = "Object Deleted"
    no_object = eventbridge_event(raw_bucket, "x.csv", 10, "e")
    del no_object["detail"]["object"]
    return {
        "not-json": "this is not json {",
        "json-array": "[1, 2, 3]",
        "unknown-shape": json.dumps({"hello": "world"}),
        "eventbridge-without-object": json.dumps(no_object),
        "s3-test-event": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
        "object-deleted": json.dumps(deleted),
        "object-that-never-existed": json.dumps(
            eventbridge_event(raw_bucket, "never/uploaded.csv", 10, "0" * 32)
        ),
    }


# Bodies that must go to the DLQ with an event error report; the others are acknowledged.
BAD_EVENTS = {"not-json", "json-array", "unknown-shape", "eventbridge-without-object"}


# --- the run --------------------------------------------------------------------------------


@dataclass
class Figures:
    files: int = 0
    hostile_objects: int = 0
    hostile_bodies: int = 0
    empty_objects: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)
    starts: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    overwritten: int = 0
    manifests: int = 0
    error_reports: int = 0
    orphaned_outputs: int = 0
    index_entries: int = 0
    left_by_redriven: int = 0
    redriven_by_sqs: int = 0
    dlq_messages: int = 0
    dlq_repeats: int = 0
    redone_after_kill: int = 0
    lost: int = 0
    duplicated: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        faults = ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items())) or "none"
        return [
            f"files: {self.files} uploaded ({self.hostile_objects} hostile objects, "
            f"{self.empty_objects} empty) + {self.hostile_bodies} hostile message bodies",
            f"faults injected ({sum(self.faults.values())}): {faults}",
            f"kills: {sum(self.kills.values())} ({dict(self.kills)}); daemon starts: "
            f"{self.starts}; exits: {dict(self.exits)}",
            f"results: {self.manifests} manifests, {self.error_reports} error reports, "
            f"{self.redriven_by_sqs} redriven to the DLQ by SQS, {self.dlq_messages} DLQ messages "
            f"({self.dlq_repeats} repeats of a message already there: at-least-once)",
            f"overwritten while running: {self.overwritten} (each must end with one manifest "
            f"of its newest version); outputs no manifest lists: {self.orphaned_outputs} (and "
            f"{self.left_by_redriven} of inputs killed on their last receive, redriven by SQS)",
            f"processed on a redelivery (kill or released failure): {self.redone_after_kill}",
            f"outputs the table index names: {self.index_entries}",
            f"lost = {self.lost}",
            f"duplicated results = {self.duplicated}",
            f"violations: {self.violations or 'none'}",
            f"took {self.seconds:.0f} s",
        ]


class Chaos:
    def __init__(
        self, moto: str, root: Path, files: int, kills: int, seed: int, rates: float
    ) -> None:
        self.moto, self.root, self.n_files, self.n_kills = moto, root, files, kills
        self.rng = random.Random(seed)
        self.plan = FaultPlan(
            rates={"s3": rates, "sqs": rates},
            seed=seed,
            latency={"s3": (0.1, 0.2), "sqs": (0.1, 0.2)},
            extra={"s3": ["lost_response"], "sqs": ["lost_response"]},
        )
        self.sandbox = root / "sandbox"  # the daemon's whole writable world
        self.scratch = self.sandbox / "scratch"
        self.log = root / "daemon.log"
        self.figures = Figures()
        self.etags: dict[str, str] = {}  # key -> the ETag of its newest version

    def run(self, deadline_s: float) -> Figures:
        started = time.monotonic()
        pipe = Pipeline.create(f"chaos-{self.rng.randrange(16**8):08x}", visibility_timeout=6)
        objects = self.upload(pipe)
        bodies = hostile_bodies(pipe.raw)
        for body in bodies.values():
            pipe.send(body)
        self.figures.hostile_bodies = len(bodies)
        with FaultProxy(self.moto, self.plan) as proxy:
            self.drive(pipe, proxy.url, started + deadline_s, objects)
        self.figures.faults = dict(self.plan.injected)
        self.check(pipe, objects, bodies)
        self.figures.seconds = time.monotonic() - started
        return self.figures

    def upload(self, pipe: Pipeline) -> dict[str, bytes]:
        work = self.root / "corpus"
        work.mkdir(exist_ok=True)
        hostile = hostile_files()
        objects = {**good_files(self.n_files, work), **hostile, "empty.csv": b""}
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        events = {}
        for key, body in objects.items():
            resp = s3.put_object(Bucket=pipe.raw, Key=key, Body=body)
            self.etags[key] = resp["ETag"].strip('"')
            events[key] = json.dumps(
                eventbridge_event(
                    pipe.raw, key, len(body), resp["ETag"].strip('"'), resp.get("VersionId")
                )
            )
            sqs.send_message(QueueUrl=pipe.queue_url, MessageBody=events[key])
        # S3 sends duplicate events now and then: a few objects are announced twice.
        for key in self.rng.sample(sorted(objects), 5):
            sqs.send_message(QueueUrl=pipe.queue_url, MessageBody=events[key])
        self.figures.files = len(objects)
        self.figures.hostile_objects = len(hostile)
        self.figures.empty_objects = 1
        return objects

    def overwrite(self, pipe: Pipeline, objects: dict[str, bytes]) -> None:
        """New versions of some good files while their first versions are queued or running."""
        good = sorted(k for k in objects if k.startswith("good/") and not k.endswith(".gz"))
        for key in self.rng.sample(good, min(OVERWRITES, len(good))):
            body = objects[key] + objects[key].splitlines(keepends=True)[-1]  # one more row
            objects[key] = body
            self.etags[key] = pipe.upload(key, body)["detail"]["object"]["etag"]
            self.figures.overwritten += 1

    def start(self, pipe: Pipeline, endpoint: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            **pipe.env(
                self.scratch,
                S3WORKER_IDLE_SECONDS=2,
                S3WORKER_IDLE_CONFIRM_SECONDS=1,
                S3WORKER_DRAIN_SECONDS=3,
                S3WORKER_MAX_ATTEMPTS=4,
                S3WORKER_ROUTES=ROUTES,
                S3WORKER_JOB_MEMORY_MB=JOB_MEMORY_MB,
            ),
            "AWS_ENDPOINT_URL": endpoint,
            "TMPDIR": str(self.sandbox / "tmp"),
        }
        self.figures.starts += 1
        return subprocess.Popen(
            [sys.executable, "-m", "s3worker", "run"],
            env=env,
            cwd=self.sandbox / "cwd",
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group, like the unit's cgroup
        )

    def drive(
        self, pipe: Pipeline, endpoint: str, deadline: float, objects: dict[str, bytes]
    ) -> None:
        for d in ("tmp", "cwd"):
            (self.sandbox / d).mkdir(parents=True, exist_ok=True)
        kills_left = self.n_kills
        while time.monotonic() < deadline:
            proc = self.start(pipe, endpoint)
            if not self.figures.overwritten:
                self.overwrite(pipe, objects)
            if kills_left:
                try:
                    proc.wait(timeout=self.rng.uniform(0.5, 6.0))
                except subprocess.TimeoutExpired:
                    sig = self.rng.choice([signal.SIGKILL, signal.SIGTERM])
                    # The unit's KillMode=mixed: SIGTERM to the main process only; SIGKILL
                    # (a crash, `systemctl kill -s KILL`, an instance gone) to the whole group.
                    if sig is signal.SIGTERM:
                        proc.send_signal(sig)
                    else:
                        os.killpg(proc.pid, sig)
                    kills_left -= 1
                    self.figures.kills[sig.name] += 1
            code = self.wait(proc, deadline)
            with contextlib.suppress(ProcessLookupError):  # then SIGKILL whatever is left
                os.killpg(proc.pid, signal.SIGKILL)
            self.figures.exits[str(code)] += 1
            if code not in (0, -signal.SIGKILL):
                self.figures.violations.append(f"daemon exited {code}")
            if not kills_left and code == 0 and pipe.depth() == 0:
                return
            time.sleep(0.1)  # RestartSec
        self.figures.violations.append("deadline reached before the queue drained")

    def wait(self, proc: subprocess.Popen[bytes], deadline: float) -> int:
        try:
            return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            self.figures.violations.append("daemon still running at the deadline")
            return -signal.SIGKILL

    # -- invariants --

    def check(self, pipe: Pipeline, objects: dict[str, bytes], bodies: dict[str, str]) -> None:
        f = self.figures
        keys = set(pipe.result_keys())
        manifests = {
            k.removesuffix("/_manifest.json") for k in keys if k.endswith("_manifest.json")
        }
        dlq = pipe.dlq_bodies()
        f.dlq_messages = len(dlq)
        f.dlq_repeats = len(dlq) - len({d["body"] for d in dlq})
        dlq_keys = Counter(_object_key(d["body"]) for d in dlq)
        redriven = {d["body"] for d in dlq if "s3worker-error-report" not in d["attributes"]}
        for key, body in objects.items():
            has_manifest = key in manifests
            has_report = _report_key(pipe, key) in keys
            f.manifests += has_manifest
            f.error_reports += has_report
            if not body:
                if has_manifest or has_report:
                    f.violations.append(f"empty object {key!r} got a result")
                continue
            if has_manifest and has_report:
                f.duplicated += 1
                f.violations.append(f"{key!r} has a manifest and an error report")
            elif not (has_manifest or has_report):
                if any(_object_key(b) == key for b in redriven):
                    f.redriven_by_sqs += 1
                else:
                    f.lost += 1
                    f.violations.append(f"{key!r} has no manifest, no error report, no DLQ entry")
            if has_manifest and dlq_keys[key]:
                f.violations.append(f"{key!r} was processed but also sits in the DLQ")
            if has_manifest and (pipe.manifest(key) or {})["input"]["etag"] != self.etags[key]:
                f.violations.append(f"{key!r}: the manifest is not of its newest version")
        self.check_orphans(pipe, keys, {_object_key(b) for b in redriven} - {None})
        bad_event_reports = [k for k in keys if "/_events/" in k or k.startswith("_errors/_events")]
        if len(bad_event_reports) < len(BAD_EVENTS):
            f.violations.append(
                f"{len(bad_event_reports)} event error reports for {len(BAD_EVENTS)}"
            )
        for name in BAD_EVENTS:
            if bodies[name] not in {d["body"] for d in dlq}:
                f.lost += 1
                f.violations.append(f"bad event {name!r} is not in the DLQ")
        if pipe.depth() != 0:
            f.lost += pipe.depth()
            f.violations.append(f"{pipe.depth()} messages left in the work queue")
        self.check_sandbox()
        f.redone_after_kill = sum(
            1 for e in _log_events(self.log)
            if e.get("event") == "job" and e.get("outcome") == "processed"
            and int(e.get("receive_count", 1)) > 1
        )  # fmt: skip

    def check_orphans(self, pipe: Pipeline, keys: set[str], redriven: set[str | None]) -> None:
        """Every output is listed by a manifest: no superseded or killed run left any. An input
        whose last receive was killed (SQS redrove it) may have left some; the DLQ's redrive
        processes it again, under the same names."""
        listed: set[str] = set()
        for key in (k for k in keys if k.endswith("/_manifest.json")):
            listed |= {o["key"] for o in (pipe._json(key) or {}).get("outputs", [])}
        unlisted = [
            k for k in keys - listed
            if not k.endswith("/_manifest.json") and "_errors/" not in k
            and not k.startswith(f"{TABLES_DIR}/")
        ]  # fmt: skip
        left = [k for k in unlisted if any(k.startswith(f"{r}/") for r in redriven if r)]
        orphans = sorted(set(unlisted) - set(left))
        self.figures.orphaned_outputs = len(orphans)
        self.figures.left_by_redriven = len(left)
        if orphans:
            self.figures.violations.append(f"outputs no manifest lists: {orphans[:5]}")
        self.check_index(pipe, keys, listed, redriven)

    def check_index(
        self, pipe: Pipeline, keys: set[str], listed: set[str], redriven: set[str | None]
    ) -> None:
        """The table index (what Athena reads) names only outputs a manifest lists, and every
        BI output a manifest lists (but those of inputs SQS redrove: their last receive was
        killed, maybe between the manifest and the index; the DLQ's redrive writes it)."""
        s3, named = boto3.client("s3"), set()
        for key in (k for k in keys if k.startswith(f"{TABLES_DIR}/")):
            body = s3.get_object(Bucket=pipe.processed, Key=key)["Body"].read().decode()
            named |= {uri.split("/", 3)[3] for uri in body.splitlines()}
        stale = sorted(named - listed)
        missing = sorted(
            k for k in listed - named
            if ".parquet" in k and "/rejected." not in k and not NEWLINES & set(k)
            and not any(k.startswith(f"{r}/") for r in redriven if r)
        )  # fmt: skip
        self.figures.index_entries = len(named)
        if stale:
            self.figures.violations.append(f"the table index names unlisted outputs: {stale[:3]}")
        if missing:
            self.figures.violations.append(f"outputs the table index misses: {missing[:3]}")

    def check_sandbox(self) -> None:
        """Nothing outside scratch: the daemon's cwd and TMPDIR hold no file of its making
        (multiprocessing's own pymp-* socket directories excepted), and scratch is empty after
        the last, clean exit."""
        strays = [
            p for p in self.sandbox.rglob("*")
            if p.is_file() and "pymp-" not in str(p) and self.scratch not in p.parents
        ]  # fmt: skip
        left = [p for p in self.scratch.rglob("*") if p.is_file()]
        if strays:
            self.figures.violations.append(f"written outside scratch: {strays[:5]}")
        if left:
            self.figures.violations.append(f"scratch not cleaned: {left[:5]}")


def _report_key(pipe: Pipeline, key: str) -> str:
    from s3worker.contract import Layout

    return Layout().error_key(key)


def _object_key(body: str) -> str | None:
    try:
        return str(json.loads(body)["detail"]["object"]["key"])
    except (ValueError, KeyError, TypeError):
        return None


def _log_events(log: Path) -> list[dict[str, Any]]:
    events = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def run_chaos(
    moto: str, root: Path, files: int, kills: int, seed: int = 11, rates: float = 0.05,
    deadline_s: float = 1800,
) -> Figures:  # fmt: skip
    return Chaos(moto, root, files, kills, seed, rates).run(deadline_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=400, help="good files (plus the hostile set)")
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rate", type=float, default=0.05, help="error rate per S3/SQS request")
    parser.add_argument("--deadline", type=float, default=3600)
    parser.add_argument("--dir", type=Path, help="keep the daemon's log and sandbox here")
    args = parser.parse_args()
    import logging

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # demo/, as pytest's pythonpath
    from conftest import CREDENTIALS, free_port
    from moto.server import ThreadedMotoServer

    from demo.emulator import harness_session

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.update(CREDENTIALS)
    os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:9"
    harness_session()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ["AWS_ENDPOINT_URL"] = moto = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="s3worker-chaos-") as tmp:
            root = args.dir or Path(tmp)
            root.mkdir(parents=True, exist_ok=True)
            figures = run_chaos(
                moto, root, args.files, args.kills, args.seed, args.rate, args.deadline
            )
    finally:
        server.stop()
    print("\n".join(figures.lines()))
    return 0 if not figures.violations and figures.lost == 0 and not figures.duplicated else 1


if __name__ == "__main__":
    sys.exit(main())
