"""The README is executable documentation: every example in it runs here.

Each ```python block runs in a fresh interpreter; each line of a ```sh block runs in a
shell, with the commands a reader installed (``.venv/bin/...``) taken from the
interpreter running the tests. Blocks fenced as ```text are synopses and are not run.
The Quick start's test command is the one ``.ci/run`` runs, character for character.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent
INSTALL = re.compile(r"^python3 -m venv \.venv && \.venv/bin/pip install -q -e (\S+) && ")


def _blocks(lang: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of each fenced block in ``lang``."""
    out = []
    for m in re.finditer(rf"^```{lang}\n(.*?)^```$", README, re.M | re.S):
        out.append((README.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


def _commands() -> list[tuple[int, str]]:
    out = []
    for line_no, text in _blocks("sh"):
        for i, line in enumerate(text.splitlines()):
            if line.strip() and not line.lstrip().startswith("#"):
                out.append((line_no + 1 + i, line))
    return out


@pytest.fixture()
def reader_dir(tmp_path: Path) -> Path:
    """A working directory like a reader's clone: the repository's examples and fixtures,
    and a ``repo`` directory for the first example to mount."""
    for name in ("examples", "wasi_fixtures"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "repo").mkdir()
    return tmp_path


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT)}


def test_the_readme_has_examples_to_run() -> None:
    assert len(_blocks("python")) >= 3 and len(_commands()) >= 4


@pytest.mark.parametrize(("line", "code"), _blocks("python"),
                         ids=[f"line{n}" for n, _ in _blocks("python")])
def test_python_block_runs(line: int, code: str, reader_dir: Path) -> None:
    res = subprocess.run([sys.executable, "-c", code], cwd=reader_dir, env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"README line {line}:\n{res.stderr}"


@pytest.mark.parametrize(("line", "command"), _commands(),
                         ids=[f"line{n}" for n, _ in _commands()])
def test_shell_command_runs(line: int, command: str, reader_dir: Path) -> None:
    m = INSTALL.match(command)
    if m is not None and m.group(1) == "'.[test]'":
        # The test command: what CI runs (running it here would run this test again).
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
        assert command in ci.splitlines(), f"README line {line} differs from .ci/run"
        return
    if m is not None:  # installed already: run what follows the install
        command = command[m.end():]
    command = command.replace(".venv/bin/", f"{BIN}/")
    res = subprocess.run(["bash", "-c", command], cwd=reader_dir, env=_env(),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"README line {line}: {command}\n{res.stdout}{res.stderr}"
