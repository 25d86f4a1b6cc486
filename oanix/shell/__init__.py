"""A small POSIX-sh subset over a Namespace, for agent harnesses and task scripts.

::

    shell = Shell(namespace)
    res = shell.exec("mkdir -p /w && cd /w && echo hi > f && cat f | wc -c")
    res.stdout, res.stderr, res.exit_code

State (cwd, variables, exports, functions) persists across ``exec`` calls. Commands are
the builtins and utilities of ``oanix.shell.commands`` (one module per kind: state, text,
files, grep, sed, awk, curl, jq, tar, bc, ...), Python commands given to the shell, or
programs in the namespace's ``PATH`` directories, run through the ``run_program`` hook
(wasm) or, for ``#!`` shell scripts, in a child shell.

Layout, each module importing only modules listed before it: ``cancel`` and ``rx``
(deadlines, regexes with a time limit); ``lexer`` and ``parser`` (the syntax; the parser
hands each lexer its entry points, ``SCRIPTS``, to read the script of a command
substitution); ``context`` (what a command runs with: ``Ctx``, streams, shell state,
control flow); ``patterns``, ``arith`` (pure); ``table`` (the command tables and
``@command``); ``cond`` (``test`` and ``[[ ]]``); ``expand`` (word expansion: parameters,
command substitution, arithmetic, field splitting, globbing, quote removal); ``interp``
(execution); ``commands/`` (every command, registered into the table when imported).

The language is POSIX sh plus the bash features task scripts lean on: ``[[ ]]``,
``(( ))``, ``for ((;;))``, indexed arrays, ``${x:o:l}``, ``${x//a/b}``, ``${x^^}``,
``$'...'``, ``<<<``, ``&>``, brace expansion, ``set -o pipefail``. The stages of a
pipeline run at once (threads) joined by bounded pipes; ``&`` runs a command in the
foreground.

Bounds: ``exec(timeout=...)`` stops the whole command line (status 124, ``timed_out``);
every loop, command and long builtin checks the cancel scope (``oanix.shell.cancel``).
Output kept is capped (``max_output``, ``stdout_truncated``); a variable, a command
substitution or a here-document holds at most ``MAX_VALUE`` characters, a brace expansion
``MAX_BRACE_WORDS`` words, nesting ``MAX_DEPTH`` calls: past a limit the shell stops with
status 2 and a message.
"""

from __future__ import annotations

import threading

from ..service import FileService
from . import commands as _commands  # noqa: F401  (fills the command tables)
from .cancel import CancelScope
from .context import OUTPUT_CAP, CommandFn, Ctx, ExecResult, RunProgram
from .interp import Interp
from .lexer import ShellSyntaxError
from .parser import parse, unparse

__all__ = ["CancelScope", "CommandFn", "Ctx", "ExecResult", "RunProgram", "Shell",
           "ShellSyntaxError", "parse", "unparse"]


class Shell:
    """A shell session over ``namespace``.

    ``env`` gives the initial (exported) variables (``PATH`` defaults to ``/bin``),
    ``cwd`` the working directory, ``commands`` extra Python commands
    (``fn(ctx, argv) -> status``), ``run_program(path, argv, env, cwd, stdin)`` runs a
    wasm program found in the namespace and returns ``(status, stdout, stderr)``
    (``oanix.shell.cancel.remaining()`` tells it the time left); it gets the exported
    variables and the working directory, which the program sees as ``PWD``.
    ``max_output``: bytes
    kept of each of stdout and stderr (None: all).

    Locking: one lock serialises ``exec`` calls; a session runs one script at a time.
    """

    def __init__(self, namespace: FileService, env: dict[str, str] | None = None,
                 cwd: str = "/", commands: dict[str, CommandFn] | None = None,
                 run_program: RunProgram | None = None,
                 max_output: int | None = OUTPUT_CAP) -> None:
        self._lock = threading.Lock()
        self.max_output = max_output
        self._interp = Interp(namespace, env or {}, cwd, dict(commands or {}), run_program)

    @property
    def cwd(self) -> str:
        """The current directory of the session."""
        return self._interp.st.cwd

    @property
    def env(self) -> dict[str, str]:
        """The exported variables (a copy)."""
        return self._interp.st.env()

    def exec(self, script: str, stdin: bytes = b"", *, timeout: float | None = None,
             scope: CancelScope | None = None) -> ExecResult:
        """Run ``script``; a syntax error gives status 2 and a message with its position.

        After ``timeout`` seconds, or when ``scope`` is cancelled or expires, the work
        stops within a check interval: status 124 and ``timed_out``; the session stays
        usable.
        """
        with self._lock:
            return self._interp.exec(script, stdin, timeout, scope, self.max_output)
