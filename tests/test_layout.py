"""The package's shape stays readable: no import cycle among aerec's modules, and no
function outside the click command bodies longer than 60 lines or with more than 8
parameters (README "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import aerec

PACKAGE = Path(aerec.__file__).parent
MAX_LINES, MAX_PARAMETERS = 60, 8


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported(tree: ast.Module, known: set[str]) -> set[str]:
    """The aerec modules a module imports anywhere (functions included), except under
    `if TYPE_CHECKING`."""
    names: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aerec"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("aerec."))
        stack.extend(ast.iter_child_nodes(node))
    return {name for name in names if name in known}


def test_no_import_cycle() -> None:
    trees = modules()
    graph = {name: imported(tree, set(trees)) - {name} for name, tree in trees.items()}
    # a package's __init__ is imported by its modules' import path, not by their code
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def _is_click_command(node: ast.FunctionDef) -> bool:
    return any(
        "command" in ast.unparse(d) or "group" in ast.unparse(d) for d in node.decorator_list
    )


def test_functions_are_short_and_take_few_parameters() -> None:
    long = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(node, ast.FunctionDef) and _is_click_command(node):
                continue
            arguments = node.args
            count = len(arguments.posonlyargs + arguments.args + arguments.kwonlyargs)
            count -= int(bool(arguments.args) and arguments.args[0].arg in ("self", "cls"))
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > MAX_LINES or count > MAX_PARAMETERS:
                long.append(f"{name}.{node.name}: {lines} lines, {count} parameters")
    assert long == []
