"""The Debian stand-ins: installs succeed for what the sandbox provides, and only that."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from taskmaker import harbor_task

from oanix.env import OanixEnv
from oanix.tasks.runner import run_trial
from oanix.tasks.standins import Userland, apt_package_provided
from oanix.wasi import WasiRuntime


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasiRuntime]:
    with WasiRuntime() as rt:
        yield rt


def test_apt_packages_provided_or_not() -> None:
    for pkg in ("python3", "python3-pip", "curl", "wget", "coreutils", "grep", "sed",
                "ca-certificates", "curl=8.5.0-2"):
        assert apt_package_provided(pkg), pkg
    for pkg in ("postgresql", "gcc", "libssl-dev", "nodejs"):
        assert not apt_package_provided(pkg), pkg


def test_installers_in_a_shell(runtime: WasiRuntime) -> None:
    land = Userland(("python3",))
    with OanixEnv(runtime=runtime, workspace_at="/", env={"HOME": "/root"},
                  commands=land.commands()) as env:
        ok = env.exec("apt-get update && apt-get install -y curl python3 ca-certificates"
                      " && apt-get clean && apt update && apt install -y grep"
                      " && pip install pytest && pip3 install packaging"
                      " && curl -LsSf https://astral.sh/uv/0.9.5/install.sh | sh"
                      " && . $HOME/.local/bin/env && source $HOME/.local/bin/env"
                      " && uv venv && uv pip install pytest && echo done")
        assert ok.exit_code == 0, ok.stderr_text
        assert ok.stdout_text.strip().endswith("done")
        assert land.unsupported == []
        bad = env.exec("apt-get install -y postgresql gcc curl")
        assert bad.exit_code != 0
        assert "postgresql" in bad.stderr_text and "gcc" in bad.stderr_text
        assert [u for u in land.unsupported if "postgresql" in u]
        assert [u for u in land.unsupported if "gcc" in u]
        assert not [u for u in land.unsupported if "curl" in u]
        reqs = env.exec("printf 'pytest\\n# a comment\\npackaging  # why\\n' > /req.txt && "
                        "pip install --no-cache-dir -i https://pypi.example/simple "
                        "-r /req.txt && uv pip install -r /req.txt")
        assert reqs.exit_code == 0, reqs.stderr_text
        assert "packaging" in land.packages and len(land.unsupported) == 2
        net = env.exec("curl -fsSL https://example.com/x")
        assert net.exit_code != 0
    no_pkg = Userland()
    with OanixEnv(runtime=runtime, commands=no_pkg.commands()) as env:
        assert env.exec("pip install surely-not-a-package-here").exit_code != 0
        assert any("surely-not-a-package-here" in u for u in no_pkg.unsupported)


def test_dockerfile_installs_build_and_missing_packages_are_named(
        tmp_path: Path, runtime: WasiRuntime) -> None:
    good = harbor_task(
        tmp_path / "good",
        "FROM ubuntu:24.04\nRUN apt-get update && apt-get install -y curl python3\n"
        "RUN curl -LsSf https://astral.sh/uv/install.sh | sh\n"
        "RUN . $HOME/.local/bin/env && pip install pytest\nWORKDIR /app\n",
        "apt-get install -y python3 && echo hi > /app/out.txt",
        "grep -q hi /app/out.txt")
    result = run_trial(good, "oracle", runtime=runtime)
    assert result.status == "passed", (result.unsupported, result.error,
                                       result.verifier_output)
    bad = harbor_task(
        tmp_path / "bad",
        "FROM ubuntu:24.04\nRUN apt-get update && apt-get install -y postgresql nodejs\n",
        "true", "true")
    result = run_trial(bad, "oracle", runtime=runtime)
    assert result.status == "environment_unsupported"
    text = " ".join(result.unsupported)
    assert "postgresql" in text and "nodejs" in text
    agent_side = harbor_task(tmp_path / "agent", None, "apt-get install -y redis-server",
                             "true")
    result = run_trial(agent_side, "oracle", runtime=runtime)
    assert result.status == "environment_unsupported"
    assert "redis-server" in " ".join(result.unsupported)


def test_packages_pip_installs_are_importable_by_the_sandboxs_python(
        tmp_path: Path, runtime: WasiRuntime) -> None:
    # As in the image: `pip install` in the Dockerfile puts the package in Debian's
    # dist-packages, which the sandbox's python3 has on sys.path; the agent's own
    # `pip install` does the same in its layer.
    task = harbor_task(
        tmp_path / "pip",
        "FROM python:3.12-slim\nRUN pip install --no-cache-dir attrs\nWORKDIR /app\n",
        "pip install packaging && python3 -c 'import attrs, packaging.version as v; "
        "open(\"/app/out.txt\", \"w\").write(attrs.__name__ + str(v.Version(\"1.0\")))'",
        "grep -qx attrs1.0 /app/out.txt")
    result = run_trial(task, "oracle", runtime=runtime)
    assert result.status == "passed", (result.unsupported, result.error,
                                       result.agent_output, result.verifier_output)
    assert "/app/out.txt" in result.changes.added
    assert not [p for p in result.changes.added if "/attrs/" in p]  # the image's
    assert [p for p in result.changes.added if "/packaging/" in p]  # the agent's
    # the verifier's pytest imports what the image installed, too (once its own plugins
    # are loaded: see tests/security/test_task_attacks.py)
    task = harbor_task(
        tmp_path / "pip-tests",
        "FROM python:3.12-slim\nRUN pip install attrs\nWORKDIR /app\n", "true",
        "python3 -m pytest -q /tests/test_imports.py")
    (task / "tests" / "test_imports.py").write_text(
        "def test_the_image_package():\n    import attrs\n    assert attrs.define\n")
    result = run_trial(task, "oracle", runtime=runtime)
    assert result.status == "passed", (result.verifier_output, result.tests)
    assert ("test_imports.py::test_the_image_package", "PASSED") in [
        (name.rsplit("/", 1)[-1], outcome) for name, outcome in result.tests]


def test_a_venv_as_tasks_make_one(runtime: WasiRuntime) -> None:
    land = Userland(("python3",))
    with OanixEnv(runtime=runtime, workspace_at="/", env={"HOME": "/root"},
                  commands=land.commands()) as env:
        res = env.exec("mkdir -p /app && cd /app && python3 -m venv .venv && "
                       ". .venv/bin/activate && echo $VIRTUAL_ENV && pip install attrs && "
                       "python -m pip install packaging && "
                       "python -c 'import attrs, packaging; print(\"imported\")' && "
                       "deactivate && echo ${VIRTUAL_ENV:-out}")
        assert res.exit_code == 0, res.stderr_text
        assert res.stdout_text.split() == ["/app/.venv", "imported", "out"]
        assert env.namespace.read_text("/app/.venv/pyvenv.cfg").startswith("home = ")
    with OanixEnv(runtime=runtime) as env:  # no pip here: the venv's pip says so
        res = env.exec("python3 -m venv /tmp/v && /tmp/v/bin/pip install x")
        assert res.exit_code == 127 and "/usr/bin/pip" in res.stderr_text
        assert env.exec("python3 -m venv").exit_code == 2


def test_an_agent_installs_pytest_and_runs_its_own_tests(
        tmp_path: Path, runtime: WasiRuntime) -> None:
    # pytest under WASI (no dup): the sandbox's Python gives it PYTEST_DEFAULTS, and the
    # agent's /dev/null exists, as pytest's logging opens it
    task = harbor_task(
        tmp_path / "own-tests",
        "FROM python:3.12-slim\nWORKDIR /app\n",
        "printf 'def test_it():\\n    print(1)\\n    assert 1 + 1 == 2\\n' > test_it.py && "
        "pip install pytest && python3 -m pytest -q > out.txt 2>&1; cat out.txt",
        "grep -q '1 passed' /app/out.txt")
    result = run_trial(task, "oracle", runtime=runtime)
    assert result.status == "passed", (result.agent_output, result.verifier_output)
