"""Serve an oanix environment over the Model Context Protocol.

    python -m oanix.mcp [--manifest ENV.toml] [--workspace DIR] [--timeout SECONDS]
                        [--transport stdio|http] [--host HOST] [--port PORT]

(``oanix-mcp`` is the same.) Without arguments: the standard environment of
``OanixEnv()``, its workspace in memory, served on stdio. ``--manifest`` builds it from
a manifest (see ``OanixEnv.from_manifest``); ``--workspace DIR`` mounts host directory
DIR as the workspace (over the manifest's); ``--timeout`` bounds every command line and
Python run (``30``, ``500ms``, ``2m``; over the manifest's limit). ``--transport http``
serves streamable HTTP at ``http://HOST:PORT/mcp`` (default 127.0.0.1:8000; port 0
picks a free one) and prints that address on stderr once it accepts connections.

A bad argument or manifest is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import anyio
import attrs

from ..env import OanixEnv
from ..errors import FsError, InvalidArgument, OanixError
from ..fs.workspace import WorkspaceFs
from ..values import parse_duration

__all__ = ["main"]

PROG = "oanix-mcp"
EXIT_USAGE = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _seconds(text: str) -> float:
    try:
        return parse_duration(text, "--timeout")
    except InvalidArgument as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--timeout: ")) from None


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


def _parser() -> _Parser:
    p = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, metavar="FILE",
                   help="build the environment from this manifest (TOML, or JSON)")
    p.add_argument("--workspace", type=Path, metavar="DIR",
                   help="mount host directory DIR as the workspace")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="bound on each command line and Python run (30, 500ms, 2m)")
    p.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                   help="stdio (default) or streamable HTTP")
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000,
                   help="HTTP port (default 8000; 0: a free one)")
    return p


def build_env(args: argparse.Namespace) -> OanixEnv:
    """The environment the arguments describe.

    Raises:
        InvalidArgument: a bad manifest (naming the key) or argument, a workspace
            directory that is missing or not a directory.
        OSError: the manifest cannot be read.
    """
    overrides: dict[str, Any] = {}
    if args.workspace is not None:
        try:
            overrides["workspace"] = WorkspaceFs(args.workspace)
        except FsError as e:
            raise InvalidArgument(f"--workspace {args.workspace}: {e.strerror}") from None
    if args.manifest is not None:
        env = OanixEnv.from_manifest(args.manifest, **overrides)
    else:
        env = OanixEnv(**overrides)
    if args.timeout is not None:
        env.limits = attrs.evolve(env.limits, timeout=args.timeout)
    return env


def _ready(url: str) -> None:
    print(f"{PROG}: serving {url}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        env = build_env(args)
    except (_UsageError, OanixError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print(f"{PROG}: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    # The SDK loads only now: a refused argument is answered without it.
    from .server import OanixMCPServer
    from .transports import serve_http, serve_stdio

    with env:
        server = OanixMCPServer(env)
        try:
            if args.transport == "stdio":
                anyio.run(serve_stdio, server)
            else:
                anyio.run(functools.partial(serve_http, server, args.host, args.port, _ready))
        except OSError as e:
            print(f"{PROG}: error: {args.host}:{args.port}: {e.strerror or e}",
                  file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            pass
    return 0


def entry() -> None:
    """The ``oanix-mcp`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
