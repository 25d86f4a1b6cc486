"""The code base stays ruff- and mypy-clean, and the shell's modules import each other in
layers: part of the test suite, so CI runs it."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def test_ruff() -> None:
    res = subprocess.run([_tool("ruff"), "check", "oanix", "tests", "benches", "examples",
                          "wasi_fixtures"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict() -> None:
    res = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


SHELL = ROOT / "oanix" / "shell"
# Imports the shell's layering allows against its rules (an import inside a function, an
# edge of a cycle), each with its reason: (importer, imported) -> why.
ALLOWED_IMPORTS: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import that can run (those under ``if TYPE_CHECKING`` only serve the types)."""
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and _is_type_checking(node)
                   for n in ast.walk(node)}
    return [n for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in typing_only]


def _targets(name: str, is_pkg: bool, node: ast.Import | ast.ImportFrom,
             modules: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names} & modules
    pkg = name if is_pkg else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        pkg = pkg.rpartition(".")[0]
    base = (pkg + "." + node.module if node.module else pkg) if node.level else node.module or ""
    # ``from . import x`` names the submodule x; the package itself is loaded first anyway
    found = {base} & modules if node.module else set()
    return found | {base + "." + a.name for a in node.names} & modules


def _shell_modules() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(), str(p)))
            for p in sorted(SHELL.rglob("*.py"))}


def test_shell_imports_form_no_cycle() -> None:
    """The shell's modules import each other in layers: no cycle, so any module can be
    read (and loaded) knowing only the ones below it."""
    mods = _shell_modules()
    graph: dict[str, set[str]] = {}
    for name, (path, tree) in mods.items():
        is_pkg = path.name == "__init__.py"
        graph[name] = set()
        for node in _imports(tree):
            for target in _targets(name, is_pkg, node, set(mods)):
                if target != name and (name, target) not in ALLOWED_IMPORTS:
                    graph[name].add(target)
    cycles = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles in oanix.shell: " + "; ".join(
        " -> ".join(c) for c in cycles)


def test_shell_imports_sit_at_module_level() -> None:
    """An import inside a function hides a dependency (and usually a cycle)."""
    mods = _shell_modules()
    inside = []
    for name, (path, tree) in mods.items():
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                for n in ast.walk(fn):
                    if not isinstance(n, ast.Import | ast.ImportFrom):
                        continue
                    targets = _targets(name, path.name == "__init__.py", n, set(mods))
                    if not targets or any((name, t) not in ALLOWED_IMPORTS for t in targets):
                        inside.append(f"{name}:{n.lineno}")
    assert not inside, "imports inside functions: " + ", ".join(inside)
