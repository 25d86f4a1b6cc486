"""The real Harbor CLI grades an example task with oanix as its environment, no Docker.

A Python >= 3.12 venv (Harbor's floor) gets oanix, editable from this checkout, with the
``harbor`` extra, in one pip call (so the extra's pins resolve together); or
``$OANIX_HARBOR_VENV`` names one made already. Skipped, saying why, only when there is
no Python >= 3.12 or harbor cannot be installed.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "examples" / "tasks" / "word-count"


def _python312() -> str | None:
    candidates = [os.environ.get("OANIX_PYTHON312", ""), sys.executable,
                  *(shutil.which(f"python3.{minor}") or "" for minor in range(14, 11, -1)),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python")),
                          reverse=True)]
    for exe in filter(None, candidates):
        try:
            out = subprocess.run([exe, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                                 capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if out.stdout.strip() == "True":
            return exe
    return None


@pytest.fixture(scope="session")
def harbor_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    given = os.environ.get("OANIX_HARBOR_VENV")
    if given:
        yield Path(given)
        return
    python = _python312()
    if python is None:
        pytest.skip("no Python >= 3.12 to install harbor with (set OANIX_PYTHON312)")
    venv = tmp_path_factory.mktemp("harbor") / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-e",
                          f"{ROOT}[harbor]"], capture_output=True, text=True, timeout=1500)
    if pip.returncode != 0:
        lines = (pip.stderr or pip.stdout).strip().splitlines()
        pytest.skip(f"harbor cannot be installed: {lines[-1] if lines else pip.returncode}")
    yield venv


def _harbor(venv: Path, agent: str, jobs: Path, task: Path = TASK) -> dict[str, float]:
    res = subprocess.run([str(venv / "bin" / "harbor"), "run", "-p", str(task), "-a", agent,
                          "-e", "oanix.harbor:OanixEnvironment", "-o", str(jobs), "-y"],
                         capture_output=True, text=True, timeout=900, cwd=jobs.parent)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    results = glob.glob(str(jobs / "*" / f"{task.name}__*" / "result.json"))
    assert len(results) == 1, res.stdout[-3000:]
    data = json.loads(Path(results[0]).read_text())
    assert data.get("exception_info") is None, data["exception_info"]
    return dict(data["verifier_result"]["rewards"])


@pytest.mark.timeout(2400)
def test_harbor_grades_with_oanix(harbor_venv: Path, tmp_path: Path) -> None:
    assert _harbor(harbor_venv, "oracle", tmp_path / "oracle") == {"reward": 1.0}
    assert _harbor(harbor_venv, "nop", tmp_path / "nop") == {"reward": 0.0}
    python = TASK.parent / "csv-summary"  # its solution runs python3 summarise.py
    assert _harbor(harbor_venv, "oracle", tmp_path / "py-oracle", python) == {"reward": 1.0}
    steps = TASK.parent / "stock-steps"  # multi-step: Harbor's own step loop and rule
    assert _harbor(harbor_venv, "oracle", tmp_path / "s-oracle", steps) == {"reward": 1.0}
    assert _harbor(harbor_venv, "nop", tmp_path / "s-nop", steps) == {"reward": 0.0}


# Run in the harbor venv: the environment's own calls, as Harbor makes them.
ENV_CHECK = """\
import asyncio, sys, tempfile
from pathlib import Path
from harbor.models.task.config import EnvironmentConfig
from harbor.models.trial.paths import TrialPaths
from oanix.harbor import OanixEnvironment

async def main(task: Path, tmp: Path) -> None:
    env = OanixEnvironment(environment_dir=task / "environment", environment_name="t",
                           session_id="t__s", trial_paths=TrialPaths(tmp / "trial"),
                           task_env_config=EnvironmentConfig())
    caps = env.capabilities
    assert not caps.gpus and not caps.mounted and caps.disable_internet
    await env.start(force_build=False)
    r = await env.exec("pwd; echo $GREETING", cwd="/tmp", env={"GREETING": "hi"})
    assert (r.return_code, r.stdout) == (0, "/tmp\\nhi\\n"), r
    r = await env.exec("exit 3")
    assert r.return_code == 3
    try:
        await env.exec("sleep 30", timeout_sec=1)
    except RuntimeError as e:
        assert "timed out" in str(e)
    else:
        raise AssertionError("no timeout")
    src = tmp / "up"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("data")
    await env.upload_dir(src, "/work/in")
    await env.upload_file(src / "sub" / "f.txt", "/work/one.txt")
    r = await env.exec("cat /work/in/sub/f.txt /work/one.txt > /work/out.txt")
    await env.download_dir("/work", tmp / "down")
    assert (tmp / "down" / "out.txt").read_text() == "datadata"
    await env.download_file("/work/in/sub/f.txt", tmp / "f2.txt")
    assert (tmp / "f2.txt").read_text() == "data"
    await env.stop(delete=True)
    print("ok")

asyncio.run(main(Path(sys.argv[1]), Path(tempfile.mkdtemp())))
"""


@pytest.mark.timeout(2400)
def test_exec_timeout_and_file_transfer(harbor_venv: Path, tmp_path: Path) -> None:
    check = tmp_path / "check.py"
    check.write_text(ENV_CHECK)
    res = subprocess.run([str(harbor_venv / "bin" / "python"), str(check), str(TASK)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]
