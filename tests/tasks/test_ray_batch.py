"""Batches on Ray: a local Ray cluster started by the batch, a worker killed in the middle of
a trial (the trial runs again), and results equal to a local batch's."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from taskmaker import harbor_task
from test_cli import ROOT, cli

from oanix.tasks.on_ray import pack_task, unpack_and_run

# The agent: the first trial to start records its process id and waits to be killed (the
# test kills that Ray worker with SIGKILL); every start is logged; then it does the task.
AGENT = '''
import os, pathlib, time

def agent(env, instruction):
    state = pathlib.Path(os.environ["OANIX_RAY_TEST_DIR"])
    with open(state / "starts.log", "a") as log:
        log.write(f"{os.getpid()}\\n")
    try:
        fd = os.open(state / "victim.pid", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        pass
    else:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(120)  # killed long before this ends
    env.exec("echo hi > /app/o.txt")
'''


def _tasks(root: Path) -> None:
    for name in ("one", "two", "three"):
        harbor_task(root / name, "FROM x\nWORKDIR /app\n", "echo hi > /app/o.txt",
                    "grep -q hi /app/o.txt")
    bad = root / "broken"
    bad.mkdir(parents=True)
    (bad / "task.toml").write_text("[agent\n")


def _rows(data: list[dict[str, object]]) -> dict[str, tuple[object, ...]]:
    return {str(r["task"]): (r["status"], r["reward"], r["attempt"], r["passed"])
            for r in data}


def test_ray_batch_retries_a_killed_worker_and_matches_a_local_batch(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is the oanix[ray] extra")
    root, state, agents = tmp_path / "tasks", tmp_path / "state", tmp_path / "agents"
    _tasks(root)
    state.mkdir()
    agents.mkdir()
    (agents / "victim.py").write_text(AGENT)
    env = {"EXTRA_PATH": str(agents)}
    os.environ["OANIX_RAY_TEST_DIR"] = str(state)
    try:
        killed: list[int] = []

        def kill_the_victim() -> None:
            pid_file = state / "victim.pid"
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                if pid_file.is_file() and pid_file.read_text():
                    pid = int(pid_file.read_text())
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_the_victim, daemon=True)
        killer.start()
        out = tmp_path / "ray-job"
        res = cli("batch", str(root), "--agent", "victim:agent", "--ray", "--concurrency", "2",
                  "--output", str(out), "--json", env=env)
        killer.join(1)
        assert killed, f"no trial started on Ray: {res.stderr[-2000:]}"
        assert res.returncode == 1, res.stderr[-2000:]  # the broken task is an error row
        assert res.stdout.startswith("["), res.stderr[-3000:]  # Ray's notices: stderr
        on_ray = json.loads(res.stdout)
        # the killed trial started again on another worker: one start more than trials
        starts = (state / "starts.log").read_text().split()
        assert len(starts) == 4 and str(killed[0]) in starts
        assert json.loads((out / "results.json").read_text()) == on_ray

        local_out = tmp_path / "local-job"
        local = cli("batch", str(root), "--agent", "victim:agent", "--concurrency", "2",
                    "--output", str(local_out), "--json", env=env)
        assert local.returncode == 1, local.stderr[-2000:]
        here = json.loads(local.stdout)
    finally:
        del os.environ["OANIX_RAY_TEST_DIR"]
    assert _rows(on_ray) == _rows(here)
    assert _rows(on_ray)["one"][0] == "passed" and _rows(on_ray)["broken"][0] == "error"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in local_out.iterdir())
    for r in on_ray:
        if r["task"] != "broken":
            assert r["changes"]["added"] == ["/app/o.txt"]


def test_without_ray_the_cli_says_how_to_get_it(tmp_path: Path) -> None:
    root = tmp_path / "tasks"
    harbor_task(root / "one", "FROM x\n", "true", "true")
    args = ["batch", str(root), "--ray", "--output", str(tmp_path / "o")]
    code = ("import sys; sys.modules['ray'] = None\n"  # makes `import ray` fail, as if absent
            "from oanix.tasks.__main__ import main\n"
            f"sys.exit(main({args!r}))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip() == "oanix-tasks: error: --ray needs Ray: pip install 'oanix[ray]'"


def test_a_shipped_task_cannot_write_outside_the_workers_directory(tmp_path: Path) -> None:
    # a task directory is packed with its links as links; unpacking on the worker refuses
    # members that would land outside its temporary directory
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("t/../../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"no"))
    with pytest.raises(tarfile.FilterError):
        unpack_and_run(buf.getvalue(), "t", "oracle", 1)
    link_task = harbor_task(tmp_path / "linky", "FROM x\n", "true", "true")
    (link_task / "environment" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(tarfile.FilterError):
        unpack_and_run(pack_task(link_task), "linky", "oracle", 1)


def test_a_packed_task_runs_as_it_does_locally(tmp_path: Path) -> None:
    task = harbor_task(tmp_path / "hello", "FROM x\nWORKDIR /app\n", "echo hi > /app/o.txt",
                       "grep -q hi /app/o.txt")
    result = unpack_and_run(pack_task(task), "hello", "oracle", 3)
    assert result.status == "passed" and result.attempt == 3
