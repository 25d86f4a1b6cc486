"""Replay: run a receipt's run again and say whether it gave the same.

``replay(receipt, namespace)`` finds the module by its digest in the runtime's module
cache, checks the inputs the caller provides against the receipt's (before running: an
input that differs is reported, and the run still happens, so the report shows what the
difference did), runs with the receipt's argv, working directory and limits, and compares
every output file, the exit status, stdout and stderr. A receipt holds the NAMES of the
environment variables only, so their values come from the caller (``env``); a missing one
is an error before anything runs. The stdin likewise (``stdin``), checked against its
digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ..errors import InvalidArgument
from ..service import FileService
from .receipt import LIMIT_NAMES, FileDigest, Receipt, digest_inputs, input_roots, sha256
from .records import Preopen, RunConfig, RunResult
from .runtime import WasiRuntime

__all__ = ["ReplayReport", "Verdict", "replay"]

Verdict = Literal["same", "different", "missing", "extra"]


@attrs.frozen
class ReplayReport:
    """What a replay found. ``inputs`` and ``outputs`` list every path that is not the
    same (``different``, ``missing``: in the receipt only, ``extra``: in the replay
    only); ``matches`` is true when the inputs, the outputs, the exit status, stdout and
    stderr are all the same. ``result`` is the replay's own run, with its receipt."""

    inputs: tuple[tuple[str, Verdict], ...]
    outputs: tuple[tuple[str, Verdict], ...]
    status_matches: bool
    stdout_matches: bool
    stderr_matches: bool
    result: RunResult

    @property
    def inputs_match(self) -> bool:
        return not self.inputs

    @property
    def matches(self) -> bool:
        return (self.inputs_match and not self.outputs and self.status_matches
                and self.stdout_matches and self.stderr_matches)


def replay(receipt: Receipt | Mapping[str, object] | bytes | str, namespace: FileService,
           *, runtime: WasiRuntime | None = None, env: Mapping[str, str] | None = None,
           stdin: bytes = b"") -> ReplayReport:
    """Run ``receipt``'s run again over ``namespace`` and compare (see the module
    docstring). ``runtime`` holds the module cache to look in (a new WasiRuntime, using
    the default cache directory, when None).

    Raises:
        InvalidArgument: not a receipt; an environment variable the receipt names is not
            in ``env``; ``stdin`` is not the receipt's.
        ModuleError: the module is not in the cache (the message names its digest).
    """
    rec = receipt if isinstance(receipt, Receipt) else Receipt.from_json(receipt)
    values = dict(env or {})
    missing = [name for name in rec.env_names if name not in values]
    if missing:
        raise InvalidArgument(f"replay needs the value of {', '.join(missing)} (a receipt "
                              "keeps the names of the environment variables, not their "
                              "values)")
    if sha256(stdin) != rec.stdin_sha256:
        raise InvalidArgument("replay: stdin is not the receipt's (its sha256 differs)")
    rt = runtime or WasiRuntime()
    try:
        handle = rt.compile_digest(rec.module_sha256, rec.module_name)
        preopens = (None if rec.preopens is None else
                    {ns: Preopen(guest, writable)
                     for ns, (guest, writable) in rec.preopens.items()})
        seen, _complete = digest_inputs(namespace, input_roots(namespace, preopens))
        if not rec.inputs_complete:  # compare the paths the receipt has, and no others
            recorded = {f.path for f in rec.inputs}
            seen = tuple(f for f in seen if f.path in recorded)
        inputs = _compare(rec.inputs, seen)
        limits: dict[str, Any] = {name: rec.limits[name] for name in LIMIT_NAMES}
        env_values = {name: values[name] for name in rec.env_names}
        if rec.cwd is not None:
            env_values.pop("PWD", None)  # the runtime sets it from cwd
        config = RunConfig(argv=rec.argv[1:], argv0=rec.argv[0] if rec.argv else None,
                           env=env_values, stdin=stdin, cwd=rec.cwd, preopens=preopens,
                           receipt=True, **limits)
        result = rt.run(handle, namespace, config)
    finally:
        if runtime is None:
            rt.close()
    assert result.receipt is not None
    return ReplayReport(inputs, _compare(rec.outputs, result.receipt.outputs),
                        result.status == rec.status,
                        result.receipt.stdout_sha256 == rec.stdout_sha256,
                        result.receipt.stderr_sha256 == rec.stderr_sha256, result)


def _compare(before: tuple[FileDigest, ...], after: tuple[FileDigest, ...]
             ) -> tuple[tuple[str, Verdict], ...]:
    old = {f.path: f for f in before}
    new = {f.path: f for f in after}
    out: list[tuple[str, Verdict]] = []
    for path in sorted(old.keys() | new.keys()):
        if path not in new:
            out.append((path, "missing"))
        elif path not in old:
            out.append((path, "extra"))
        elif (old[path].kind, old[path].sha256) != (new[path].kind, new[path].sha256):
            out.append((path, "different"))
    return tuple(out)
