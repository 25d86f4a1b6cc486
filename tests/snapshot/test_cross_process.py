"""Restore in another process: the same files, bytes, mount table, task status and logs,
and the same next command gives the same result in both processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from oanix import LogsFs, MapFs, OanixEnv, TaskFs, TaskInfo

from .helpers import env_files

ROOT = Path(__file__).resolve().parents[2]

# What the other process prints: the state after restoring, then after the next command.
CHILD = """
import json, sys
from oanix import OanixEnv
from tests.snapshot.test_cross_process import observe
env = OanixEnv.restore(sys.argv[1])
before = observe(env)
r = env.exec(sys.argv[2])
print(json.dumps({"before": before, "result": [r.exit_code, r.stdout.hex(), r.stderr.hex()],
                  "after": observe(env)}))
env.close()
"""

FIRST = """mkdir -p out && for i in 3 1 2; do echo "line $i" >> out/log.txt; done
printf '%s\\n' "$GREETING from $(pwd)" > out/hello.txt; echo first done"""
NEXT = """sort out/log.txt | tee out/sorted.txt; wc -l out/log.txt; cat /data/cfg.json | jq -r .mode
echo "$GREETING again" >> out/hello.txt; ls -R . | head -20; echo err >&2; exit 3"""


def observe(env: OanixEnv) -> dict[str, Any]:
    """What must be equal in both processes, as JSON."""
    return {
        "files": {p: None if v is None else v.hex() for p, v in env_files(env).items()},
        "mounts": [[m.path, type(m.service).__name__, m.root, m.create, m.readonly]
                   for m in env.namespace.mounts()],
        "task": None if env.task is None else env.task.status().to_dict(),
        "result": None if env.task is None else env.task.result(),
        "logs": [env.logs.stdout().hex(), env.logs.stderr().hex(),
                 [e.to_dict() for e in env.logs.events()]],
        "vars": env.vars, "cwd": env.cwd, "id": env.id,
    }


def test_restore_in_another_process_and_run_on(tmp_path: Path) -> None:
    task = TaskFs(TaskInfo(id="xproc", instruction="sort the lines"))
    logs = LogsFs()
    with OanixEnv(task=task, logs=logs, env={"GREETING": "hi"}, cwd="/workspace",
                  mounts={"/data": MapFs({"cfg.json": '{"mode": "fast"}'})}) as env:
        assert env.exec(FIRST).ok
        task.start()
        env.namespace.write_text("/task/result.json", '{"partial": true}')
        logs.event("info", "first step", n=1)
        logs.write_stdout("first step\n")
        path = tmp_path / "env.oanix"
        env.snapshot(path)
        state = json.loads(json.dumps(observe(env)))

        child = subprocess.run([sys.executable, "-c", CHILD, str(path), NEXT],
                               capture_output=True, text=True, cwd=ROOT, timeout=120,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert child.returncode == 0, child.stderr
        there = json.loads(child.stdout)
        assert there["before"] == state  # restored: the same environment

        r = env.exec(NEXT)  # the same next command here
        assert r.exit_code == 3
        assert there["result"] == [r.exit_code, r.stdout.hex(), r.stderr.hex()]
        assert there["after"] == json.loads(json.dumps(observe(env)))
        assert b"line 1\nline 2\nline 3\n" in r.stdout
