"""Run one command line with the real tools (bash in a temp dir) and with the oanix shell
(over a MemFs holding the same files), for the differential tests of the utilities.

Import it explicitly (``from shell_compare import compare``); it is not a test module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from oanix import MemFs, Namespace
from oanix.shell import ExecResult, Shell

__all__ = ["compare", "make_shell", "need", "run_both"]

FILES: dict[str, bytes] = {
    "a.txt": b"apple\nbanana\ncherry\napple pie\nDate 2024\n",
    "nums.txt": b"10\n2\n33\n2\n-5\n100\n",
    "csv.txt": b"name,age,city\nalice,30,paris\nbob,25,rome\ncarol,35,oslo\n",
    "nonl.txt": b"no newline",
    "bin.dat": bytes(range(256)) * 3,
    "dir/x.py": b"print('x')\n",
    "dir/y.txt": b"y\n",
    "dir/sub/z.txt": b"zzz\n",
}


def need(*tools: str) -> None:
    """Skip the test, saying why, when a reference tool is not installed."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"reference tool(s) not installed: {', '.join(missing)} "
                    f"(apt-get install -y {' '.join(missing)})")


def make_shell(tmp: Path, files: dict[str, bytes] | None = None) -> Shell:
    """A shell in /work over a MemFs holding ``files``; the same files go under ``tmp``."""
    ns = Namespace()
    ns.mount("/", MemFs())
    ns.makedirs("/work")
    ns.makedirs("/tmp")
    for name, data in (FILES if files is None else files).items():
        ns.makedirs(os.path.dirname("/work/" + name), exist_ok=True)
        ns.write_bytes("/work/" + name, data)
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return Shell(ns, env={"LC_ALL": "C", "HOME": "/work", "TZ": "UTC"}, cwd="/work")


def run_both(cmd: str, tmp: Path, files: dict[str, bytes] | None = None,
             stdin: bytes = b"") -> tuple[subprocess.CompletedProcess[bytes], ExecResult]:
    """(real bash's result, the oanix shell's result) for ``cmd``."""
    shell = make_shell(tmp, files)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC",
           "HOME": str(tmp)}
    real = subprocess.run(["bash", "-c", cmd], cwd=tmp, env=env, input=stdin,
                          capture_output=True, timeout=60)
    return real, shell.exec(cmd, stdin)


def compare(cmd: str, tmp: Path, files: dict[str, bytes] | None = None,
            stdin: bytes = b"", stderr: bool = False) -> None:
    """Assert stdout and exit status (and stderr if asked) are the same as real bash's."""
    real, ours = run_both(cmd, tmp, files, stdin)
    got = (ours.stdout, ours.exit_code) + ((ours.stderr,) if stderr else ())
    want = (real.stdout, real.returncode) + ((real.stderr,) if stderr else ())
    assert got == want, (f"stderr ours: {ours.stderr_text!r} "
                         f"real: {real.stderr.decode(errors='replace')!r}")
