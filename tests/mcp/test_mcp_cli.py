"""``python -m oanix.mcp``'s refusals: one line on stderr, exit status 2, no traceback.
The servers start in parallel (each import takes a while)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from mcp_client import child_env, server_args

from oanix.mcp.__main__ import EXIT_USAGE


def test_bad_arguments_and_manifests_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[limits]\nfuel = -3\n")
    (tmp_path / "broken.toml").write_text("[limits\n")
    (tmp_path / "afile").write_text("")
    busy = socket.create_server(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    cases = {
        ("--bogus",): "unrecognized arguments: --bogus",
        ("--transport", "carrier-pigeon"): "invalid choice: 'carrier-pigeon'",
        ("--timeout", "soon"): "argument --timeout",
        ("--port", "99999"): "not a port number",
        ("--manifest", str(tmp_path / "missing.toml")): "missing.toml: No such file",
        ("--manifest", str(tmp_path / "bad.toml")): "manifest limits.fuel",
        ("--manifest", str(tmp_path / "broken.toml")): "not a valid manifest",
        ("--workspace", str(tmp_path / "nodir")): "--workspace",
        ("--workspace", str(tmp_path / "afile")): "not a directory",
        ("--transport", "http", "--port", str(port)): f"127.0.0.1:{port}",
    }
    try:
        procs = {args: subprocess.Popen(server_args(*args), env=child_env(), text=True,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
                 for args in cases}
        for args, proc in procs.items():
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == EXIT_USAGE, (args, err)
            assert out == ""
            lines = err.splitlines()
            assert len(lines) == 1, (args, err)
            assert lines[0].startswith("oanix-mcp: error: ") and cases[args] in lines[0], \
                (args, err)
    finally:
        busy.close()
