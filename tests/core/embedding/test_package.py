"""The embedding package's shape: one role per file, small files, no import cycle (function-level imports
included), and towers that never reach the loader or each other's backend state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "facestats_core" / "embedding"
MODULES = {p.stem: p for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__"}
MAX_LINES = 400


def _imports(path: Path) -> set[str]:
    """The embedding modules ``path`` imports anywhere in its body (module level or inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("facestats_core.embedding."):
            names.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[2] for a in node.names if a.name.startswith("facestats_core.embedding."))
    return names & set(MODULES)


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_files_are_small(name: str) -> None:
    assert len(MODULES[name].read_text().splitlines()) <= MAX_LINES


def test_no_import_cycle_counting_function_level_imports() -> None:
    done: set[str] = set()

    def visit(node: str, trail: tuple[str, ...]) -> None:
        assert node not in trail, " -> ".join((*trail, node))
        if node not in done:
            for target in sorted(GRAPH[node]):
                visit(target, (*trail, node))
            done.add(node)

    for name in sorted(GRAPH):
        visit(name, ())


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in GRAPH[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


@pytest.mark.parametrize("tower", ["torch_tower", "openvino_tower", "openvino_int8"])
def test_towers_never_reach_the_loader(tower: str) -> None:
    assert "loader" not in _reachable(tower)


def test_the_torch_tower_knows_nothing_of_openvino() -> None:
    assert not {"openvino_tower", "openvino_int8"} & _reachable("torch_tower")
