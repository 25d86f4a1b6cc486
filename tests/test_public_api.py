"""The public API is what ``__all__`` says, and a user's type checker sees it.

A name in ``__all__`` that does not import breaks ``from oanix import *`` and every
example that uses it, and plain ruff does not notice; these tests do.
"""

import ast
import importlib
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import oanix

ROOT = Path(__file__).resolve().parent.parent


def _packages() -> list[str]:
    names = ["oanix"]
    for info in pkgutil.walk_packages(oanix.__path__, "oanix."):
        if info.ispkg:
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _packages())
def test_every_name_in_all_imports(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", [])
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what {name} does not define: {missing}"


def test_star_import_in_a_fresh_interpreter() -> None:
    code = ("from oanix import *\n"
            "from oanix import CowFs, MemFs, Namespace, WorkspaceFs, OanixEnv, Limits\n"
            "from oanix import WasiRuntime, RunConfig, run_python, HttpFs, CapabilityPolicy\n"
            "print(sorted(n for n in dir() if not n.startswith('_'))[:3])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr


def test_lazy_names_are_declared_for_type_checkers() -> None:
    """Each lazily imported name is also imported under TYPE_CHECKING, so mypy and
    pyright see its real type rather than ``Any`` from ``__getattr__``."""
    tree = ast.parse((ROOT / "oanix" / "__init__.py").read_text())
    checked: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                checked.update(a.asname or a.name for a in stmt.names)
    lazy = set(oanix._LAZY)
    assert lazy == checked
    assert lazy <= set(oanix.__all__)


def test_a_users_program_type_checks_against_the_installed_package(tmp_path: Path) -> None:
    """mypy, run from outside the repository, finds oanix (the editable install is a
    plain path entry, which type checkers read) and sees the real signatures: the one
    deliberate mistake below is reported, and nothing else."""
    mypy = Path(sys.executable).parent / "mypy"
    if not mypy.exists():
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    (tmp_path / "agent.py").write_text(textwrap.dedent("""\
        from oanix import CowFs, Limits, MemFs, Namespace, OanixEnv, WorkspaceFs
        from oanix import RunConfig

        ns = Namespace()
        ns.mount("/tmp", MemFs(max_bytes=1 << 20))
        ns.mount("/w", CowFs(WorkspaceFs(".")))
        text: str = ns.read_text("/tmp/a")
        config = RunConfig(argv=["x"], timeout=5)
        limits = Limits(timeout=3)
        env: OanixEnv
        wrong: int = ns.read_text("/tmp/a")
        """))
    res = subprocess.run([str(mypy), "--strict", "--no-incremental", "agent.py"],
                         cwd=tmp_path, capture_output=True, text=True)
    lines = [ln for ln in res.stdout.splitlines() if ": error:" in ln]
    assert len(lines) == 1 and "agent.py:11:" in lines[0] and "str" in lines[0], res.stdout
