"""An oanix environment served over the Model Context Protocol, with the official SDK
(the ``oanix[mcp]`` extra): ``python -m oanix.mcp`` or ``oanix-mcp``.

- ``tools``: the tools' work over an ``OanixEnv`` (exec, read, write, list, stat, glob,
  run_python), every path through its namespace.
- ``resources``: the namespace's files as ``oanix:///<path>`` resources.
- ``server``: ``OanixMCPServer``, the SDK's ``MCPServer`` with those tools and resources,
  each call in a worker thread.
- ``transports``: serving it on stdio or streamable HTTP.
"""

from .resources import SCHEME, path_of, uri_of
from .server import OanixMCPServer
from .tools import EnvTools

__all__ = ["SCHEME", "EnvTools", "OanixMCPServer", "path_of", "uri_of"]
