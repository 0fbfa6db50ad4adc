"""The house's layers: models -> search -> indexer -> service -> evaluation -> bench, no
import back up, no cycles."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["models", "search", "indexer", "service", "evaluation", "bench"]


def module_imports() -> dict[str, set[str]]:
    """Module name -> the project modules it imports (anywhere in the file)."""
    found = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            imported = set()
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    imported |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module)
            found[name] = {m for m in imported if m.split(".")[0] in LAYERS}
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_no_package_imports_a_layer_above_it(package):
    allowed = set(LAYERS[: LAYERS.index(package) + 1])
    upward = {
        (module, imported)
        for module, imports in module_imports().items()
        if module.split(".")[0] == package
        for imported in imports
        if imported.split(".")[0] not in allowed
    }
    assert not upward


def test_no_import_cycle():
    graph = module_imports()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if imported not in graph:
                continue
            assert state.get(imported) != "open", " -> ".join([*path, module, imported])
            if imported not in state:
                visit(imported, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
