"""A REAL Nostr relay (PyPI ``nostr-relay``, SQLite) for the Nostr tests, as a pytest fixture.

Import the fixture explicitly (``from nostr_relay_fixture import nostr_relay``; the module is
not called ``nostr_relay`` because that is the relay package's own name). The ``nostr-relay``
executable is found through ``$OANIX_NOSTR_RELAY``, then the running interpreter's venv,
then ``PATH``; the tests are skipped (with the reason) only when it cannot be found or does
not start. Each session gets a free port and its own SQLite file in a temporary directory.
``RelayProcess.stop()``/``start()`` restart it on the same port and database.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_CONFIG = """\
DEBUG: false
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{db}
  num_concurrent_reqs: 4
  num_concurrent_adds: 1
  validators:
    - nostr_relay.validators.is_not_too_large
    - nostr_relay.validators.is_signed
    - nostr_relay.validators.is_recent
verification:
  nip05_verification: disabled
gunicorn:
  bind: 127.0.0.1:{port}
  workers: 1
  loglevel: warning
  reload: false
authentication:
  enabled: false
"""


def find_relay_executable() -> str | None:
    """``$OANIX_NOSTR_RELAY``, the current venv's ``nostr-relay``, or one on PATH."""
    env = os.environ.get("OANIX_NOSTR_RELAY")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    local = Path(sys.executable).parent / "nostr-relay"
    if local.exists():
        return str(local)
    return shutil.which("nostr-relay")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RelayProcess:
    """One ``nostr-relay serve --use-uvicorn`` process; restartable on the same port and db."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = free_port()
        self.db = workdir / "nostr.sqlite3"
        self.config = workdir / "relay.yaml"
        self.config.write_text(_CONFIG.format(db=self.db, port=self.port))
        self.log = workdir / "relay.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Start the relay and wait until its port accepts connections.

        Raises:
            RuntimeError: it exited or did not open its port in time (the log is quoted).
        """
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.executable, "-c", str(self.config), "serve", "--use-uvicorn"],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"nostr-relay did not start on port {self.port}:\n{tail}")

    def stop(self) -> None:
        """Stop the relay (SIGTERM, then SIGKILL after 10 s) and wait until it is gone."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="session")
def nostr_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """A running real relay for the whole session (skips if it cannot be found/started)."""
    exe = find_relay_executable()
    if exe is None:
        pytest.skip("nostr-relay not found: pip install 'nostr-relay>=1.14,<1.15' or set "
                    "OANIX_NOSTR_RELAY to its executable")
    relay = RelayProcess(exe, tmp_path_factory.mktemp("nostr-relay"))
    try:
        relay.start()
    except (OSError, RuntimeError) as e:
        pytest.skip(f"nostr-relay could not start: {e}")
    try:
        yield relay
    finally:
        relay.stop()
