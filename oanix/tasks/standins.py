"""Debian userland stand-ins: the installers a task's Dockerfile and scripts call.

Task images are Debian with ``apt-get``, ``pip`` and ``uv``; their Dockerfiles, solutions
and test scripts install what they need (``apt-get install -y curl python3``, ``pip
install pytest``, ``curl -LsSf https://astral.sh/uv/install.sh | sh; source
$HOME/.local/bin/env``). Without Docker or network an install succeeds exactly when the
sandbox already provides the package: the sandbox's CPython (``python3``, ``pip``), the
commands oanix's shell ships (``coreutils``, ``grep``, ``sed``, ``gawk``...), the ``curl``
and ``wget`` stand-ins here, and pure-Python distributions installed on the host (checked
with ``sandbox_python``). Anything else is recorded in ``unsupported``, naming each
package, so the trial is ``environment_unsupported`` rather than failing or pretending.

The same ``Userland`` serves the image build, the agent's shell and the verifier.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from .. import paths
from ..service import FileService
from ..shell.context import Ctx
from ..shell.table import COMMANDS, SPECIAL
from ..wasi.python import DIST_PACKAGES
from .sandbox_python import build_site, python_version_note, requirement_name

__all__ = ["Userland", "apt_package_provided"]

# Debian packages the sandbox provides whatever the shell ships.
_ALWAYS = frozenset({
    "python3", "python3-minimal", "python3-pip", "python3-venv", "python-is-python3",
    "python3-setuptools", "python3-wheel", "python3-dev", "python3-full", "pipx",
    "curl", "wget", "ca-certificates", "gnupg", "lsb-release", "apt-transport-https",
    "software-properties-common", "locales", "tzdata", "bash", "dash", "sh",
})
# Debian packages the sandbox provides when the shell has their command.
_BY_COMMAND = {"coreutils": "ls", "findutils": "find", "grep": "grep", "sed": "sed",
               "gawk": "awk", "mawk": "awk", "diffutils": "diff", "git": "git", "jq": "jq",
               "tar": "tar", "gzip": "gzip", "unzip": "unzip", "zip": "zip", "vim": "vim",
               "nano": "nano", "less": "less", "file": "file", "bc": "bc", "tree": "tree",
               "procps": "ps", "psmisc": "killall", "make": "make", "patch": "patch",
               "xxd": "xxd", "time": "time", "util-linux": "kill", "hostname": "hostname"}
_PIP_VALUE_OPTIONS = frozenset({"-i", "--index-url", "--extra-index-url", "-c", "--constraint",
                                "-f", "--find-links", "-t", "--target", "--prefix", "--root",
                                "--python-version", "--platform", "--trusted-host",
                                "--cache-dir", "--src", "--upgrade-strategy", "-p",
                                "--python"})
_UV_INSTALLER = re.compile(r"^https?://(astral\.sh/uv/|github\.com/astral-sh/uv/)")
# What ``curl <uv installer> | sh`` runs: the environment file ``source`` expects.
_UV_INSTALL_SCRIPT = (b'mkdir -p "${HOME:-/root}/.local/bin" && '
                      b': > "${HOME:-/root}/.local/bin/env"\n')


def apt_package_provided(name: str, shell_commands: Iterable[str] = ()) -> bool:
    """Whether the sandbox provides Debian package ``name`` (``name=version`` too)."""
    name = name.split("=")[0].split(":")[0]
    if name in _ALWAYS:
        return True
    have = {*COMMANDS, *SPECIAL, *shell_commands}
    command = _BY_COMMAND.get(name)
    return command is not None and command in have


def _install_site(ns: FileService, site: Path) -> None:
    """Copy the files of ``site`` (a directory ``build_site`` made: trusted) into
    ``DIST_PACKAGES`` of ``ns``, as pip would into the image."""
    for top, _dirs, files in os.walk(site):
        rel = os.path.relpath(top, site)
        at = DIST_PACKAGES if rel == "." else paths.join(DIST_PACKAGES, *rel.split(os.sep))
        ns.makedirs(at, exist_ok=True)
        for name in files:
            ns.write_bytes(paths.join(at, name), Path(top, name).read_bytes())


def _python_package(apt_name: str) -> str | None:
    """``python3-numpy`` -> ``numpy``: a Debian Python package is its distribution."""
    m = re.match(r"^python3-(.+)$", apt_name.split("=")[0])
    return m.group(1) if m else None


class Userland:
    """Shell commands standing in for Debian's installers: ``apt-get``, ``apt``, ``pip``,
    ``pip3``, ``uv``, ``uvx`` (installs only), ``curl`` and ``wget``.

    ``packages`` collects the Python requirements installed (pytest first: the test
    harness's); ``unsupported`` what cannot be honoured; ``notes`` remarks. ``extra``
    names shell commands the session adds (``python3`` and the like). Locking: one
    session, one thread.
    """

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.extra = frozenset(extra)
        self.packages: list[str] = ["pytest"]
        self._installed: set[str] = set()  # copied into the tree by this session
        self.unsupported: list[str] = []
        self.notes: list[str] = []

    def commands(self) -> dict[str, Callable[[Ctx, list[str]], int]]:
        return {"apt-get": self.apt, "apt": self.apt, "curl": self.curl, "wget": self.wget,
                "uv": self.uv, "uvx": self.uvx, "pip": self.pip, "pip3": self.pip}

    def _refuse(self, ctx: Ctx, what: str) -> int:
        if what not in self.unsupported:
            self.unsupported.append(what)
        ctx.stderr.write(f"oanix: {what}\n".encode())
        return 100

    def apt(self, ctx: Ctx, argv: list[str]) -> int:
        args = [a for a in argv[1:] if not a.startswith("-")]
        if not args or args[0] in ("update", "upgrade", "clean", "autoclean", "autoremove",
                                   "remove", "purge", "dist-upgrade"):
            return 0
        if args[0] != "install":
            return self._refuse(ctx, f"{argv[0]} {args[0]} is not supported without Docker")
        missing: list[str] = []
        wanted: list[str] = []
        for pkg in args[1:]:
            if apt_package_provided(pkg, self.extra):
                continue
            py = _python_package(pkg)
            if py is not None:
                wanted.append(py)
            else:
                missing.append(pkg.split("=")[0])
        status = 0
        for pkg in missing:
            status = self._refuse(ctx, f"apt package {pkg}: not provided by the sandbox")
        if wanted and self._install(ctx, wanted) != 0:
            status = 100
        return status

    def curl(self, ctx: Ctx, argv: list[str]) -> int:
        urls = [a for a in argv[1:] if "://" in a]
        if urls and all(_UV_INSTALLER.match(u) for u in urls):
            ctx.stdout.write(_UV_INSTALL_SCRIPT)  # uv is built in: only its env file
            return 0
        if len(argv) > 1 and argv[1] in ("--version", "-V"):
            ctx.stdout.write(b"curl 8.0.0 (oanix stand-in)\n")
            return 0
        ctx.stderr.write(b"curl: (6) no network in the sandbox\n")
        return 6

    def wget(self, ctx: Ctx, argv: list[str]) -> int:
        ctx.stderr.write(b"wget: no network in the sandbox\n")
        return 4

    def pip(self, ctx: Ctx, argv: list[str]) -> int:
        args = argv[1:]
        if args[:1] == ["install"]:
            reqs: list[str] = []
            rest = iter(args[1:])
            for a in rest:
                if a in ("-r", "--requirement"):
                    try:
                        text = ctx.read_file(next(rest, "")).decode()
                    except OSError as e:
                        return self._refuse(ctx, f"{argv[0]} install -r: {e}")
                    reqs.extend(r for line in text.splitlines()
                                if (r := line.split("#", 1)[0].strip())
                                and not r.startswith("-"))
                elif a in ("-e", "--editable"):
                    return self._refuse(ctx, f"{argv[0]} install -e: editable installs are "
                                             "not supported")
                elif a in _PIP_VALUE_OPTIONS:
                    next(rest, None)
                elif not a.startswith("-"):
                    reqs.append(a)
            return self._install(ctx, reqs)
        if args[:1] in (["--version"], ["-V"]):
            ctx.stdout.write(b"pip 24.0 (oanix stand-in)\n")
            return 0
        if args[:1] in (["list"], ["freeze"], ["cache"], ["config"]):
            return 0
        return self._refuse(ctx, f"{argv[0]} {' '.join(args)} is not supported")

    def _install(self, ctx: Ctx, reqs: Iterable[str]) -> int:
        """Install ``reqs`` into the tree and record them; each must be a pure-Python
        distribution on the host. (pytest is in ``packages`` from the start, for the
        verifier, but is installed into the tree only when asked for.)"""
        new = [r for r in reqs if r not in self._installed]
        if not new:
            return 0
        try:
            site = build_site(new)
        except OSError as e:
            return self._refuse(ctx, f"cannot prepare the sandbox's packages: {e}")
        for note in site.notes:
            self._note(note)
        bad = {requirement_name(u.partition(":")[0])[0] for u in site.unsupported}
        status = 0
        for u in site.unsupported:
            status = self._refuse(ctx, f"python package {u}")
        try:
            _install_site(ctx.namespace, site.path)
        except OSError as e:
            return self._refuse(ctx, f"cannot install into {DIST_PACKAGES}: {e}")
        self._installed.update(new)
        self._want(r for r in new if requirement_name(r)[0] not in bad)
        return status

    def uv(self, ctx: Ctx, argv: list[str]) -> int:
        args = argv[1:]
        sub = args[0] if args else ""
        if sub == "venv":
            name = next((a for a in args[1:] if not a.startswith("-")), ".venv")
            venv = ctx.resolve(name)
            ctx.namespace.makedirs(f"{venv}/bin", exist_ok=True)
            ctx.namespace.write_bytes(f"{venv}/bin/activate", b"")
            return 0
        if sub in ("init", "sync", "lock", "--version", "self", "cache", "python"):
            return 0
        if sub == "add":
            return self._install(ctx, (a for a in args[1:] if not a.startswith("-")))
        if sub == "pip":
            return self.pip(ctx, ["uv pip", *args[1:]])
        if sub == "tool" and args[1:2] == ["install"]:
            return self._install(ctx, (a for a in args[2:] if not a.startswith("-")))
        if sub == "run":
            return self.tool(ctx, self.options(args[1:]))
        return self._refuse(ctx, f"uv {sub} is not supported")

    def uvx(self, ctx: Ctx, argv: list[str]) -> int:
        return self.tool(ctx, self.options(argv[1:]))

    def options(self, args: list[str]) -> list[str]:
        """Strip uv's options, remembering ``-w``/``--with`` packages and noting a
        ``-p``/``--python`` the sandbox's Python does not satisfy."""
        i = 0
        while i < len(args) and args[i].startswith("-"):
            opt = args[i]
            if opt in ("-w", "--with", "-p", "--python", "--from"):
                if i + 1 < len(args):
                    self._option(opt, args[i + 1])
                i += 2
                continue
            if opt.startswith(("--with=", "--python=")):
                self._option(*opt.split("=", 1))
            i += 1
        return args[i:]

    def _option(self, opt: str, value: str) -> None:
        if opt in ("-w", "--with"):
            self._want([value])
        elif opt in ("-p", "--python"):
            self._note(python_version_note(value))

    def _note(self, note: str | None) -> None:
        if note is not None and note not in self.notes:
            self.notes.append(note)

    def _want(self, reqs: Iterable[str]) -> None:
        for r in reqs:
            if r not in self.packages:
                self.packages.append(r)

    def tool(self, ctx: Ctx, argv: list[str]) -> int:
        """``uv run``/``uvx`` of a tool: a plain command runs in the shell."""
        if not argv:
            return self._refuse(ctx, "uv run/uvx without a command")
        if argv[0] in ("python", "python3"):
            return ctx.run(argv)
        return self._refuse(ctx, f"uvx {argv[0]} is not supported")

    def __repr__(self) -> str:
        return f"Userland(packages={self.packages!r}, unsupported={self.unsupported!r})"
