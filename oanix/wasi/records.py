"""The values of one WASI run: what it is given (``RunConfig``) and what it gives back.

All of them are frozen attrs classes, safe to share between threads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import attrs

from .. import paths
from ..changes import Changes
from ..errors import InvalidArgument
from .receipt import Receipt

__all__ = ["DEFAULT_MAX_DISK", "DEFAULT_MAX_DISK_FILES", "TRAP_STATUS", "NamespacePath",
           "Preopen", "RunConfig", "RunResult", "Trap", "TrapKind"]

TrapKind = Literal["timeout", "fuel", "memory", "disk", "wasm"]
TRAP_KINDS: Final = ("timeout", "fuel", "memory", "disk", "wasm")
# The exit status a trapped run reports to a shell or a CLI (as GNU timeout, abort, OOM,
# and SIGXFSZ, the signal for a file size limit: 128 + 25).
TRAP_STATUS: Final = {"timeout": 124, "fuel": 126, "wasm": 134, "memory": 137, "disk": 153}
DEFAULT_MAX_DISK: Final = 1 << 30
"""``RunConfig.max_disk``'s default: 1 GiB."""
DEFAULT_MAX_DISK_FILES: Final = 100_000
"""``RunConfig.max_disk_files``'s default."""


@attrs.frozen
class NamespacePath:
    """A path in the run's namespace, given where a value could also be literal data.

    ``RunConfig(stdin=NamespacePath("/in/data.txt"))`` feeds that file to the guest's
    stdin; a plain ``str`` there would be the stdin text itself.
    """

    path: str = attrs.field(converter=paths.normalize)


@attrs.frozen
class Preopen:
    """How one namespace directory is shown to the guest.

    ``guest`` is the guest path (default: the namespace path). ``writable``: ``None``
    follows the mounts (writable when some service below accepts writes); ``False`` makes
    the preopen read-only for the guest even over writable services; ``True`` makes it
    writable for the guest, while a write the namespace refuses is still reported in
    ``RunResult.changes.refused``.
    """

    guest: str | None = None
    writable: bool | None = None


def _argv(value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str | bytes):
        raise InvalidArgument(f"argv must be a list of str, not {type(value).__name__}")
    out = tuple(value)
    for a in out:
        if not isinstance(a, str) or "\x00" in a:
            raise InvalidArgument(f"argv entries must be str without NUL bytes: {a!r}")
    return out


def _env(value: Mapping[str, str] | None) -> Mapping[str, str]:
    env = dict(value or {})
    for k, v in env.items():
        if (not isinstance(k, str) or not isinstance(v, str) or not k or "=" in k
                or "\x00" in k or "\x00" in v):
            raise InvalidArgument(f"bad environment entry {k!r}={v!r}: names are non-empty "
                                  "str without '=' or NUL, values str without NUL")
    return env


def _stdin(value: bytes | bytearray | memoryview | str | NamespacePath | None
           ) -> bytes | str | NamespacePath | None:
    if value is None or isinstance(value, bytes | str | NamespacePath):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise InvalidArgument(f"stdin must be bytes, str, NamespacePath or None, not "
                          f"{type(value).__name__}")


def _cwd(value: str | None) -> str | None:
    return None if value is None else paths.normalize(value)


def _preopens(value: Mapping[str, str | Preopen] | None
              ) -> Mapping[str, Preopen] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgument("preopens must be a mapping {namespace_path: guest_path | "
                              "Preopen} or None")
    out: dict[str, Preopen] = {}
    for ns_path, spec in value.items():
        p = paths.normalize(ns_path)
        if isinstance(spec, str):
            spec = Preopen(spec)
        elif not isinstance(spec, Preopen):
            raise InvalidArgument(f"preopen {ns_path!r}: expected a guest path or a "
                                  f"Preopen, not {type(spec).__name__}")
        guest = paths.normalize(spec.guest if spec.guest is not None else p)
        out[p] = Preopen(guest, spec.writable)
    guests = [s.guest or "" for s in out.values()]
    if len(set(guests)) != len(guests):
        raise InvalidArgument(f"two preopens share a guest path: {sorted(guests)}")
    return out


def _positive(name: str, *, allow_float: bool = False) -> Any:
    def check(_inst: object, _attr: object, value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not (
                isinstance(value, int) or (allow_float and isinstance(value, float))):
            ok = False
        else:
            ok = value > 0 and math.isfinite(value)
        if not ok:
            raise InvalidArgument(f"{name} must be a positive "
                                  f"{'number' if allow_float else 'int'} or None: {value!r}")
    return check


def _max_output(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise InvalidArgument(f"max_output must be an int >= 0 or None: {value!r}")


@attrs.frozen(eq=False)
class RunConfig:
    """How to run a module.

    * ``argv``: the guest's arguments after ``argv[0]``; ``argv0`` is ``argv[0]``
      (default: the module's name, e.g. ``hello.wasm``). ``argv=["x", "y"]`` runs
      ``hello.wasm x y``.
    * ``env``: the guest's environment (nothing is inherited from the host).
    * ``stdin``: ``bytes``, ``str`` (UTF-8), ``NamespacePath`` (that file's content), or
      ``None`` for an empty stdin. The host's stdin is never used.
    * ``cwd``: the guest working directory, passed as ``PWD``. A wasi-libc program (C,
      Rust, CPython) starts in ``/`` whatever ``PWD`` says, so its relative paths resolve
      from ``/`` (``data/x`` is ``/data/x``) until it calls ``chdir`` itself;
      ``run_python`` makes the interpreter do that chdir before the program runs, and
      oanix's C fixtures (``wasi_fixtures/lib/follow_pwd.c``) do it in a constructor. A
      relative write of a program that does not lands beside the mounts at the guest
      root: it is never kept, and is reported in ``changes.refused``.
    * ``preopens``: ``None`` shows every top-level directory of the namespace at the same
      guest path; or a mapping ``{namespace_path: guest_path | Preopen}``.
    * ``fuel``: instructions (wasmtime fuel units) the guest may execute; ``None``:
      unlimited.
    * ``memory_limit``: bytes of linear memory; a ``memory.grow`` beyond it fails.
    * ``timeout``: wall-clock seconds (checked about every 10 ms in guest code; a guest
      waiting in a host call, a sleep or a poll, is stopped at the deadline too).
    * ``max_output``: bytes kept of each of stdout and stderr; the rest is dropped and
      ``RunResult.stdout_truncated`` / ``stderr_truncated`` say so. ``None``: keep all.
    * ``max_disk`` / ``max_disk_files``: the most bytes / entries (files, directories,
      links) the guest may hold in any one writable preopen while it runs, when the
      quotas of the services behind it (``MemFs(max_bytes=, max_files=)``) do not say
      less; for a host directory preopened as it is, what it held before the run plus
      these. Measured every tick while the guest runs: one over its budget stops the run
      with ``Trap(kind="disk")`` (see ``oanix.wasi.quota``). ``None``: no ceiling (the
      quotas still apply). Defaults: 1 GiB, 100,000 entries.
    * ``receipt``: record the run in a ``Receipt`` (``RunResult.receipt``): the sha256 of
      the module, the stdin, each input file below the preopens (hashed before the run)
      and each output; off by default, since hashing the inputs costs a read of each.
    """

    argv: tuple[str, ...] = attrs.field(default=(), converter=_argv)
    argv0: str | None = attrs.field(default=None, validator=lambda _i, _a, v: _argv(
        () if v is None else (v,)))
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_env)
    stdin: bytes | str | NamespacePath | None = attrs.field(default=None, converter=_stdin)
    cwd: str | None = attrs.field(default=None, converter=_cwd)
    preopens: Mapping[str, Preopen] | None = attrs.field(default=None, converter=_preopens)
    fuel: int | None = attrs.field(default=None, validator=_positive("fuel"))
    memory_limit: int | None = attrs.field(default=None,
                                           validator=_positive("memory_limit"))
    timeout: float | None = attrs.field(default=None,
                                        validator=_positive("timeout", allow_float=True))
    max_output: int | None = attrs.field(default=None, validator=_max_output)
    max_disk: int | None = attrs.field(default=DEFAULT_MAX_DISK,
                                       validator=_positive("max_disk"))
    max_disk_files: int | None = attrs.field(default=DEFAULT_MAX_DISK_FILES,
                                             validator=_positive("max_disk_files"))
    receipt: bool = False


@attrs.frozen
class Trap:
    """Why a run stopped abnormally.

    ``kind``: ``"timeout"`` (the wall-clock limit), ``"fuel"`` (the instruction budget),
    ``"memory"`` (the memory limit; see ``WasiRuntime`` for what is detected),
    ``"disk"`` (a writable preopen went over its budget while the guest ran: the message
    names the preopen and the budget; see ``RunConfig.max_disk``), or ``"wasm"`` (any
    other trap: unreachable, out-of-bounds access, stack overflow, an invalid exit
    status...). ``code`` is the wasmtime trap code name (``"OUT_OF_FUEL"``,
    ``"INTERRUPT"``, ``"UNREACHABLE"``, ...) or None; ``message`` is one line;
    ``backtrace`` is wasmtime's full text when there is one.
    """

    kind: TrapKind
    code: str | None
    message: str
    backtrace: str = ""


@attrs.frozen
class RunResult:
    """What a run gave back.

    ``exit_code`` is the guest's exit status (0 when ``_start`` returns), or None when it
    was stopped by a trap. ``trap`` says why it stopped abnormally; a guest that exits on
    its own after a refused allocation has both its ``exit_code`` and a ``"memory"``
    trap. ``duration`` is the wall-clock time of the whole run in seconds (namespace sync
    included); ``fuel_consumed`` counts the instructions executed (a lower bound after a
    timeout). ``changes`` lists what the guest changed in the namespace, and the changes
    the namespace refused. ``receipt`` is the run's ``Receipt`` when
    ``RunConfig.receipt`` asked for one.
    """

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration: float = 0.0
    fuel_consumed: int = 0
    trap: Trap | None = None
    changes: Changes = attrs.field(factory=Changes)
    receipt: Receipt | None = None

    @property
    def status(self) -> int:
        """The exit status a shell sees: the guest's, or for a trap ``TRAP_STATUS``: 124
        timeout, 126 fuel, 134 other wasm trap, 137 memory, 153 disk."""
        if self.trap is not None:
            return TRAP_STATUS[self.trap.kind]
        assert self.exit_code is not None
        return self.exit_code

    @property
    def ok(self) -> bool:
        """Whether the guest exited with status 0 and did not trap."""
        return self.exit_code == 0 and self.trap is None

    @property
    def stdout_text(self) -> str:
        """``stdout`` decoded as UTF-8 (invalid bytes replaced)."""
        return self.stdout.decode("utf-8", "replace")

    @property
    def stderr_text(self) -> str:
        """``stderr`` decoded as UTF-8 (invalid bytes replaced)."""
        return self.stderr.decode("utf-8", "replace")
