"""The operator CLI is the `ops` extra: a worker installs only what the daemon needs.

Each check runs in a fresh interpreter where the extra's modules cannot be imported, as on a
worker (`pip install s3worker` without `[ops]`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from s3worker.ops import extra_modules

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "daemon" / "s3worker"
# What the operator CLI may import of the product: the results contract and the small,
# dependency-free modules it is written in terms of.
CONTRACT_MODULES = {"contract", "errors", "exits", "regions", "events", "skiprules"}
# The BI tables' declarations (names, files, schemas): the results contract's table part.
TABLE_DECLARATIONS = {"processors.bi"}

WITHOUT_EXTRA = textwrap.dedent(
    """
    import importlib.abc, sys

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    """
)


def run_without_extra(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    blocked = set(extra_modules())
    script = WITHOUT_EXTRA.format(blocked=blocked) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_extra_is_declared_with_boto3() -> None:
    assert "boto3" in extra_modules()


def test_every_worker_module_imports_without_the_extra() -> None:
    done = run_without_extra(
        """
        import importlib, pkgutil, s3worker
        for m in pkgutil.walk_packages(s3worker.__path__, "s3worker."):
            if not m.name.startswith("s3worker.ops") and m.name != "s3worker.__main__":
                importlib.import_module(m.name)
        print("imported all")
        import boto3  # the blocker works: this must fail
        """
    )
    assert done.stdout == "imported all\n", done.stderr
    assert done.stderr.strip().endswith("ModuleNotFoundError: No module named 'boto3'"), done.stderr


def test_process_runs_on_a_worker_install(tmp_path: Path) -> None:
    done = run_without_extra(
        f"""
        from s3worker.cli import main
        assert main(["sample", "sales", "--rows", "300", "--out", "{tmp_path}/s.csv"]) == 0
        raise SystemExit(main(["process", "{tmp_path}/s.csv", "--out", "{tmp_path}/out"]))
        """
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "summary.json").exists()


def test_an_operator_command_without_the_extra_says_how_to_install_it() -> None:
    done = run_without_extra(
        """
        from s3worker.cli import main
        raise SystemExit(main(["status", "--stack", "any"]))
        """
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "s3worker: this command needs the operator extra (boto3 is not installed): "
        "pip install 's3worker[ops]'"
    )


def s3worker_imports(path: Path) -> set[str]:
    """The s3worker modules a file imports (first component after `s3worker.`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        found |= {
            n.removeprefix("s3worker.")
            if n.removeprefix("s3worker.") in TABLE_DECLARATIONS
            else n.split(".")[1]
            for n in names
            if n.startswith("s3worker.")
        }
    return found


def test_the_operator_cli_depends_only_on_the_contract() -> None:
    for path in (PACKAGE / "ops").rglob("*.py"):
        assert s3worker_imports(path) <= CONTRACT_MODULES | TABLE_DECLARATIONS | {"ops"}, path


def test_the_contract_modules_need_nothing_but_the_standard_library() -> None:
    for name in CONTRACT_MODULES:
        path = PACKAGE / f"{name}.py"
        assert s3worker_imports(path) <= CONTRACT_MODULES, path
        top = {
            (n.module or "").split(".")[0]
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.ImportFrom) and n.level == 0
        } | {
            a.name.split(".")[0]
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Import)
            for a in n.names
        }
        assert top - {"s3worker", "__future__"} <= sys.stdlib_module_names, (path, top)
