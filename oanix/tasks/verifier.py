"""The commands a task's test script expects of its container, honoured without Docker.

Nearly every Terminal-Bench 2 ``test.sh`` installs curl and uv, then runs ``uvx -p 3.13
-w pytest==... pytest ... /tests/test_outputs.py -rA``; Terminal-Bench 1's
``run-tests.sh`` does ``uv venv``, ``uv pip install pytest`` and ``uv run pytest``. This
preamble is recognised and replaced: the installers are the Debian stand-ins of
``standins`` (shared with the image build and the agent's shell), and pytest runs in the
sandbox's CPython with the requested pure-Python packages from the host
(``sandbox_python``). Anything else they would install is reported as unsupported, and
the trial is marked ``environment_unsupported`` rather than failing or pretending.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..errors import OanixError
from ..fs.workspace import WorkspaceFs
from ..namespace import Namespace
from ..shell.interp import Ctx
from .sandbox_python import build_site
from .standins import Userland

__all__ = ["VerifierTools"]

_SITE_AT = "/opt/oanix-site"
# --confcutdir: no conftest.py from above /tests (the agent's tree) is ever loaded.
_PYTEST_FLAGS = ["-p", "no:cacheprovider", "-p", "no:faulthandler", "--capture=no",
                 "--confcutdir=/tests"]


class VerifierTools(Userland):
    """Shell commands for a verifier session: the ``Userland`` installers, with ``uv
    run``/``uvx`` of pytest and ``pytest`` itself running in the sandbox.

    ``run_python(ctx, code, env)`` runs Python code in the sandbox and returns a status.
    ``unsupported`` collects what could not be honoured. Locking: one session, one
    thread.
    """

    def __init__(self, namespace: Namespace,
                 run_python: Callable[[Ctx, str, dict[str, str]], int]) -> None:
        super().__init__(("python3", "python"))
        self.namespace = namespace
        self.run_python = run_python

    def commands(self) -> dict[str, Callable[[Ctx, list[str]], int]]:
        return {**super().commands(), "pytest": self.pytest}

    def tool(self, ctx: Ctx, argv: list[str]) -> int:
        if argv[:1] == ["pytest"] or argv[:3] == ["python", "-m", "pytest"] \
                or argv[:3] == ["python3", "-m", "pytest"]:
            return self.pytest(ctx, ["pytest", *argv[1 if argv[0] == "pytest" else 3:]])
        return super().tool(ctx, argv)

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
        at = f"{_SITE_AT}/{site.path.name}"
        if not self.namespace.exists(at):
            try:
                self.namespace.mount(at, WorkspaceFs(site.path, readonly=True))
            except OanixError as e:
                return self._refuse(ctx, f"cannot mount the sandbox's packages: {e}")
        args = [*_PYTEST_FLAGS, *argv[1:]]
        # sys.path[0] is the working directory, the agent's: drop it before importing
        # anything, so a planted pytest.py (or any module) cannot stand in for the real one.
        code = ("import sys; del sys.path[0]; import pytest; sys.argv = ['pytest', *"
                + json.dumps(args) + "]; raise SystemExit(pytest.main(sys.argv[1:]))")
        env = {**ctx.env, "PYTHONPATH": at}
        return self.run_python(ctx, code, env)
