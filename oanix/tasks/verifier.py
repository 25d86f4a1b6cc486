"""The commands a task's test script expects of its container, honoured without Docker.

Nearly every Terminal-Bench 2 ``test.sh`` installs curl and uv, then runs ``uvx -p 3.13
-w pytest==... pytest ... /tests/test_outputs.py -rA``; Terminal-Bench 1's
``run-tests.sh`` does ``uv venv``, ``uv pip install pytest`` and ``uv run pytest``. This
preamble is recognised and replaced: the installers are the Debian stand-ins of
``standins`` (shared with the image build and the agent's shell), and pytest runs in the
sandbox's CPython with the requested pure-Python packages from the host
(``sandbox_python``). Anything else they would install is reported as unsupported, and
the trial is marked ``environment_unsupported`` rather than failing or pretending.

The verifier's root is the agent's final tree, so nothing the verifier trusts may come from
it: its packages and its pytest report live in an area of its own (``TOOLS_AT``), mounted
over whatever the agent left at that path; its pytest never imports from the working
directory, and ``python3 -m pytest`` means the same pytest. Which tests passed is read from
the report its pytest writes there, never from text the tests print (an agent's file that
a test prints could look like a pytest summary).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from ..env import OanixEnv
from ..errors import OanixError
from ..fs.mem import MemFs
from ..fs.workspace import WorkspaceFs
from ..namespace import Namespace
from ..shell.context import Ctx
from ..wasi.python import DIST_PACKAGES
from .sandbox_python import build_site
from .standins import Userland

__all__ = ["TOOLS_AT", "VerifierTools", "install_verifier_tools"]

TOOLS_AT = "/.oanix-verifier"
"""The verifier's own area: its packages (``site/``) and its pytest's report."""
_SITE_AT = TOOLS_AT + "/site"
_REPORT = TOOLS_AT + "/report.json"
# --confcutdir: no conftest.py from above /tests (the agent's tree) is ever loaded.
_PYTEST_FLAGS = ["-p", "no:cacheprovider", "-p", "no:faulthandler", "--capture=no",
                 "--confcutdir=/tests"]
# What ``uv venv`` leaves in the venv's bin: its programs are the verifier's commands.
_VENV_BIN = {"activate": b"", **{name: f'#!/bin/sh\n{name} "$@"\n'.encode()
                                 for name in ("python", "python3", "pytest", "pip", "pip3")}}
_PYTHON_FLAGS = ("-u", "-B", "-I", "-E", "-s", "-S", "-O", "-q")
# Runs pytest in the sandbox. sys.path[0] is the working directory, the agent's: it goes
# before anything is imported, so a planted pytest.py (or any module) cannot stand in for
# the real one. Each test's outcome is written to the report, as -rA would name it.
_PYTEST_MAIN = """\
import sys
del sys.path[0]
import json
import os
import pytest


class OanixReport:
    def __init__(self):
        self.tests = []

    def pytest_collectreport(self, report):
        if report.failed:
            self.tests.append((report.nodeid, "ERROR"))

    def pytest_configure(self, config):
        # Debian's dist-packages (the image's pip installs) for the tests to import, only
        # now that the plugins are loaded: one planted there is never one of them
        if os.path.isdir(DIST_PACKAGES):
            sys.path.append(DIST_PACKAGES)

    def pytest_runtest_logreport(self, report):
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            outcome = ("XPASS" if report.passed else "XFAIL") if xfail else report.outcome
        elif report.failed:
            outcome = "ERROR"
        elif report.skipped:
            outcome = "XFAIL" if xfail else "SKIPPED"
        else:
            return
        self.tests.append((report.nodeid, outcome.upper()))


report = OanixReport()
sys.argv = ["pytest", *ARGS]
try:
    status = pytest.main(ARGS, plugins=[report])
finally:
    with open(REPORT, "w") as f:
        json.dump(report.tests, f)
raise SystemExit(status)
"""


class VerifierTools(Userland):
    """Shell commands for a verifier session: the ``Userland`` installers; ``pytest``,
    ``python3 -m pytest`` and their ``uv run``/``uvx`` forms running the verifier's pytest
    in the sandbox; ``python3``/``python`` otherwise the session's (``python``).

    ``run_python(ctx, code, env)`` runs Python code in the sandbox and returns a status;
    ``python`` is the session's ``python3`` command, which ``python3 -m pytest`` does
    not reach. ``unsupported`` collects what could not be honoured; ``tests`` the
    ``(test, outcome)`` pairs of every pytest run, as pytest's ``-rA`` names them.
    Making one mounts the verifier's area at ``TOOLS_AT`` in ``namespace``.
    Locking: one session, one thread.
    """

    def __init__(self, namespace: Namespace,
                 run_python: Callable[[Ctx, str, dict[str, str]], int],
                 python: Callable[[Ctx, list[str]], int] | None = None) -> None:
        super().__init__(("python3", "python"))
        self.namespace = namespace
        self.run_python = run_python
        self._python = python
        self.tests: list[tuple[str, str]] = []
        # Replacing whatever the agent's tree has there: none of it is ever seen.
        namespace.mount(TOOLS_AT, MemFs())

    def commands(self) -> dict[str, Callable[[Ctx, list[str]], int]]:
        return {**super().commands(), "pytest": self.pytest, "python3": self.python,
                "python": self.python}

    def uv(self, ctx: Ctx, argv: list[str]) -> int:
        args = argv[1:]
        if args[:1] != ["venv"]:
            return super().uv(ctx, argv)
        name = next((a for a in args[1:] if not a.startswith("-")), ".venv")
        venv = ctx.resolve(name)
        self.namespace.makedirs(f"{venv}/bin", exist_ok=True)
        for program, text in _VENV_BIN.items():  # over whatever the agent left there
            self.namespace.write_bytes(f"{venv}/bin/{program}", text)
        return 0

    def tool(self, ctx: Ctx, argv: list[str]) -> int:
        if argv[:1] == ["pytest"]:
            return self.pytest(ctx, argv)
        args = _pytest_module_args(argv) if argv[:1] in (["python"], ["python3"]) else None
        if args is not None:
            return self.pytest(ctx, args)
        return super().tool(ctx, argv)

    def python(self, ctx: Ctx, argv: list[str]) -> int:
        """``python3 -m pytest ...`` is the verifier's pytest; anything else is the
        session's ``python3``."""
        args = _pytest_module_args(argv)
        if args is not None:
            return self.pytest(ctx, args)
        if self._python is None:
            return self._refuse(ctx, f"{argv[0]}: only python3 -m pytest is supported")
        return self._python(ctx, argv)

    def pytest(self, ctx: Ctx, argv: list[str]) -> int:
        try:
            site = build_site(self.packages)
        except OSError as e:
            return self._refuse(ctx, f"cannot prepare the sandbox's packages: {e}")
        for note in site.notes:
            self._note(note)
        if site.unsupported:
            for u in site.unsupported:
                self._refuse(ctx, u)
            return 100
        try:
            self.namespace.mount(_SITE_AT, WorkspaceFs(site.path, readonly=True))
        except OanixError as e:
            return self._refuse(ctx, f"cannot mount the sandbox's packages: {e}")
        args = [*_PYTEST_FLAGS, *argv[1:]]
        code = (f"ARGS = {json.dumps(args)}\nREPORT = {json.dumps(_REPORT)}\n"
                f"DIST_PACKAGES = {json.dumps(DIST_PACKAGES)}\n" + _PYTEST_MAIN)
        status = self.run_python(ctx, code, {**ctx.env, "PYTHONPATH": _SITE_AT})
        report = self._report()
        if report is None:
            # Ended before pytest returned: e.g. code under test called os._exit(0).
            ctx.stderr.write(b"oanix: pytest ended without reporting its tests\n")
            return status or 1
        self.tests.extend(report)
        return status

    def _report(self) -> list[tuple[str, str]] | None:
        """The outcomes the last pytest run wrote, or None if it wrote none."""
        try:
            data = json.loads(self.namespace.read_bytes(_REPORT))
            self.namespace.remove(_REPORT)
            return [(str(name), str(outcome)) for name, outcome in data]
        except (OSError, ValueError, TypeError):
            return None


def _pytest_module_args(argv: list[str]) -> list[str] | None:
    """``python3 [-u ...] -m pytest ARGS`` -> ``["pytest", *ARGS]``; else None."""
    args = argv[1:]
    while args and args[0] in _PYTHON_FLAGS:
        args = args[1:]
    return ["pytest", *args[2:]] if args[:2] == ["-m", "pytest"] else None


def install_verifier_tools(env: OanixEnv) -> VerifierTools:
    """Give ``env``'s shell the verifier's commands and return them (their ``tests`` and
    ``unsupported`` fill as the test script runs): ``python3`` in commands is the
    sandbox's (a solution's ``python3 script.py``), ``python3 -m pytest`` the verifier's
    pytest."""

    def run_python(ctx: Ctx, code: str, env_vars: dict[str, str]) -> int:
        res = env.run_python(code=code, env=env_vars, cwd=ctx.cwd)
        ctx.stdout.write(res.stdout)
        ctx.stderr.write(res.stderr)
        return res.status

    tools = VerifierTools(env.namespace, run_python,
                          python=functools.partial(env._python, env.namespace))
    env.extra_commands.update(tools.commands())
    return tools
