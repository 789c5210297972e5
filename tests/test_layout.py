"""The code's shape: no import cycles, no module over 400 lines (issue 13)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = [ROOT / "daemon", ROOT / "lambda"]
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for base in PRODUCT:
        for path in base.rglob("*.py"):
            parts = path.relative_to(base).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Modules imported when `path` is imported (module level; TYPE_CHECKING blocks are not)."""
    deps: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                deps.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            deps |= {alias.name for alias in node.names}
    return {d for d in deps if d in known}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = [stack.pop()]
            while component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_over_400_lines(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines"


# Tests mirror modules: every module with logic has its own test file, named after it. The name is
# `test_<suffix>.py` for a suffix of the module's dotted path (`s3worker.processors.sales.totals` ->
# `test_totals`, `test_sales_totals` or `test_processors_sales_totals`) that no other module shares;
# the start Lambda's modules are `test_start_worker_<name>.py`.
TESTS = ROOT / "tests"


def own_names(name: str) -> set[str]:
    """The test-file names (without `test_`) that can stand for module `name`."""
    parts = name.split(".")
    if parts[0] == "starter":
        return {"start_worker_" + "_".join(parts[1:])} if len(parts) > 1 else set()
    if parts[0] in {"start_worker", "build"}:
        return {"start_worker"} if parts[0] == "start_worker" else {"lambda_build"}
    parts = parts[1:] if parts[0] == "s3worker" else parts
    return {"_".join(parts[i:]) for i in range(len(parts))}


def has_logic(path: Path) -> bool:
    """A module defines a function or a method (re-exports and declarations do not count)."""
    tree = ast.parse(path.read_text())
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(tree))


def own_test_files() -> dict[str, set[str]]:
    """Module -> the names of the test files that are its own."""
    roots = {"s3worker", "starter", "start_worker", "build"}
    known = {n: p for n, p in modules().items() if n.split(".")[0] in roots}
    names = {n: own_names(n) for n in known}
    shared = {s for n in names for s in names[n] if any(s in names[o] for o in names if o != n)}
    for n in known:
        if n.startswith("s3worker.") and not names[n] - shared:
            names[n].add(n.replace(".", "_"))
    files = {p.stem[len("test_") :] for p in TESTS.glob("test_*.py")}
    return {n: (names[n] - shared) & files for n, p in known.items() if has_logic(p)}


def untested_modules() -> list[str]:
    return sorted(n for n, own in own_test_files().items() if not own)


def test_every_module_with_logic_has_its_own_test_file() -> None:
    assert untested_modules() == []


def test_no_module_has_two_test_files_of_its_own() -> None:
    assert {n: own for n, own in own_test_files().items() if len(own) > 1} == {}


def test_the_mirror_rule_needs_an_unambiguous_name() -> None:
    names = own_names("s3worker.processors.sales.analysis")
    assert names == {"analysis", "sales_analysis", "processors_sales_analysis"}
    assert own_names("starter.events") == {"start_worker_events"}
