"""The shell's everyday utilities beyond the core builtins, one module per kind.

Importing this package registers every command into ``oanix.shell.builtins.COMMANDS``
(or ``SPECIAL`` for the ones that change the shell's state). Each command is a
``CommandFn`` that reaches files only through its ``Ctx``.
"""

from __future__ import annotations

from .. import builtins  # noqa: F401  (registers first, as before)
from . import archive, bc, digest, files, jq, net, state, text

__all__ = ["archive", "bc", "digest", "files", "jq", "net", "state", "text"]
