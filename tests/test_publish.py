"""publish.py: the manifest swapped in by compare-and-swap, superseded runs cleaned up by their
version tag, against the emulator's S3 over HTTP (a versioned raw bucket)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import boto3
import pytest
from procs import Pipeline
from s3worker.aws import ClientsContext
from s3worker.contract import InputDoc, Layout, Manifest, OutputDoc, source_metadata
from s3worker.errors import SupersededError, TransientError
from s3worker.events import ObjectRef
from s3worker.publish import MAX_SWAPS, TAG_CHARS, Publisher, version_tag
from s3worker.retry import RetryPolicy
from s3worker.storage import Previous, Storage
from structlog.testing import capture_logs
from tenacity import wait_none

T = TypeVar("T")
KEY = "in/day.csv"


def test_the_tag_is_short_stable_and_per_version() -> None:
    v1 = ObjectRef("raw", KEY, version_id="v1")
    tag = version_tag(v1)
    assert len(tag) == TAG_CHARS
    assert int(tag, 16) >= 0  # hex
    assert version_tag(ObjectRef("raw", KEY, size=5, version_id="v1")) == tag  # size aside
    others = {
        version_tag(ObjectRef("raw", KEY, version_id="v2")),
        version_tag(ObjectRef("raw2", KEY, version_id="v1")),
        version_tag(ObjectRef("raw", KEY + "x", version_id="v1")),
        version_tag(ObjectRef("raw", KEY, etag="e1")),  # an unversioned bucket: the ETag
    }
    assert tag not in others
    assert len(others) == 4


def run(scenario: Callable[[Publisher], Awaitable[T]], pipeline: Pipeline) -> T:
    async def main() -> T:
        async with ClientsContext(1) as clients:
            retry = RetryPolicy(3, wait_none())
            storage = Storage(clients.s3, retry, pipeline.processed, Layout())
            return await scenario(Publisher(storage))

    return asyncio.run(main())


def upload(pipeline: Pipeline, body: bytes = b"a,b\n1,2\n") -> ObjectRef:
    resp = boto3.client("s3").put_object(Bucket=pipeline.raw, Key=KEY, Body=body)
    return ObjectRef(pipeline.raw, KEY, len(body), resp["ETag"].strip('"'), resp["VersionId"])


def manifest_of(ref: ObjectRef, *outputs: str) -> Manifest:
    docs = tuple(OutputDoc(k, k.rsplit("/", 1)[-1], 1, None) for k in outputs)
    return Manifest(input=InputDoc(ref.bucket, ref.key, ref.size, ref.etag, ref.version_id),
                    processor_name="sales", outputs=docs)  # fmt: skip


def stored_manifest(pipeline: Pipeline) -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=pipeline.processed, Key=f"{KEY}/_manifest.json")
    return dict(json.loads(body["Body"].read()))


def put(pipeline: Pipeline, *keys: str) -> None:
    for key in keys:
        boto3.client("s3").put_object(Bucket=pipeline.processed, Key=key, Body=b"x")


def commit(ref: ObjectRef, manifest: Manifest, previous: Previous | None = None) -> Any:
    async def scenario(publisher: Publisher) -> Manifest | None:
        before = previous or await publisher.storage.previous_results(ref)
        meta = source_metadata(ref.etag, ref.version_id)
        return await publisher.commit(ref, manifest, meta, before)

    return scenario


def test_a_first_manifest_is_written_with_its_source_metadata(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    ref = upload(pipeline)
    written = run(commit(ref, manifest_of(ref, f"{KEY}/a.t1.parquet")), pipeline)
    assert written is not None
    assert written.replaced_outputs == ()
    assert stored_manifest(pipeline)["input"]["version_id"] == ref.version_id
    head = boto3.client("s3").head_object(Bucket=pipeline.processed, Key=f"{KEY}/_manifest.json")
    assert head["Metadata"] == source_metadata(ref.etag, ref.version_id)


def test_a_new_version_names_the_outputs_it_replaced(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    v1 = upload(pipeline, b"one\n")
    run(commit(v1, manifest_of(v1, f"{KEY}/a.t1.parquet", f"{KEY}/dt=1/p.t1.parquet")), pipeline)
    v2 = upload(pipeline, b"two\n")
    written = run(commit(v2, manifest_of(v2, f"{KEY}/a.t2.parquet")), pipeline)
    assert written.replaced_outputs == (f"{KEY}/a.t1.parquet", f"{KEY}/dt=1/p.t1.parquet")
    assert stored_manifest(pipeline)["replaced_outputs"] == list(written.replaced_outputs)
    assert stored_manifest(pipeline)["input"]["version_id"] == v2.version_id


def test_an_output_both_versions_list_is_not_named_replaced(aws: str, name: str) -> None:
    # An output whose key carries no version tag (written before tags, or by a plug-in layout)
    pipeline = Pipeline.create(name)
    v1 = upload(pipeline, b"one\n")
    shared = f"{KEY}/summary.json"
    run(commit(v1, manifest_of(v1, shared, f"{KEY}/a.t1.parquet")), pipeline)
    v2 = upload(pipeline, b"two\n")
    written = run(commit(v2, manifest_of(v2, shared, f"{KEY}/a.t2.parquet")), pipeline)
    assert written.replaced_outputs == (f"{KEY}/a.t1.parquet",)  # dropping it would lose v2's


def test_a_manifest_of_this_version_written_meanwhile_wins(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    ref = upload(pipeline)
    stale = Previous(done=False, outputs=())  # read before the other worker finished
    run(commit(ref, manifest_of(ref, f"{KEY}/a.other.parquet")), pipeline)
    with capture_logs() as logs:
        mine = run(commit(ref, manifest_of(ref, f"{KEY}/a.mine.parquet"), stale), pipeline)
    assert mine is None  # another run finished this very version first
    assert [o["key"] for o in stored_manifest(pipeline)["outputs"]] == [f"{KEY}/a.other.parquet"]
    assert [e["event"] for e in logs] == ["manifest_changed_meanwhile"]


def test_an_older_versions_manifest_written_meanwhile_is_replaced(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    v1 = upload(pipeline, b"one\n")
    v2 = upload(pipeline, b"two\n")
    stale = Previous(done=False, outputs=())
    # A slow run of v1 (its HEAD was before v2) swaps its manifest in after v2's run read
    run(commit(v2, manifest_of(v1, f"{KEY}/a.t1.parquet")), pipeline)
    written = run(commit(v2, manifest_of(v2, f"{KEY}/a.t2.parquet"), stale), pipeline)
    assert written is not None
    assert written.replaced_outputs == (f"{KEY}/a.t1.parquet",)
    assert stored_manifest(pipeline)["input"]["version_id"] == v2.version_id


def test_a_superseded_version_writes_no_manifest(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    v1 = upload(pipeline, b"one\n")
    upload(pipeline, b"two\n")
    with pytest.raises(SupersededError, match="was replaced by"):
        run(commit(v1, manifest_of(v1, f"{KEY}/a.t1.parquet")), pipeline)
    assert pipeline.result_keys("_manifest.json") == []


def test_discard_removes_what_the_run_wrote_but_not_what_a_manifest_lists(
    aws: str, name: str
) -> None:
    pipeline = Pipeline.create(name)
    ref = upload(pipeline)
    listed = f"{KEY}/a.t1.parquet"
    run(commit(ref, manifest_of(ref, listed)), pipeline)
    put(pipeline, listed, f"{KEY}/a.old.parquet", f"{KEY}/b.old.parquet")
    run(lambda p: p.discard(ref, [listed, f"{KEY}/a.old.parquet", f"{KEY}/b.old.parquet"]),
        pipeline)  # fmt: skip
    assert sorted(pipeline.result_keys()) == sorted([listed, f"{KEY}/_manifest.json"])


def test_sweep_finds_a_versions_leftovers_by_its_tag_never_by_the_prefix(
    aws: str, name: str
) -> None:
    pipeline = Pipeline.create(name)
    v1 = upload(pipeline, b"one\n")
    tag = version_tag(v1)
    left = [f"{KEY}/a.{tag}.parquet", f"{KEY}/dt=1/part-0.{tag}.parquet"]
    keep = [
        f"{KEY}/a.{version_tag(ObjectRef(v1.bucket, KEY, version_id='v9'))}.parquet",
        f"{KEY}/x/other.csv/_manifest.json",  # KEY/ is also the parent of another input's results
        f"{KEY}-more/a.{tag}.parquet",  # a sibling key sharing the prefix text
    ]
    put(pipeline, *left, *keep)
    run(lambda p: p.sweep(v1), pipeline)
    assert sorted(pipeline.result_keys()) == sorted(keep)


def test_drop_removes_replaced_outputs_and_logs_when_it_cannot(aws: str, name: str) -> None:
    pipeline = Pipeline.create(name)
    put(pipeline, f"{KEY}/a.t1.parquet", f"{KEY}/a.t2.parquet")
    run(lambda p: p.drop((f"{KEY}/a.t1.parquet",)), pipeline)
    run(lambda p: p.drop(()), pipeline)
    assert pipeline.result_keys() == [f"{KEY}/a.t2.parquet"]

    class Failing:
        layout = Layout()

        async def delete(self, keys: list[str]) -> None:
            raise TransientError("could not delete stale results")

    with capture_logs() as logs:
        asyncio.run(Publisher(Failing()).drop(["k1", "k2"]))  # type: ignore[arg-type]
    (left,) = logs
    assert (left["event"], left["count"], left["keys"]) == ("stale_results_left", 2, ["k1", "k2"])


def test_a_manifest_that_keeps_changing_gives_up_as_transient() -> None:
    from botocore.exceptions import ClientError

    class Racing:
        """Storage whose manifest changes between every read and write."""

        layout = Layout()
        writes = 0

        async def current(self, ref: ObjectRef) -> ObjectRef:
            return ref

        async def put_json(self, *args: Any, **condition: str) -> None:
            self.writes += 1
            error = {"Error": {"Code": "PreconditionFailed"},
                     "ResponseMetadata": {"HTTPStatusCode": 412}}  # fmt: skip
            raise ClientError(error, "PutObject")  # type: ignore[arg-type]

        async def previous_results(self, ref: ObjectRef) -> Previous:
            return Previous(done=False, outputs=(), etag=f"e{self.writes}")

    storage = Racing()
    ref = ObjectRef("raw", KEY, version_id="v1")
    with pytest.raises(TransientError, match=f"kept changing; {MAX_SWAPS} attempts"):
        asyncio.run(Publisher(storage).commit(  # type: ignore[arg-type]
            ref, manifest_of(ref), {}, Previous(done=False, outputs=())))  # fmt: skip
    assert storage.writes == MAX_SWAPS
