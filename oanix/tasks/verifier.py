"""The commands a task's test script expects of its container, honoured without Docker.

Nearly every Terminal-Bench 2 ``test.sh`` installs curl and uv, then runs ``uvx -p 3.13
-w pytest==... pytest ... /tests/test_outputs.py -rA``; Terminal-Bench 1's
``run-tests.sh`` does ``uv venv``, ``uv pip install pytest`` and ``uv run pytest``. This
preamble is recognised and replaced: the installers succeed without doing anything, and
pytest runs in the sandbox's CPython with the requested pure-Python packages from the
host (``sandbox_python``). Anything else they would install is reported as unsupported,
and the trial is marked ``environment_unsupported`` rather than failing or pretending.

The verifier's root is the agent's final tree, so nothing the verifier trusts may come from
it: its packages and its pytest report live in an area of its own (``TOOLS_AT``), mounted
over whatever the agent left at that path; its pytest never imports from the working
directory, and ``python3 -m pytest`` means the same pytest. Which tests passed is read from
the report its pytest writes there, never from text the tests print (an agent's file that
a test prints could look like a pytest summary).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .. import paths
from ..errors import OanixError
from ..fs.mem import MemFs
from ..fs.workspace import WorkspaceFs
from ..namespace import Namespace
from ..shell.interp import Ctx
from .sandbox_python import build_site

__all__ = ["TOOLS_AT", "VerifierTools"]

# What an installer may be asked for because the preamble wants it; all else is refused.
_HARNESS_PACKAGES = {"curl", "ca-certificates", "python3", "python3-pip", "python3-venv",
                     "python-is-python3", "git", "wget", "bash", "coreutils", "procps"}
_UV_INSTALLER = re.compile(r"^https?://(astral\.sh/uv/|github\.com/astral-sh/uv/)")
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
import pytest


class OanixReport:
    def __init__(self):
        self.tests = []

    def pytest_collectreport(self, report):
        if report.failed:
            self.tests.append((report.nodeid, "ERROR"))

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


class VerifierTools:
    """Shell commands for a verifier session: ``apt-get``, ``apt``, ``curl``, ``uv``,
    ``uvx``, ``pip``, ``pip3``, ``pytest``, ``python3`` and ``python``.

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
        self.namespace = namespace
        self.run_python = run_python
        self._python = python
        self.packages: list[str] = ["pytest"]
        self.unsupported: list[str] = []
        self.notes: list[str] = []
        self.tests: list[tuple[str, str]] = []
        # Replacing whatever the agent's tree has there: none of it is ever seen.
        namespace.mount(TOOLS_AT, MemFs())

    def commands(self) -> dict[str, Any]:
        return {"apt-get": self.apt, "apt": self.apt, "curl": self.curl, "uv": self.uv,
                "uvx": self.uvx, "pip": self.pip, "pip3": self.pip, "pytest": self.pytest,
                "python3": self.python, "python": self.python}

    def _refuse(self, ctx: Ctx, what: str) -> int:
        self.unsupported.append(what)
        ctx.stderr.write(f"oanix: {what}\n".encode())
        return 100

    def apt(self, ctx: Ctx, argv: list[str]) -> int:
        args = [a for a in argv[1:] if not a.startswith("-")]
        if not args or args[0] in ("update", "clean", "autoremove"):
            return 0
        if args[0] in ("install",):
            extra = [p for p in args[1:] if p.split("=")[0] not in _HARNESS_PACKAGES]
            if extra:
                return self._refuse(ctx, f"{argv[0]} install {' '.join(extra)} is not "
                                         "supported without Docker")
            return 0
        return self._refuse(ctx, f"{argv[0]} {args[0]} is not supported without Docker")

    def curl(self, ctx: Ctx, argv: list[str]) -> int:
        urls = [a for a in argv[1:] if "://" in a]
        if urls and all(_UV_INSTALLER.match(u) for u in urls):
            ctx.stdout.write(b":\n")  # the uv installer: uv is built in
            return 0
        ctx.stderr.write(b"curl: no network in the verifier sandbox\n")
        return 6

    def pip(self, ctx: Ctx, argv: list[str]) -> int:
        args = argv[1:]
        if args[:1] == ["install"]:
            self._want(p for p in args[1:] if not p.startswith("-"))
            return 0
        return self._refuse(ctx, f"{argv[0]} {' '.join(args)} is not supported")

    def uv(self, ctx: Ctx, argv: list[str]) -> int:
        args = argv[1:]
        sub = args[0] if args else ""
        if sub == "venv":
            name = next((a for a in args[1:] if not a.startswith("-")), ".venv")
            venv = paths.join(ctx.cwd, name)
            self.namespace.makedirs(paths.join(venv, "bin"), exist_ok=True)
            for program, text in _VENV_BIN.items():  # over whatever the agent left there
                self.namespace.write_bytes(paths.join(venv, "bin", program), text)
            return 0
        if sub in ("init", "sync", "lock"):
            return 0
        if sub == "add":
            self._want(a for a in args[1:] if not a.startswith("-"))
            return 0
        if sub == "pip":
            return self.pip(ctx, ["uv pip", *args[1:]])
        if sub == "run":
            rest = self._options(args[1:])
            return self._tool(ctx, rest)
        return self._refuse(ctx, f"uv {sub} is not supported")

    def uvx(self, ctx: Ctx, argv: list[str]) -> int:
        return self._tool(ctx, self._options(argv[1:]))

    def _options(self, args: list[str]) -> list[str]:
        """Strip uv's options, remembering ``-w``/``--with`` packages."""
        i = 0
        while i < len(args) and args[i].startswith("-"):
            opt = args[i]
            if opt in ("-w", "--with", "-p", "--python", "--from"):
                if opt in ("-w", "--with") and i + 1 < len(args):
                    self._want([args[i + 1]])
                i += 2
                continue
            if opt.startswith("--with="):
                self._want([opt.split("=", 1)[1]])
            i += 1
        return args[i:]

    def _want(self, reqs: Any) -> None:
        for r in reqs:
            if r not in self.packages:
                self.packages.append(r)

    def _tool(self, ctx: Ctx, argv: list[str]) -> int:
        if not argv:
            return self._refuse(ctx, "uv run/uvx without a command")
        if argv[0] == "pytest":
            return self.pytest(ctx, argv)
        if argv[0] in ("python", "python3"):
            args = _pytest_module_args(argv)
            if args is not None:
                return self.pytest(ctx, args)
            return self._refuse(ctx, "uv run python is not supported; run python3 directly")
        return self._refuse(ctx, f"uvx {argv[0]} is not supported")

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
        self.notes.extend(n for n in site.notes if n not in self.notes)
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
                + _PYTEST_MAIN)
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
