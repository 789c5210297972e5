"""`s3worker upload` against the moto server over HTTP, and its pure parts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
import pytest
from opstack import cli, create_stack
from s3worker.ops.upload import HASH_METADATA, is_unchanged, normalise_prefix, plan


def batch(root: Path) -> Path:
    (root / "day1").mkdir(parents=True)
    (root / "day1" / "sales.csv").write_text("date,store\n2026-01-01,1\n")
    (root / "day1" / "sensors.jsonl").write_text('{"device": "a"}\n')
    (root / "top.log").write_text("GET / 200\n")
    return root


def raw_keys(bucket: str) -> list[str]:
    return sorted(
        o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    )


def test_upload_skips_unchanged_and_reuploads_changed(
    aws: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack and a folder of three files
    pipeline = create_stack(name)
    folder = batch(tmp_path / "batch")
    # When the operator uploads the folder under a prefix
    code, out, err = cli(capsys, "upload", str(folder), "--stack", name, "--prefix", "incoming")
    # Then every file is in the raw bucket at prefix + its path in the folder, with its hash
    assert code == 0
    assert raw_keys(pipeline.raw) == [
        "incoming/day1/sales.csv", "incoming/day1/sensors.jsonl", "incoming/top.log",
    ]  # fmt: skip
    head = boto3.client("s3").head_object(Bucket=pipeline.raw, Key="incoming/top.log")
    assert head["Metadata"][HASH_METADATA] == hashlib.sha256(b"GET / 200\n").hexdigest()
    assert out.startswith("uploaded 3 file(s)")
    assert "skipped 0 unchanged" in out
    assert "0 failed" in out
    assert "upload [" in err  # the progress line (stderr is not a TTY: plain lines)
    # When one file changes and the operator uploads the folder again
    (folder / "day1" / "sales.csv").write_text("date,store\n2026-01-02,2\n")
    code, out, _ = cli(capsys, "upload", str(folder), "--stack", name, "--prefix", "incoming/")
    # Then only the changed file is uploaded again
    assert code == 0
    assert out.startswith("uploaded 1 file(s)")
    assert "skipped 2 unchanged" in out
    versions = boto3.client("s3").list_object_versions(Bucket=pipeline.raw)["Versions"]
    assert sorted(v["Key"] for v in versions).count("incoming/day1/sales.csv") == 2
    assert sorted(v["Key"] for v in versions).count("incoming/top.log") == 1


def test_upload_recognises_files_put_by_other_tools(
    aws: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file already put by another tool (no hash metadata; single-part ETag = MD5)
    pipeline = create_stack(name)
    path = tmp_path / "a.csv"
    path.write_bytes(b"x,y\n1,2\n")
    boto3.client("s3").put_object(Bucket=pipeline.raw, Key="a.csv", Body=path.read_bytes())
    # When the operator uploads that single file
    code, out, _ = cli(capsys, "upload", str(path), "--stack", name)
    # Then it is skipped
    assert code == 0
    assert out.startswith("uploaded 0 file(s)")
    assert "skipped 1 unchanged" in out


def test_upload_failures_give_a_non_zero_exit(
    aws: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack whose raw bucket has gone
    pipeline = create_stack(name)
    boto3.client("s3").delete_bucket(Bucket=pipeline.raw)
    folder = batch(tmp_path / "batch")
    # When the operator uploads
    code, out, err = cli(capsys, "upload", str(folder), "--stack", name)
    # Then each failure is named in the summary and the exit code is 1
    assert code == 1
    assert "uploaded 0 file(s)" in out
    assert "3 failed" in out
    assert "failed: top.log:" in out
    assert "Traceback" not in err
    # And a path that does not exist is a clear error before anything is sent
    code, _, err = cli(capsys, "upload", str(tmp_path / "nope"), "--stack", name)
    assert code == 2
    assert err == f"s3worker: {tmp_path / 'nope'}: no such file or directory\n"


def test_plan_names_keys_from_the_given_roots(tmp_path: Path) -> None:
    folder = batch(tmp_path / "b")
    files = plan([folder, folder / "top.log"], "in")
    assert [(f.key, f.size) for f in files] == [
        ("in/day1/sales.csv", 24), ("in/day1/sensors.jsonl", 16), ("in/top.log", 10),
    ]  # fmt: skip
    assert [normalise_prefix(p) for p in ("", "/", "a", "a/", "/a/b")] == [
        "",
        "",
        "a/",
        "a/",
        "a/b/",
    ]


def test_unchanged_needs_the_same_size_and_content() -> None:
    sha, md5 = "s" * 64, "m" * 32
    assert is_unchanged({"ContentLength": 5, "Metadata": {HASH_METADATA: sha}}, 5, sha, md5)
    assert not is_unchanged({"ContentLength": 6, "Metadata": {HASH_METADATA: sha}}, 5, sha, md5)
    assert not is_unchanged({"ContentLength": 5, "Metadata": {HASH_METADATA: "x"}}, 5, sha, md5)
    assert is_unchanged({"ContentLength": 5, "ETag": f'"{md5}"'}, 5, sha, md5)
    # A multipart ETag is not an MD5 of the content: without the hash it counts as changed
    assert not is_unchanged({"ContentLength": 5, "ETag": f'"{md5}-3"'}, 5, sha, md5)
