"""The tasks CLI: help, one-line errors, batch folders, JSON-only output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from taskmaker import harbor_task

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *(env or {}).get("EXTRA_PATH", "").split(os.pathsep)]).rstrip(os.pathsep)}
    return subprocess.run([sys.executable, "-m", "oanix.tasks", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=full_env)


def test_every_option_has_help() -> None:
    for sub in ("run", "batch"):
        res = cli(sub, "--help")
        assert res.returncode == 0
        options = [line.strip() for line in res.stdout.splitlines()
                   if line.strip().startswith("--") and not line.strip().startswith("--help")]
        assert options
        for line in options:  # the text is on the same line or the next one
            idx = res.stdout.index(line)
            tail = res.stdout[idx + len(line):].split("\n  -", 1)[0]
            assert len(line.split()) > 2 or tail.strip(), (sub, line)


def test_oracle_without_solution_is_a_one_line_error(tmp_path: Path) -> None:
    task = harbor_task(tmp_path / "t", "FROM x\n", "true", "true")
    (task / "solution" / "solve.sh").unlink()
    res = cli("run", str(task))
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "no solution" in res.stderr
    assert "Traceback" not in res.stderr


def test_batch_folders_bad_task_row_and_json_only(tmp_path: Path) -> None:
    root = tmp_path / "tasks"
    harbor_task(root / "good", "FROM x\nWORKDIR /app\n", "echo hi > /app/o.txt",
                "grep -q hi /app/o.txt")
    bad = root / "broken"
    bad.mkdir(parents=True)
    (bad / "task.toml").write_text("[agent\n")
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "chatty.py").write_text(
        "def agent(env, instruction):\n"
        "    print('thinking out loud')\n"
        "    env.exec('echo hi > /app/o.txt')\n")
    out = tmp_path / "job"
    res = cli("batch", str(root), "--agent", "chatty:agent", "--output", str(out), "--json",
              env={"EXTRA_PATH": str(agents)})
    assert res.returncode == 1, res.stderr  # the broken task is an error row
    data = json.loads(res.stdout)  # the standard output is the JSON document alone
    rows = {r["task"]: r for r in data}
    assert rows["good"]["status"] == "passed"
    assert rows["broken"]["status"] == "error" and "TOML" in rows["broken"]["error"]
    assert json.loads((out / "results.json").read_text()) == data
    assert (out / "good" / "verifier.log").is_file()
    assert json.loads((out / "good" / "changes.json").read_text())["added"]
    assert "thinking out loud" in (out / "good" / "agent.log").read_text()
    plain = cli("batch", str(root), cwd=tmp_path)
    assert plain.stdout.strip().splitlines()[-1].startswith("results in jobs/")
    assert "\r" not in plain.stderr  # no progress bar when not on a terminal


def test_batch_task_name_exclude_and_attempts(tmp_path: Path) -> None:
    root = tmp_path / "tasks"
    for name in ("alpha-one", "alpha-two", "beta"):
        harbor_task(root / name, "FROM x\nWORKDIR /app\n", "echo hi > /app/o.txt",
                    "grep -q hi /app/o.txt")
    out = tmp_path / "job"
    res = cli("batch", str(root), "--task-name", "alpha-*", "--task-name", "beta",
              "--exclude", "*-two", "--n-attempts", "2", "--output", str(out), "--json")
    assert res.returncode == 0, res.stderr
    rows = sorted((r["task"], r["attempt"], r["status"]) for r in json.loads(res.stdout))
    assert rows == [("alpha-one", 1, "passed"), ("alpha-one", 2, "passed"),
                    ("beta", 1, "passed"), ("beta", 2, "passed")]
    assert (out / "alpha-one__2" / "result.json").is_file()
    table = cli("batch", str(root), "--exclude", "alpha-*", "--n-attempts", "2",
                "--output", str(tmp_path / "job2"))
    lines = [line.split() for line in table.stdout.splitlines() if line.startswith("beta")]
    assert [line[:3] for line in lines] == [["beta", "1", "passed"], ["beta", "2", "passed"]]
    none = cli("batch", str(root), "--task-name", "gamma*")
    assert none.returncode == 2 and "matches" in none.stderr
    zero = cli("batch", str(root), "--n-attempts", "0")
    assert zero.returncode == 2 and "--n-attempts" in zero.stderr


def test_receipts_in_run_and_batch(tmp_path: Path) -> None:
    root = tmp_path / "tasks"
    harbor_task(root / "good", "FROM x\nWORKDIR /app\n", "echo hi > /app/o.txt",
                "grep -q hi /app/o.txt")
    one = cli("run", str(root / "good"), "--json", "--receipts")
    assert one.returncode == 0, one.stderr
    receipt = json.loads(one.stdout)["receipt"]
    assert receipt["task"]["name"] == "good" and receipt["status"] == "passed"
    assert [o["path"] for o in receipt["outputs"]] == ["/app/o.txt"]
    out = tmp_path / "job"
    batch = cli("batch", str(root), "--output", str(out), "--receipts")
    assert batch.returncode == 0, batch.stderr
    stored = json.loads((out / "good" / "receipt.json").read_text())
    assert stored["task"]["sha256"] == receipt["task"]["sha256"]
    plain = cli("batch", str(root), "--output", str(tmp_path / "plain"), "--json")
    assert json.loads(plain.stdout)[0]["receipt"] is None
    assert not (tmp_path / "plain" / "good" / "receipt.json").exists()
