"""Receipts: what a wasm run was given and what it gave, by content address.

A receipt names the module, the stdin, every input file the run could see and every
output it wrote by their sha256, with the argv, the NAMES of the environment variables
(never their values: they may hold secrets), the limits, the fuel used, the exit status,
the timing and the versions of oanix and wasmtime. ``Receipt.id`` is the sha256 of its
canonical JSON (sorted keys, no spaces), so a receipt is itself content-addressed; the
module is found again by its digest in the runtime's module cache
(``WasiRuntime.compile_digest``), which is what ``oanix.replay`` reruns.

JSON form (version 1), every key always present::

    {"version": 1, "module": {"name", "sha256"}, "argv": [...], "env_names": [...],
     "cwd": str | null, "stdin_sha256": str,
     "preopens": null | {namespace path: {"guest": str, "writable": bool | null}},
     "limits": {"fuel", "memory_limit", "timeout", "max_output", "max_disk",
                "max_disk_files"},                       (null: unlimited)
     "inputs": [{"path", "kind": "file", "size", "sha256"}, ...], "inputs_complete": bool,
     "outputs": [{"path", "kind": "file" | "dir" | "deleted", "size", "sha256" | null}],
     "exit_code": int | null, "trap": str | null, "status": int, "fuel_consumed": int,
     "stdout_sha256", "stderr_sha256", "started": "YYYY-MM-DDTHH:MM:SS.ffffffZ",
     "duration": seconds, "versions": {"oanix", "wasmtime", "python"}}

Inputs are the regular files below the run's preopens, hashed before the run; computed
services and live capabilities (HTTP, WebSocket, Nostr, processes) are left out, and
hashing stops after ``MAX_INPUT_FILES`` files or ``MAX_INPUT_BYTES`` bytes, with
``inputs_complete`` false.

Values here are frozen: safe to share between threads.
"""

from __future__ import annotations

import datetime
import hashlib
import platform
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any, Final, Literal

import attrs

from .. import paths
from ..changes import Changes
from ..errors import FsError, InvalidArgument, InvalidContent
from ..namespace import Namespace
from ..service import FileService, is_computed, is_live
from ..values import (
    dumps_compact,
    expect_bool,
    expect_int,
    expect_number,
    expect_str,
    expect_strs,
    expect_table,
    load_json,
)

__all__ = ["MAX_INPUT_BYTES", "MAX_INPUT_FILES", "RECEIPT_VERSION", "FileDigest", "Receipt",
           "digest_inputs", "digest_outputs", "input_roots", "record", "sha256", "versions"]

RECEIPT_VERSION: Final = 1
MAX_INPUT_FILES: Final = 10_000
MAX_INPUT_BYTES: Final = 256 << 20
LIMIT_NAMES: Final = ("fuel", "memory_limit", "timeout", "max_output", "max_disk",
                      "max_disk_files")
KEYS: Final = ("version", "module", "argv", "env_names", "cwd", "stdin_sha256", "preopens",
               "limits", "inputs", "inputs_complete", "outputs", "exit_code", "trap",
               "status", "fuel_consumed", "stdout_sha256", "stderr_sha256", "started",
               "duration", "versions")
"""The keys of a receipt's JSON form, every one always present."""
Kind = Literal["file", "dir", "deleted"]


def sha256(data: bytes) -> str:
    """The lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def versions() -> dict[str, str]:
    """The versions a receipt records: oanix, wasmtime and Python."""
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"
    return {"oanix": version("oanix"), "wasmtime": version("wasmtime"),
            "python": platform.python_version()}


@attrs.frozen
class FileDigest:
    """One file of a receipt: its namespace path, what it is, its size and sha256 (None
    for a directory or a deleted file)."""

    path: str
    kind: Kind
    size: int
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "size": self.size,
                "sha256": self.sha256}

    @classmethod
    def from_json(cls, obj: object, where: str) -> FileDigest:
        d = _object(obj, where, ("path", "kind", "size", "sha256"))
        if d["kind"] not in ("file", "dir", "deleted"):
            raise InvalidArgument(f"{where}.kind must be file, dir or deleted")
        return cls(expect_str(d["path"], f"{where}.path"), d["kind"],
                   expect_int(d["size"], f"{where}.size"),
                   _opt(d["sha256"], f"{where}.sha256", _hex))


@attrs.frozen
class Receipt:
    """The record of one run (see the module docstring for the JSON form)."""

    module_name: str
    module_sha256: str
    argv: tuple[str, ...]
    env_names: tuple[str, ...]
    cwd: str | None
    stdin_sha256: str
    preopens: Mapping[str, tuple[str, bool | None]] | None
    limits: Mapping[str, int | float | None]
    inputs: tuple[FileDigest, ...]
    inputs_complete: bool
    outputs: tuple[FileDigest, ...]
    exit_code: int | None
    trap: str | None
    status: int
    fuel_consumed: int
    stdout_sha256: str
    stderr_sha256: str
    started: str
    duration: float
    versions: Mapping[str, str]
    version: int = RECEIPT_VERSION

    @property
    def id(self) -> str:
        """The receipt's own content address: the sha256 of ``to_bytes()``."""
        return sha256(self.to_bytes())

    def to_json(self) -> dict[str, Any]:
        """The receipt as a JSON-ready dict."""
        return {"version": self.version,
                "module": {"name": self.module_name, "sha256": self.module_sha256},
                "argv": list(self.argv), "env_names": list(self.env_names), "cwd": self.cwd,
                "stdin_sha256": self.stdin_sha256,
                "preopens": None if self.preopens is None else {
                    ns: {"guest": g, "writable": w} for ns, (g, w) in self.preopens.items()},
                "limits": dict(self.limits),
                "inputs": [f.to_json() for f in self.inputs],
                "inputs_complete": self.inputs_complete,
                "outputs": [f.to_json() for f in self.outputs],
                "exit_code": self.exit_code, "trap": self.trap, "status": self.status,
                "fuel_consumed": self.fuel_consumed, "stdout_sha256": self.stdout_sha256,
                "stderr_sha256": self.stderr_sha256, "started": self.started,
                "duration": self.duration, "versions": dict(self.versions)}

    def to_bytes(self) -> bytes:
        """The canonical JSON: sorted keys, no spaces, UTF-8."""
        return dumps_compact(self.to_json(), sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, obj: object) -> Receipt:
        """A receipt from its JSON form (a dict, or the bytes or text of one).

        Raises:
            InvalidArgument: not a receipt, a newer version, or a field of the wrong
                type (the message names the field).
        """
        if isinstance(obj, bytes | str):
            try:
                obj = load_json(obj.encode() if isinstance(obj, str) else obj, "receipt")
            except InvalidContent as e:
                raise InvalidArgument(f"receipt: {e.strerror}") from None
        d = _object(obj, "receipt", KEYS)
        version = expect_int(d["version"], "receipt.version")
        if version > RECEIPT_VERSION:
            raise InvalidArgument(f"receipt.version {version} is newer than this oanix "
                                  f"reads ({RECEIPT_VERSION})")
        module = _object(d["module"], "receipt.module", ("name", "sha256"))
        limits = _object(d["limits"], "receipt.limits", LIMIT_NAMES)
        for name in LIMIT_NAMES:
            value = limits[name]
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | float)):
                raise InvalidArgument(f"receipt.limits.{name} must be a number or null")
        vers = d["versions"]
        if not isinstance(vers, dict) or not all(isinstance(v, str) for v in vers.values()):
            raise InvalidArgument("receipt.versions must be an object of strings")
        return cls(
            module_name=expect_str(module["name"], "receipt.module.name"),
            module_sha256=_hex(module["sha256"], "receipt.module.sha256"),
            argv=expect_strs(d["argv"], "receipt.argv"),
            env_names=expect_strs(d["env_names"], "receipt.env_names"),
            cwd=_opt(d["cwd"], "receipt.cwd", expect_str),
            stdin_sha256=_hex(d["stdin_sha256"], "receipt.stdin_sha256"),
            preopens=_opt(d["preopens"], "receipt.preopens", _preopen_table),
            limits=limits,
            inputs=_digests(d["inputs"], "receipt.inputs"),
            inputs_complete=expect_bool(d["inputs_complete"], "receipt.inputs_complete"),
            outputs=_digests(d["outputs"], "receipt.outputs"),
            exit_code=_opt(d["exit_code"], "receipt.exit_code", expect_int),
            trap=_opt(d["trap"], "receipt.trap", expect_str),
            status=expect_int(d["status"], "receipt.status"),
            fuel_consumed=expect_int(d["fuel_consumed"], "receipt.fuel_consumed"),
            stdout_sha256=_hex(d["stdout_sha256"], "receipt.stdout_sha256"),
            stderr_sha256=_hex(d["stderr_sha256"], "receipt.stderr_sha256"),
            started=expect_str(d["started"], "receipt.started"),
            duration=float(expect_number(d["duration"], "receipt.duration")),
            versions=dict(vers), version=version)


def now_utc() -> str:
    """The current time as a receipt's ``started``."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def limits_of(config: Any) -> dict[str, int | float | None]:
    """The limits of a RunConfig, by name."""
    return {name: getattr(config, name) for name in LIMIT_NAMES}


def digest_inputs(ns: FileService, roots: Iterable[str], *,
                  max_files: int = MAX_INPUT_FILES, max_bytes: int = MAX_INPUT_BYTES
                  ) -> tuple[tuple[FileDigest, ...], bool]:
    """The regular files below ``roots`` in ``ns``, hashed, in path order, and whether
    the list is complete (false past ``max_files``/``max_bytes``). Paths below a computed
    service (``FileService.is_computed``) are skipped: their content is made on reading."""
    out: list[FileDigest] = []
    total = 0
    skip = _made_on_reading(ns)
    stack = sorted({paths.normalize(r) for r in roots}, reverse=True)
    while stack:
        path = stack.pop()
        if path in skip:
            continue
        try:
            st = ns.stat(path)
        except FsError:
            continue
        if st.is_dir:
            try:
                names = ns.listdir(path)
            except FsError:
                continue
            stack.extend(paths.join(path, n) for n in sorted(names, reverse=True))
            continue
        if len(out) >= max_files or total + st.size > max_bytes:
            return tuple(out), False
        try:
            data = ns.read_bytes(path)
        except FsError:
            continue
        total += len(data)
        out.append(FileDigest(path, "file", len(data), sha256(data)))
    return tuple(out), True


def digest_outputs(ns: FileService, changes: Changes) -> tuple[FileDigest, ...]:
    """What a run wrote, as the namespace holds it after the write-back."""
    out: list[FileDigest] = []
    for path in sorted({*changes.added, *changes.modified}):
        try:
            st = ns.stat(path)
            if st.is_dir:
                out.append(FileDigest(path, "dir", 0, None))
                continue
            data = ns.read_bytes(path)
        except FsError:
            out.append(FileDigest(path, "deleted", 0, None))
            continue
        out.append(FileDigest(path, "file", len(data), sha256(data)))
    out.extend(FileDigest(p, "deleted", 0, None) for p in sorted(changes.deleted))
    return tuple(sorted(out, key=lambda f: f.path))


def record(module_name: str, module_sha256: str, argv: Sequence[str],
           env: Mapping[str, str], config: Any, stdin: bytes,
           inputs: tuple[tuple[FileDigest, ...], bool], outputs: tuple[FileDigest, ...],
           result: Any, started: str) -> Receipt:
    """The receipt of a finished run (``result``: its RunResult, without a receipt)."""
    return Receipt(
        module_name=module_name, module_sha256=module_sha256, argv=tuple(argv),
        env_names=tuple(sorted(env)), cwd=config.cwd, stdin_sha256=sha256(stdin),
        preopens=None if config.preopens is None else {
            ns: (spec.guest, spec.writable) for ns, spec in config.preopens.items()},
        limits=limits_of(config), inputs=inputs[0], inputs_complete=inputs[1],
        outputs=outputs, exit_code=result.exit_code,
        trap=None if result.trap is None else result.trap.kind, status=result.status,
        fuel_consumed=result.fuel_consumed, stdout_sha256=sha256(result.stdout),
        stderr_sha256=sha256(result.stderr), started=started,
        duration=round(result.duration, 6), versions=versions())


def input_roots(ns: FileService, preopens: Mapping[str, Any] | None) -> list[str]:
    """The namespace paths a run is shown: its preopens, or every top-level directory."""
    if preopens is not None:
        return list(preopens)
    try:
        return [paths.join("/", name) for name in ns.listdir("/")]
    except FsError:
        return []


def _made_on_reading(ns: FileService) -> frozenset[str]:
    """The mount points of ``ns`` whose files are made on reading, not stored: computed
    services and live capabilities (reading a WebSocket's ``in`` takes a message)."""
    if not isinstance(ns, Namespace):
        return frozenset()
    return frozenset(m.path for m in ns.mounts()
                     if is_computed(m.service) or is_live(m.service))


# -- strict reading of the JSON form --------------------------------------------------------

def _object(obj: object, where: str, keys: Sequence[str]) -> dict[str, Any]:
    """``obj`` when it is a JSON object with exactly ``keys``."""
    return expect_table(obj, where, known=keys, required=keys)


def _hex(value: object, where: str) -> str:
    text = expect_str(value, where)
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidArgument(f"{where} must be a sha256 in lowercase hex")
    return text


def _opt(value: object, where: str, check: Any) -> Any:
    return None if value is None else check(value, where)


def _preopen_table(value: object, where: str) -> dict[str, tuple[str, bool | None]]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where} must be a JSON object or null")
    out: dict[str, tuple[str, bool | None]] = {}
    for ns, spec in value.items():
        d = _object(spec, f"{where}[{ns!r}]", ("guest", "writable"))
        writable = d["writable"]
        if writable is not None and not isinstance(writable, bool):
            raise InvalidArgument(f"{where}[{ns!r}].writable must be true, false or null")
        out[ns] = (expect_str(d["guest"], f"{where}[{ns!r}].guest"), writable)
    return out


def _digests(value: object, where: str) -> tuple[FileDigest, ...]:
    if not isinstance(value, list):
        raise InvalidArgument(f"{where} must be a list")
    return tuple(FileDigest.from_json(v, f"{where}[{i}]") for i, v in enumerate(value))
