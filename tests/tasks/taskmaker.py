"""Small Harbor and Terminal-Bench 1 task directories, written by the tests."""

from __future__ import annotations

from pathlib import Path

CHECK = ('if {cond}; then echo 1 > /logs/verifier/reward.txt; '
         'else echo 0 > /logs/verifier/reward.txt; fi\n')


def harbor_task(root: Path, dockerfile: str | None, solve: str, cond: str,
                files: dict[str, str] | None = None, toml: str = "") -> Path:
    """A Harbor task: its Dockerfile, a solution, and a test.sh rewarding ``cond``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "task.toml").write_text('version = "1.0"\n' + toml)
    (root / "instruction.md").write_text("Do the thing.\n")
    env = root / "environment"
    env.mkdir(exist_ok=True)
    if dockerfile is not None:
        (env / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (env / name).parent.mkdir(parents=True, exist_ok=True)
        (env / name).write_text(text)
    (root / "solution").mkdir(exist_ok=True)
    (root / "solution" / "solve.sh").write_text("#!/bin/bash\n" + solve + "\n")
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / "test.sh").write_text("#!/bin/bash\n" + CHECK.format(cond=cond))
    return root
