"""lambda/build.py: the start Lambda's deployment zip holds everything the handler imports
(its `starter` package and the daemon's shared `s3worker.skiprules`), is the same bytes for the
same sources, runs on its own, and its command line writes it where it is told."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from demo.emulator import LAMBDA_BUILD, lambda_zip

ROOT = Path(__file__).resolve().parents[1]


def build() -> bytes:
    return lambda_zip()  # lambda/build.py, as `make package` runs it


def build_module() -> SimpleNamespace:
    """lambda/build.py's functions (a script beside the zip's root, not an importable module)."""
    return SimpleNamespace(**runpy.run_path(str(LAMBDA_BUILD)))


def test_the_zip_holds_the_handler_its_package_and_the_vendored_rules(tmp_path: Path) -> None:
    path = tmp_path / "lambda.zip"
    path.write_bytes(build())

    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        vendored = zf.read("s3worker/skiprules.py")

    assert names[0] == "start_worker.py"  # the template's Handler: start_worker.handler
    starter = {p.name for p in (ROOT / "lambda" / "starter").glob("*.py")}
    assert {n.removeprefix("starter/") for n in names if n.startswith("starter/")} == starter
    assert vendored == (ROOT / "daemon" / "s3worker" / "skiprules.py").read_bytes()
    assert "s3worker/events.py" not in names  # only the pure, stdlib-only rules


def test_the_same_sources_give_the_same_zip() -> None:
    assert build() == build()


def test_the_handler_runs_from_the_zip_alone(tmp_path: Path) -> None:
    # Given the zip first on the path, as /var/task is in the Lambda runtime
    path = tmp_path / "lambda.zip"
    path.write_bytes(build())
    folder_marker = json.loads(
        (ROOT / "tests" / "events" / "lambda_eventbridge_object_created.json").read_text()
    )
    folder_marker["detail"]["object"]["key"] = "incoming/"
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(path)!r})\n"
        "import start_worker, s3worker.skiprules as rules\n"
        "class Context:\n"
        "    aws_request_id = 'zip'\n"
        "    def get_remaining_time_in_millis(self): return 1000\n"
        "result = start_worker.handler(json.loads(sys.argv[1]), Context())\n"
        "print(json.dumps({'result': result, 'rules': rules.__file__}))\n"
    )
    # When a folder marker's event arrives (no AWS call is needed to skip it)
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(folder_marker)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    # Then it is skipped by the vendored rules, read from the zip
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["rules"].startswith(str(path))
    assert out["result"] == {
        "action": "skipped",
        "skipped": [{"key": "incoming/", "reason": "folder marker"}],
    }


def test_every_member_is_written_with_a_fixed_time_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "lambda.zip"
    path.write_bytes(build())
    members = build_module().members()

    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == list(members)  # members() order is the zip's
        assert all(zf.read(i) == members[i.filename] for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o644}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
    assert members["s3worker/__init__.py"].startswith(b'"""The s3worker modules')


def test_the_command_writes_the_zip_into_a_new_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = build_module()
    dest = tmp_path / "dist" / "nested" / "lambda.zip"

    assert module.main([str(dest)]) == 0

    assert dest.read_bytes() == build()
    assert capsys.readouterr().out == f"lambda: {dest} ({len(module.members())} files)\n"


@pytest.mark.parametrize("argv", [[], ["a.zip", "b.zip"]])
def test_the_command_needs_exactly_one_destination(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build_module().main(argv) == 2
    assert capsys.readouterr().err == "usage: python lambda/build.py DEST.zip\n"
