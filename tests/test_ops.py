"""s3worker.ops (the package's own functions): which errors are the operator's, and the one line
that names the `ops` extra when an operator command runs without it. The extra's absence in a
fresh interpreter, as on a worker: tests/test_ops_extra.py."""

from __future__ import annotations

import importlib.metadata

import pytest
from s3worker import exits
from s3worker.errors import S3WorkerError
from s3worker.ops import EXTRA, OperatorError, UnreachableError, extra_modules, missing_extra


def test_the_extra_modules_are_read_from_the_installed_requirements() -> None:
    # setup.cfg's ops extra: boto3, duckdb, plotly; none of the worker's own requirements
    assert {"boto3", "duckdb", "plotly"} <= extra_modules()
    assert not {"pandas", "aiobotocore", "moto", "selenium"} & extra_modules()


def test_requirement_lines_become_import_names(monkeypatch: pytest.MonkeyPatch) -> None:
    requirements = [
        "Foo-Bar>=1.2; extra == 'ops'",
        'plotly[express]==7.1.0; extra == "ops"',
        "Pkg~=2 ; python_version >= '3.11' and extra == \"ops\"",
        "pandas==3.1.1",  # a worker requirement
        "moto[server]==5.2.5; extra == 'dev'",
    ]
    monkeypatch.setattr(importlib.metadata, "requires", lambda _: requirements)

    assert extra_modules() == {"foo_bar", "plotly", "pkg"}


def test_no_installed_metadata_means_no_extra_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> list[str]:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "requires", not_installed)

    assert extra_modules() == frozenset()
    assert missing_extra(ModuleNotFoundError("No module named 'boto3'", name="boto3")) is None


@pytest.mark.parametrize("name", ["boto3", "boto3.session", "plotly.graph_objects"])
def test_a_missing_extra_module_names_the_extra(name: str) -> None:
    top = name.split(".", maxsplit=1)[0]

    text = missing_extra(ModuleNotFoundError(f"No module named {name!r}", name=name))

    assert text == (
        f"this command needs the operator extra ({top} is not installed): "
        f"pip install 's3worker[{EXTRA}]'"
    )


@pytest.mark.parametrize(
    "exc",
    [
        ModuleNotFoundError("No module named 'yaml'", name="yaml"),  # not the extra's
        ModuleNotFoundError("no name given"),  # exc.name is None
        ImportError("cannot import name 'x' from 'boto3'", name="boto3"),  # not a missing module
        RuntimeError("boto3"),
    ],
)
def test_any_other_error_is_not_about_the_extra(exc: BaseException) -> None:
    assert missing_extra(exc) is None


def test_operator_errors_have_their_own_exit_codes() -> None:
    assert issubclass(UnreachableError, OperatorError)
    assert issubclass(OperatorError, S3WorkerError)
    assert (OperatorError.exit_code, UnreachableError.exit_code) == (exits.USAGE, 4)
