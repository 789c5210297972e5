"""The adversarial corpus (tests/adversarial.py) through the real worker loop against the moto
server: every input ends in exactly its one outcome, and nothing else is left anywhere."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from adversarial import JOB_MEMORY_MB, ROUTES, SCRATCH_MAX_BYTES, Case, Ctx, corpus
from procs import EchoProcessor, Pipeline
from s3worker.contract import TABLES_DIR, Layout
from s3worker.processors.registry import Registry
from test_worker import run_worker


@dataclass
class Seen:
    """Everything the run left: manifests and reports by key, DLQ messages, other objects."""

    keys: set[str]
    reports: dict[str, dict[str, Any]]
    dlq: list[dict[str, Any]]
    pipe: Pipeline

    @classmethod
    def collect(cls, pipe: Pipeline) -> Seen:
        keys = set(pipe.result_keys())
        reports = {k: pipe._json(k) or {} for k in keys if k.startswith("_errors/")}
        return cls(keys, reports, pipe.dlq_bodies(), pipe)

    def manifest(self, key: str | None) -> dict[str, Any] | None:
        if key is None or f"{key}/_manifest.json" not in self.keys:
            return None
        return self.pipe.manifest(key)

    def reports_for(self, case: Case, bodies: list[str]) -> list[dict[str, Any]]:
        by_key = Layout().error_key(case.key) if case.key else None
        return [
            r for k, r in self.reports.items()
            if k == by_key or (k.startswith("_errors/_events/") and r["message"]["body"] in bodies)
        ]  # fmt: skip

    def orphans(self) -> list[str]:
        """Outputs no manifest lists (a superseded or killed run's leftovers), and table
        index entries that name such an output."""
        listed: set[str] = set()
        for key in self.keys:
            if key.endswith("/_manifest.json"):
                listed |= {o["key"] for o in self.pipe._json(key)["outputs"]}  # type: ignore[index]
        outputs = {k for k in self.keys if not k.endswith("/_manifest.json")}
        index = {k for k in outputs if k.startswith(f"{TABLES_DIR}/")}
        stale = [k for k in sorted(index) if set(self.index_entry(k)) - listed]
        return stale + sorted(k for k in outputs - listed - index if not k.startswith("_errors/"))

    def index_entry(self, key: str) -> list[str]:
        """The output keys a table index entry names."""
        obj = boto3.client("s3").get_object(Bucket=self.pipe.processed, Key=key)
        return [uri.split("/", 3)[3] for uri in obj["Body"].read().decode().splitlines()]


def outcome(seen: Seen, case: Case, bodies: list[str]) -> tuple[str, str]:
    """The case's outcome, and a detail for the failure message."""
    manifest = seen.manifest(case.key)
    reports = seen.reports_for(case, bodies)
    dead = [d for d in seen.dlq if d["body"] in bodies]
    detail = f"reports={[r['error'] for r in reports]} dlq={len(dead)}"
    if manifest and not reports and not dead:
        return "manifest", detail
    if len(reports) == 1 and len(dead) == 1 and not manifest:
        carried = dead[0]["attributes"]["s3worker-error-class"]["StringValue"]
        if carried != reports[0]["error"]["class"]:
            return f"failed, but the DLQ carries {carried}", detail
        return "failed", detail
    if not (manifest or reports or dead):
        return "skipped", detail
    return f"mixed (manifest={manifest is not None})", detail


def judge(seen: Seen, ctx: Ctx, case: Case, bodies: list[str]) -> str | None:
    got, detail = outcome(seen, case, bodies)
    wanted = ("manifest", "failed") if case.expect == "one" else (case.expect,)
    if got not in wanted:
        return f"expected {case.expect}, got {got}; {detail}"
    if got == "manifest" and case.key:
        manifest = seen.manifest(case.key) or {}
        etag = ctx.uploads[case.key]["detail"]["object"]["etag"]
        if manifest["input"]["etag"] != etag:
            return f"manifest of another version: {manifest['input']}"
    if got == "failed" and case.error:
        carried = seen.reports_for(case, bodies)[0]["error"]
        if carried["class"] != case.error:
            return f"expected {case.error}, got {carried}"
    return None


def test_every_hostile_input_has_exactly_its_one_outcome(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given a queue that gives each message one receive (the last attempt is the first), a
    # foreign bucket, and the corpus sent: over 60 hostile cases and a few good ones
    pipe = Pipeline.create(name, max_receive=1)
    foreign = f"{name}-foreign"
    boto3.client("s3").create_bucket(Bucket=foreign)
    ctx = Ctx(pipe, foreign)
    cases = corpus()
    assert len(cases) >= 60
    assert len({c.name for c in cases}) == len(cases)
    sent = {c.name: c.send(ctx) for c in cases}
    registry = Registry()  # the built-in processors, plus the tests' echo processor
    registry.register(EchoProcessor(tmp_path / "runlog"))
    # When the real worker loop drains the queue
    run_worker(
        pipe, scratch, registry, S3WORKER_CONCURRENCY=2, S3WORKER_ROUTES=ROUTES,
        S3WORKER_JOB_MEMORY_MB=JOB_MEMORY_MB, S3WORKER_SCRATCH_MAX_BYTES=SCRATCH_MAX_BYTES,
    )  # fmt: skip
    # Then each case has exactly the outcome it names
    seen = Seen.collect(pipe)
    problems = {c.name: p for c in cases if (p := judge(seen, ctx, c, sent[c.name]))}
    assert problems == {}, json.dumps(problems, indent=1, ensure_ascii=False)[:6000]
    # And nothing else is anywhere: no orphaned outputs, no stray DLQ message, no report of
    # nothing, an empty queue and an empty scratch
    assert seen.orphans() == []
    all_sent = {b for bodies in sent.values() for b in bodies}
    assert [d["body"][:80] for d in seen.dlq if d["body"] not in all_sent] == []
    assert pipe.depth() == 0
    assert list(scratch.iterdir()) == []
