"""The MCP tools' work over one environment, synchronous and free of the protocol: each
method takes the tool's arguments and returns what the tool answers (a TypedDict, which
the server sends as structured content and as JSON text), or raises a typed oanix error.

Every path is a path of the environment's namespace (relative ones from its working
directory): a tool reaches nothing but what the environment mounts, and each mount's
own rules (read-only, quotas, a host directory's confinement) apply, because every
operation goes through ``env.namespace``. ``exec`` and ``run_python`` run under the
environment's limits and capability policies, as ``env.exec`` and ``env.run_python`` do.
"""

from __future__ import annotations

import base64 as b64
import binascii
from typing import Annotated

from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads nested ones below 3.12

from .. import paths
from ..env import OanixEnv
from ..errors import InvalidArgument
from ..service import Stat
from ..shell.context import resolve

__all__ = ["DEFAULT_TIMEOUT", "MAX_ENTRIES", "MAX_READ", "EnvTools"]

DEFAULT_TIMEOUT = 120.0
"""Seconds a command or a Python run may take when neither the call nor the
environment's limits say (so no call holds a worker forever)."""
MAX_READ = 1 << 20
"""Bytes one ``read`` returns at most (ask again from ``offset`` for more)."""
MAX_ENTRIES = 10_000
"""Entries one ``list`` or ``glob`` returns at most."""


class ExecOutput(TypedDict):
    exit_status: int
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    timed_out: bool


class PythonOutput(ExecOutput):
    trap: str | None


class ReadOutput(TypedDict):
    path: str
    size: int
    offset: int
    encoding: str
    content: str
    eof: bool


class WriteOutput(TypedDict):
    path: str
    written: int
    size: int


class StatOutput(TypedDict):
    path: str
    name: str
    is_dir: bool
    size: int
    mtime: float
    readonly: bool


class ListOutput(TypedDict):
    path: str
    entries: list[StatOutput]
    truncated: bool


class GlobOutput(TypedDict):
    pattern: str
    paths: list[str]
    truncated: bool


NsPath = Annotated[str, Field(description="a path in the environment's namespace "
                                         "(relative: from its working directory)")]
Timeout = Annotated[float | None, Field(gt=0, description="seconds (default: the "
                                                          "environment's limit)")]


def _stat(path: str, st: Stat) -> StatOutput:
    return StatOutput(path=path, name=st.name, is_dir=st.is_dir, size=st.size,
                      mtime=st.mtime, readonly=st.readonly)


class EnvTools:
    """The tools over ``env``: ``exec``, ``read``, ``write``, ``list_dir``, ``stat``,
    ``glob`` and ``run_python``.

    ``timeout`` bounds every command line and Python run (a call may ask for less, not
    more); by default the environment's ``Limits.timeout``, else ``DEFAULT_TIMEOUT``.

    Locking: none of its own. Every method is one call into the environment, which
    allows it from several threads at once: each ``exec`` is its own shell session,
    wasm runs over the namespace are serialised by the runtime, and namespace file
    operations run in parallel under their services' locks (see ``OanixEnv`` and
    ``Namespace``).
    """

    def __init__(self, env: OanixEnv, *, timeout: float | None = None,
                 max_read: int = MAX_READ, max_entries: int = MAX_ENTRIES) -> None:
        self.env = env
        self.timeout = timeout or env.limits.timeout or DEFAULT_TIMEOUT
        self.max_read = max_read
        self.max_entries = max_entries

    def _path(self, path: str) -> str:
        return resolve(self.env.cwd, path)

    def _timeout(self, asked: float | None) -> float:
        return self.timeout if asked is None else min(asked, self.timeout)

    def exec(self, command: Annotated[str, Field(description="a shell command line (sh)")],
             timeout: Timeout = None,
             cwd: Annotated[str | None, Field(description="the working directory "
                                                          "(default: the environment's)")] = None,
             stdin: Annotated[str | None, Field(description="text fed to stdin")] = None,
             ) -> ExecOutput:
        """Run a shell command line in the environment, as `sh -c` would: builtins,
        pipelines, the programs in /bin and python3, under the environment's limits and
        capability policies. Output is UTF-8 text (invalid bytes replaced)."""
        res = self.env.exec(command, stdin=stdin, timeout=self._timeout(timeout),
                            cwd=None if cwd is None else self._path(cwd))
        return ExecOutput(exit_status=res.exit_code, stdout=res.stdout_text,
                          stderr=res.stderr_text, stdout_truncated=res.stdout_truncated,
                          stderr_truncated=res.stderr_truncated, timed_out=res.timed_out)

    def read(self, path: NsPath,
             offset: Annotated[int, Field(ge=0, description="the first byte")] = 0,
             length: Annotated[int | None, Field(ge=0, description="bytes to read (at most "
                                                 f"{MAX_READ}; default: to the end)")] = None,
             ) -> ReadOutput:
        """Read a file: UTF-8 text (encoding "utf-8"), or base64 (encoding "base64") when
        the bytes are not valid UTF-8. eof says whether the content reaches the end."""
        where = self._path(path)
        size = self.env.namespace.stat(where).size
        want = self.max_read if length is None else min(length, self.max_read)
        with self.env.namespace.open(where, "rb") as f:
            f.seek(offset)
            data = f.read(want)
        try:
            encoding, content = "utf-8", data.decode("utf-8")
        except UnicodeDecodeError:
            encoding, content = "base64", b64.b64encode(data).decode("ascii")
        return ReadOutput(path=where, size=size, offset=offset, encoding=encoding,
                          content=content, eof=offset + len(data) >= size)

    def write(self, path: NsPath,
              content: Annotated[str, Field(description="text, or base64 with base64=true")],
              base64: Annotated[bool, Field(description="content is base64")] = False,
              append: Annotated[bool, Field(description="append instead of replace")] = False,
              ) -> WriteOutput:
        """Create or replace a file (or append to it); its directory must exist."""
        where = self._path(path)
        if base64:
            try:
                data = b64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidArgument(f"write {where}: content is not valid base64") from None
        else:
            data = content.encode("utf-8")
        with self.env.namespace.open(where, "ab" if append else "wb") as f:
            f.write(data)
        return WriteOutput(path=where, written=len(data),
                           size=self.env.namespace.stat(where).size)

    def list_dir(self, path: NsPath = ".") -> ListOutput:
        """The entries of a directory, sorted by name."""
        where = self._path(path)
        found = sorted(self.env.namespace.scandir(where), key=lambda st: st.name)
        kept = found[:self.max_entries]
        return ListOutput(path=where, truncated=len(found) > len(kept),
                          entries=[_stat(paths.join(where, st.name), st) for st in kept])

    def stat(self, path: NsPath) -> StatOutput:
        """What a file or directory is: its size (bytes, or entries of a directory),
        modification time and whether its mount refuses writes."""
        where = self._path(path)
        return _stat(where, self.env.namespace.stat(where))

    def glob(self, pattern: Annotated[str, Field(
            description="* ? [...] match within a name, ** any number of directories; "
                        "relative: from the working directory")]) -> GlobOutput:
        """The paths matching a pattern, sorted."""
        where = self._path(pattern)
        found = self.env.namespace.glob(where)
        return GlobOutput(pattern=where, paths=found[:self.max_entries],
                          truncated=len(found) > self.max_entries)

    def run_python(self, code: Annotated[str, Field(description="Python source")],
                   timeout: Timeout = None,
                   stdin: Annotated[str | None, Field(description="text fed to stdin")] = None,
                   ) -> PythonOutput:
        """Run Python code in the sandbox (CPython for WASI) over the namespace, under
        the environment's limits. trap says why a run stopped abnormally (timeout, fuel,
        memory, disk, wasm)."""
        res = self.env.run_python(code=code, timeout=self._timeout(timeout),
                                  stdin=None if stdin is None else stdin.encode("utf-8"))
        trap = None if res.trap is None else f"{res.trap.kind}: {res.trap.message}"
        return PythonOutput(exit_status=res.status, stdout=res.stdout_text,
                            stderr=res.stderr.decode("utf-8", "replace"),
                            stdout_truncated=res.stdout_truncated,
                            stderr_truncated=res.stderr_truncated,
                            timed_out=res.trap is not None and res.trap.kind == "timeout",
                            trap=trap)
