"""The layout rules of docs/architecture.md, checked on the source tree (AST only, no imports)
except one test that imports every module."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("facestats_core", "facestats_demo", "facestats_dagster")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


MODULES = _modules()


def _imports(path: Path, top_level_only: bool) -> Iterator[tuple[str, int]]:
    """`(imported module, line)` of every import in `path` (module level only when asked)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno


def _internal(name: str) -> str | None:
    """The project module `name` refers to (a `from x import y` may name a module or a symbol)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_the_packages_have_modules() -> None:
    assert {"facestats_core.io.layout", "facestats_dagster.definitions", "facestats_demo.faces"} <= set(MODULES)


@pytest.mark.parametrize("package", ["facestats_core", "facestats_demo"])
def test_core_and_demo_never_import_dagster(package: str) -> None:
    offenders = [
        f"{name} line {line}: {imported}"
        for name, path in MODULES.items() if name.startswith(package)
        for imported, line in _imports(path, top_level_only=False)
        if imported.split(".")[0] in ("dagster", "facestats_dagster")
    ]
    assert not offenders


def test_core_never_imports_the_demo() -> None:
    offenders = [
        f"{name}: {imported}"
        for name, path in MODULES.items() if name.startswith("facestats_core")
        for imported, _ in _imports(path, top_level_only=False)
        if imported.split(".")[0] == "facestats_demo"
    ]
    assert not offenders


def test_nothing_imports_the_cli() -> None:
    offenders = [
        f"{name}: {imported}"
        for name, path in MODULES.items() if not name.startswith("facestats_dagster.cli")
        for imported, _ in _imports(path, top_level_only=False)
        if imported == "facestats_dagster.cli" or imported.startswith("facestats_dagster.cli.")
    ]
    assert not offenders


def test_no_import_cycles() -> None:
    graph = {
        name: {target for imported, _ in _imports(path, top_level_only=True)
               if (target := _internal(imported)) and target != name}
        for name, path in MODULES.items()
    }
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    # a package's __init__ importing nothing, a module importing its parent package, is not a cycle
    real = [c for c in cycles if not all(a.startswith(b) or b.startswith(a) for a, b in zip(c, c[1:]))]
    assert not real, real


def _reads_environment(node: ast.AST) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        func = node.func
        if func.attr == "getenv":
            return True
        if func.attr == "get" and isinstance(func.value, ast.Attribute) and func.value.attr == "environ":
            return True
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        return isinstance(node.value, ast.Attribute) and node.value.attr == "environ"
    return False


def test_only_the_settings_module_reads_environment_variables() -> None:
    offenders = [
        f"{name} line {node.lineno}"
        for name, path in MODULES.items() if name != "facestats_dagster.settings"
        for node in ast.walk(ast.parse(path.read_text()))
        if _reads_environment(node)
    ]
    assert not offenders


PICKLE_MODULES = ("pickle", "_pickle", "cPickle", "joblib", "dill", "cloudpickle", "shelve", "marshal")
"""Modules whose loaders run code from the bytes they read."""


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


def _code_loading(node: ast.AST) -> str | None:
    """What `node` is if it can load code from bytes: a pickle-family loader, `torch.load` without
    `weights_only=True`, `np.load` without `allow_pickle=False`, or a pickle-family module imported
    for anything but its error classes."""
    if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PICKLE_MODULES:
        loaders = [a.name for a in node.names if not a.name.endswith("Error")]
        return f"from {node.module} import {', '.join(loaders)}" if loaders else None
    if isinstance(node, ast.Import):
        libraries = [a.name for a in node.names if a.name.split(".")[0] in PICKLE_MODULES[3:]]
        return f"import {', '.join(libraries)}" if libraries else None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return None
    owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
    attr = node.func.attr
    if owner in PICKLE_MODULES and attr in ("load", "loads", "Unpickler"):
        return f"{owner}.{attr}"
    if owner == "torch" and attr == "load" and not _keyword_is(node, "weights_only", True):
        return "torch.load without weights_only=True"
    if owner in ("np", "numpy") and attr == "load" and not _keyword_is(node, "allow_pickle", False):
        return "np.load without allow_pickle=False"
    return None


def test_nothing_loads_code_from_model_files() -> None:
    """No pickle-family loader in the packages: every model file is read as plain data (docs/models.md)."""
    offenders = [
        f"{name} line {node.lineno}: {what}"
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if (what := _code_loading(node))
    ]
    assert not offenders


@pytest.mark.parametrize("source", [
    "import joblib\njoblib.load(f)", "pickle.loads(b)", "from pickle import load", "torch.load(f)",
    "torch.load(f, weights_only=False)", "np.load(f)", "numpy.load(f, allow_pickle=True)",
])
def test_the_code_loading_check_catches(source: str) -> None:
    assert any(_code_loading(node) for node in ast.walk(ast.parse(source)))


@pytest.mark.parametrize("source", [
    "torch.load(f, map_location='cpu', weights_only=True)", "np.load(f, allow_pickle=False)",
    "import pickle\nexcept_ = pickle.UnpicklingError", "from pickle import UnpicklingError",
])
def test_the_code_loading_check_allows(source: str) -> None:
    assert not any(_code_loading(node) for node in ast.walk(ast.parse(source)))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_readme_settings_table_is_the_settings_module() -> None:
    from facestats_dagster.settings import settings_markdown

    assert settings_markdown() in (ROOT / "README.md").read_text()
