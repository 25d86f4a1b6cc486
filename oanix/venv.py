"""``python3 -m venv DIR``: a virtual environment as the sandbox's Python makes one.

CPython for WASI has no ``venv`` module (nothing to copy, no links to make), and tasks and
agents make one first thing (``python3 -m venv .venv && . .venv/bin/activate && pip
install ...``). The sandbox has one interpreter, so a virtual environment is the layout
tools look for: ``pyvenv.cfg``, ``bin/activate`` (sets ``VIRTUAL_ENV`` and ``PATH``,
defines ``deactivate``), and ``bin/python``, ``python3``, ``pip``... as ``#!`` scripts
that run the shell's ``python3`` and ``pip``. What ``pip`` installs goes where it always
does (the task runner's stand-in: ``/usr/lib/python3/dist-packages``), so it is
importable inside the environment and out, as with ``--system-site-packages``.
"""

from __future__ import annotations

import shlex

from . import paths
from .service import FileService
from .wasi.python import PYTHON_VERSION

__all__ = ["make_venv"]

_RUN = '#!/bin/sh\nexec {tool} "$@"\n'

_ACTIVATE = """\
# made by oanix: see oanix/venv.py
if [ -n "${{_OLD_VIRTUAL_PATH:-}}" ]; then PATH="$_OLD_VIRTUAL_PATH"; fi
VIRTUAL_ENV={root}
export VIRTUAL_ENV
_OLD_VIRTUAL_PATH="$PATH"
PATH="$VIRTUAL_ENV/bin:$PATH"
export PATH
deactivate () {{
    PATH="$_OLD_VIRTUAL_PATH"
    export PATH
    unset VIRTUAL_ENV _OLD_VIRTUAL_PATH
    unset -f deactivate
}}
"""


def make_venv(ns: FileService, root: str) -> None:
    """Lay out a virtual environment at ``root`` (absolute) in ``ns``.

    Raises:
        FsError: ``ns`` refused a directory or file (read-only, over its quota...).
    """
    major_minor = ".".join(PYTHON_VERSION.split(".")[:2])
    bin_dir = paths.join(root, "bin")
    ns.makedirs(bin_dir, exist_ok=True)
    ns.makedirs(paths.join(root, "lib", f"python{major_minor}", "site-packages"),
                exist_ok=True)
    ns.write_text(paths.join(root, "pyvenv.cfg"),
                  f"home = /usr/bin\ninclude-system-site-packages = true\n"
                  f"version = {PYTHON_VERSION}\n")
    for name in ("python", "python3", f"python{major_minor}"):
        ns.write_text(paths.join(bin_dir, name), _RUN.format(tool="/usr/bin/python3"))
    for name in ("pip", "pip3"):
        ns.write_text(paths.join(bin_dir, name), _RUN.format(tool="/usr/bin/pip"))
    ns.write_text(paths.join(bin_dir, "activate"), _ACTIVATE.format(root=shlex.quote(root)))
