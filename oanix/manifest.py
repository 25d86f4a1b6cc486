"""An environment manifest as a typed value: ``Manifest.parse`` reads the whole mapping in
one step, so its schema is these classes and every refusal names the key it came from.

``OanixEnv.from_manifest`` reads the file (TOML or JSON), parses it here, then builds the
services, capabilities and executors the manifest describes (``Manifest.env_kwargs``).
Sizes, durations and counts are read by ``oanix.values``, as ``oanix-run``'s flags are.

Locking: none; the values are frozen.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import attrs

from .errors import InvalidArgument, InvalidContent
from .fs.cow import CowFs
from .fs.map import MapFs
from .fs.mem import MemFs
from .fs.workspace import WorkspaceFs
from .limits import Limits
from .values import (
    expect_bool,
    expect_str,
    expect_strs,
    expect_table,
    load_json,
    parse_count,
    parse_duration,
    parse_size,
)

__all__ = ["CapabilitySpec", "LimitsSpec", "Manifest", "ServiceSpec"]

T = TypeVar("T")
ServiceType = Literal["mem", "map", "workspace"]
CapabilityName = Literal["http", "ws", "nostr"]

_POLICY_KEYS: Final = frozenset({"schemes", "hosts", "allow_private", "max_request_bytes",
                                  "max_response_bytes", "max_connections"})


def _opt(table: dict[str, Any], key: str, where: str, read: Callable[[object, str], T]
         ) -> T | None:
    """``read`` of ``table[key]`` naming it (``manifest id``, ``manifest limits.fuel``)."""
    at = f"{where} {key}" if where == "manifest" else f"{where}.{key}"
    return read(table[key], at) if key in table else None


@attrs.frozen
class LimitsSpec:
    """``[limits]``: None where the manifest leaves the default."""

    fuel: int | None = None
    memory: int | None = None
    timeout: float | None = None
    max_output: int | None = None
    max_disk: int | None = None
    max_disk_files: int | None = None

    @classmethod
    def parse(cls, value: object, where: str = "manifest limits") -> LimitsSpec:
        t = expect_table(value, where, known=("fuel", "memory", "timeout", "max_output",
                                              "max_disk", "max_disk_files"))

        def size(v: object, w: str) -> int:
            return parse_size(v, w, minimum=1)

        def count(v: object, w: str) -> int:
            return parse_count(v, w, minimum=1)

        return cls(
            fuel=_opt(t, "fuel", where, count),
            memory=_opt(t, "memory", where, size),
            timeout=_opt(t, "timeout", where, parse_duration),
            max_output=_opt(t, "max_output", where, size),
            max_disk=_opt(t, "max_disk", where, size),
            max_disk_files=_opt(t, "max_disk_files", where, count))


@attrs.frozen
class ServiceSpec:
    """``[workspace]`` or one ``[[mounts]]`` entry: a service and how it is mounted.

    ``type`` defaults to workspace when ``dir`` is given, map when ``files`` is, else mem.
    """

    type: ServiceType
    path: str | None = None  # mounts only
    dir: str | None = None  # workspace
    readonly: bool = False  # workspace
    files: tuple[tuple[str, str | bytes], ...] = ()  # map
    max_bytes: int | None = None  # mem
    cow: bool = False

    @classmethod
    def parse(cls, value: object, where: str, mount: bool) -> ServiceSpec:
        t = expect_table(value, where, known={"type", "dir", "readonly", "files", "max_bytes",
                                              "cow"} | ({"path"} if mount else set()))
        path = expect_str(t.get("path"), f"{where}.path") if mount else None
        kind: Any = t.get("type") or ("workspace" if "dir" in t else
                                      "map" if "files" in t else "mem")
        if kind not in ("mem", "map", "workspace"):
            raise InvalidArgument(f"{where}.type: unknown type {kind!r} (mem, map, workspace)")
        if kind == "workspace" and "dir" not in t:
            raise InvalidArgument(f"{where}: type workspace needs 'dir'")
        files = expect_table(t.get("files", {}), f"{where}.files")
        for name, content in files.items():
            if not isinstance(content, str | bytes):
                raise InvalidArgument(f"{where}.files.{name}: expected a string")
        quota = t.get("max_bytes")
        return cls(
            type=kind, path=path,
            dir=_opt(t, "dir", where, expect_str),
            readonly=_opt(t, "readonly", where, expect_bool) or False,
            files=tuple(files.items()),
            max_bytes=parse_size(quota, f"{where}.max_bytes", minimum=1) if quota else None,
            cow=_opt(t, "cow", where, expect_bool) or False)


@attrs.frozen
class CapabilitySpec:
    """One ``[capabilities.<name>]`` table: its policy's fields, and Nostr's relays/key."""

    name: CapabilityName
    policy: tuple[tuple[str, Any], ...] = ()
    relays: tuple[str, ...] = ()
    secret_key: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, name: str, value: object, where: str) -> CapabilitySpec:
        if name not in ("http", "ws", "nostr"):
            raise InvalidArgument(f"{where}: unknown capability (http, ws, nostr)")
        t = expect_table(value, where, known=_POLICY_KEYS | ({"relays", "secret_key"}
                                                             if name == "nostr" else set()))
        policy: list[tuple[str, Any]] = []
        for key in ("schemes", "hosts"):
            if key in t:
                policy.append((key, frozenset(expect_strs(t[key], f"{where}.{key}"))))
        if "allow_private" in t:
            policy.append(("allow_private", expect_bool(t["allow_private"],
                                                  f"{where}.allow_private")))
        for key in ("max_request_bytes", "max_response_bytes"):
            if key in t:
                policy.append((key, parse_size(t[key], f"{where}.{key}", minimum=1)))
        if "max_connections" in t:
            policy.append(("max_connections", parse_count(
                t["max_connections"], f"{where}.max_connections", minimum=1)))
        return cls(name, tuple(policy),  # type: ignore[arg-type]  # checked above
                   relays=expect_strs(t.get("relays", []), f"{where}.relays"),
                   secret_key=_opt(t, "secret_key", where, expect_str))


@attrs.frozen
class Manifest:
    """A whole manifest (see ``OanixEnv.from_manifest`` for the format)."""

    id: str | None = None
    cwd: str | None = None
    workspace_at: str | None = None
    env: tuple[tuple[str, str], ...] | None = None
    tmp_bytes: int | None = None
    limits: LimitsSpec | None = None
    workspace: ServiceSpec | None = None
    mounts: tuple[ServiceSpec, ...] = ()
    capabilities: tuple[CapabilitySpec, ...] = ()

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """The manifest in file ``path``: JSON if it ends in ``.json``, else TOML.

        Raises:
            InvalidArgument: the file is not valid (naming it), or as ``parse``.
        """
        raw = path.read_bytes()
        try:
            data = (load_json(raw, str(path)) if path.suffix == ".json"
                    else tomllib.loads(raw.decode("utf-8")))
        except InvalidContent as e:
            raise InvalidArgument(f"{path}: not a valid manifest: {e.strerror}") from None
        except (ValueError, RecursionError) as e:  # TOMLDecodeError, UnicodeDecodeError
            raise InvalidArgument(f"{path}: not a valid manifest: {e}") from None
        if not isinstance(data, dict):
            raise InvalidArgument(f"{path}: not a valid manifest: not a JSON object")
        return cls.parse(data)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Manifest:
        """Check every key and value of ``data``.

        Raises:
            InvalidArgument: naming the key (``manifest limits.fuel: ...``).
        """
        w = "manifest"
        t = expect_table(data, w, known=("id", "cwd", "env", "limits", "workspace",
                                         "workspace_at", "mounts", "tmp_bytes", "capabilities"))
        env = None
        if "env" in t:
            env = tuple((str(k), str(v)) for k, v in expect_table(t["env"], f"{w} env").items())
        mounts = t.get("mounts", [])
        if not isinstance(mounts, list):
            raise InvalidArgument(f"{w} mounts: expected a list of tables")
        caps = expect_table(t.get("capabilities", {}), f"{w} capabilities")
        return cls(
            id=_opt(t, "id", w, expect_str), cwd=_opt(t, "cwd", w, expect_str),
            workspace_at=_opt(t, "workspace_at", w, expect_str), env=env,
            tmp_bytes=_opt(t, "tmp_bytes", w, lambda v, k: parse_size(v, k, minimum=1)),
            limits=LimitsSpec.parse(t["limits"]) if t.get("limits") else None,
            workspace=(ServiceSpec.parse(t["workspace"], f"{w} workspace", mount=False)
                       if t.get("workspace") is not None else None),
            mounts=tuple(ServiceSpec.parse(m, f"{w} mounts[{i}]", mount=True)
                         for i, m in enumerate(mounts)),
            capabilities=tuple(CapabilitySpec.parse(name, spec, f"{w} capabilities.{name}")
                               for name, spec in caps.items()))

    def env_kwargs(self, base: Path) -> dict[str, Any]:
        """The ``OanixEnv`` keyword arguments: services, capabilities and executors built,
        relative host paths taken from ``base``."""
        kw: dict[str, Any] = {}
        for key in ("id", "cwd", "workspace_at", "tmp_bytes"):
            if getattr(self, key) is not None:
                kw[key] = getattr(self, key)
        if self.env is not None:
            kw["env"] = dict(self.env)
        if self.limits is not None:
            lim = self.limits
            given: dict[str, Any] = {
                "fuel": lim.fuel, "memory_limit": lim.memory, "timeout": lim.timeout,
                "max_output": lim.max_output, "max_disk": lim.max_disk,
                "max_disk_files": lim.max_disk_files}
            kw["limits"] = Limits(**{k: v for k, v in given.items() if v is not None})
        if self.workspace is not None:
            kw["workspace"] = _service(self.workspace, base)
            kw["cow"] = self.workspace.cow
        mounts = {}
        for m in self.mounts:
            assert m.path is not None
            svc = _service(m, base)
            mounts[m.path] = CowFs(svc) if m.cow else svc
        if mounts:
            kw["mounts"] = mounts
        if self.capabilities:
            kw["capabilities"], kw["executors"], network = _capabilities(self.capabilities)
            if network is not None:
                kw["network"] = network
        return kw


def _service(spec: ServiceSpec, base: Path) -> Any:
    if spec.type == "workspace":
        assert spec.dir is not None
        return WorkspaceFs(base / spec.dir, readonly=spec.readonly)
    if spec.type == "map":
        return MapFs(dict(spec.files))
    return MemFs(max_bytes=spec.max_bytes)


def _capabilities(caps: tuple[CapabilitySpec, ...]
                  ) -> tuple[dict[str, Any], list[Any], Any]:
    """The services and executors of a manifest's ``[capabilities.*]`` tables, and the
    policy of ``[capabilities.http]`` (``OanixEnv``'s ``network``), or None."""
    from .cap import CapabilityPolicy, NostrFs, NostrRelayConnector, WsConnector, WsFs

    services: dict[str, Any] = {}
    executors: list[Any] = []
    network = None
    for cap in caps:
        policy_args = dict(cap.policy)
        if cap.name == "http":
            network = CapabilityPolicy(**policy_args)
        elif cap.name == "ws":
            ws = WsFs()
            services[cap.name] = ws
            executors.append(WsConnector(ws, CapabilityPolicy(
                **{"schemes": {"ws", "wss"}, **policy_args})))
        else:
            policy = CapabilityPolicy(**{"schemes": {"ws", "wss"}, **policy_args})
            nostr = NostrFs(cap.secret_key, relays=list(cap.relays))
            services[cap.name] = nostr
            if nostr.relays:  # without relays events are signed and stay in the outbox
                executors.append(NostrRelayConnector(nostr, policy=policy))
    return services, executors, network
