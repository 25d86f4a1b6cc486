"""An oanix environment served over the Model Context Protocol, with the official SDK
(the ``oanix[mcp]`` extra): ``python -m oanix.mcp`` or ``oanix-mcp``.

- ``tools``: the tools' work over an ``OanixEnv`` (exec, read, write, list, stat, glob,
  run_python), every path through its namespace.
- ``resources``: the namespace's files as ``oanix:///<path>`` resources.
- ``server``: ``OanixMCPServer``, the SDK's ``MCPServer`` with those tools and resources,
  each call in a worker thread.
- ``transports``: serving it on stdio or streamable HTTP.

The names below load on first use, so the command line answers a bad argument without
loading the SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .resources import SCHEME, path_of, uri_of
    from .server import OanixMCPServer
    from .tools import EnvTools

__all__ = ["SCHEME", "EnvTools", "OanixMCPServer", "path_of", "uri_of"]

_LAZY = {"SCHEME": ".resources", "path_of": ".resources", "uri_of": ".resources",
         "OanixMCPServer": ".server", "EnvTools": ".tools"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
