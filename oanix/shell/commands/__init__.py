"""The shell's commands, one module per kind; a new command goes in the module of its kind
(or a new one listed here) and registers itself with ``@command(name, table)``.

Importing this package registers every command into ``oanix.shell.table.COMMANDS``
(or ``SPECIAL`` for the ones that change the shell's state); ``oanix.shell`` imports
it. Each command is a ``CommandFn`` that reaches files only through its ``Ctx``.
"""

from __future__ import annotations

from . import (
               archive,
               awk,
               bc,
               diff,
               digest,
               files,
               grep,
               jq,
               net,
               process,
               sed,
               sort,
               state,
               system,
               test,
               text,
)

__all__ = ["archive", "awk", "bc", "diff", "digest", "files", "grep", "jq", "net", "process",
           "sed", "sort", "state", "system", "test", "text"]
