"""``subprocess`` and ``os.system`` for CPython in the sandbox, through ``/cap/proc``.

This module runs in the guest, not in the host: ``oanix.wasi.python`` copies it into the
sandbox's user site-packages as ``oanix_subprocess`` and patches ``subprocess.Popen``
with ``Popen`` below the first time the program imports ``subprocess``. Every helper of
the standard module (``run``, ``call``, ``check_call``, ``check_output``,
``getoutput``) goes through ``Popen``, so they all work.

A child runs to completion at the first ``communicate``, ``wait``, ``poll``, read of
``stdout``/``stderr`` or the end of a ``with`` block (so ``communicate(timeout=...)``
applies to the whole run); its output is then delivered whole. So what needs two live
processes at once (reading a child's output while still writing its input, signals to a
running child) is refused with an error naming the feature. ``kill``/``terminate`` of a
finished child do nothing, as on POSIX; of a child not started yet, they cancel it.
``stderr=STDOUT`` appends the child's error output after its output.

The request and reply are files of the process service (``oanix.services.proc``) at
``$OANIX_PROC`` (``/cap/proc`` by default); the host answers once the child is done.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import sys
import time
from typing import IO, Any

PROC = os.environ.get("OANIX_PROC", "/cap/proc")
PYTHON_NAMES = frozenset({"python", "python3", "python3.12"})
# The wait for the answer polls, first every 0.5 ms (a short child answers at once), then
# less and less often up to every 4 ms: each poll runs guest code and a host call, which
# would take a core's time from the child itself while it runs.
_POLL_FIRST, _POLL_LAST = 0.0005, 0.004


class SandboxUnsupported(OSError):
    """What a sandboxed process cannot do (named in the message)."""


def _command_for(args: Any, shell: bool, executable: str | None) -> dict[str, Any]:
    if isinstance(args, str | bytes | os.PathLike):
        args = [args]
    argv = [os.fsdecode(a) for a in args]
    if shell:
        return {"command": " ".join(argv)}
    if executable is not None:
        argv[0] = os.fsdecode(executable)
    first = argv[0]
    if first == sys.executable or os.path.basename(first) in PYTHON_NAMES:
        argv[0] = "python3"
    return {"argv": argv}


def _run(request: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    rid = os.urandom(8).hex()
    body = json.dumps({"id": rid, **request}).encode()
    done = f"{PROC}/done/{rid}.json"
    if not os.path.isdir(f"{PROC}/done"):
        raise SandboxUnsupported(0, f"no process service at {PROC}: the sandbox cannot "
                                 "start processes")
    try:
        with open(f"{PROC}/request", "wb") as f:
            f.write(body)
    except OSError as e:
        raise SandboxUnsupported(e.errno or 0, f"no process service at {PROC} "
                                 f"({e.strerror}): the sandbox cannot start processes") from None
    limit = None if timeout is None else time.monotonic() + timeout + 5.0
    pause = _POLL_FIRST
    while True:
        try:
            with open(done, "rb") as f:
                reply: dict[str, Any] = json.loads(f.read())
            break
        except (FileNotFoundError, ValueError):
            if limit is not None and time.monotonic() > limit:
                raise TimeoutError(f"no answer from {PROC} for {rid}") from None
            time.sleep(pause)
            pause = min(pause * 1.5, _POLL_LAST)
    with contextlib.suppress(OSError):
        os.remove(done)
    return reply


class _PipeIn(io.BytesIO):
    """A child's stdin opened with PIPE: what is written is its input, once closed."""

    def __init__(self, owner: Popen) -> None:
        super().__init__()
        self._owner = owner

    def close(self) -> None:
        if not self.closed:
            self._owner._input = self.getvalue()
        super().close()


class Popen:
    """A sandboxed child process (see the module docstring for what runs when)."""

    def __init__(self, args: Any, bufsize: int = -1, executable: str | None = None,
                 stdin: Any = None, stdout: Any = None, stderr: Any = None,
                 preexec_fn: Any = None, close_fds: bool = True, shell: bool = False,
                 cwd: Any = None, env: Any = None, universal_newlines: bool | None = None,
                 startupinfo: Any = None, creationflags: int = 0,
                 restore_signals: bool = True, start_new_session: bool = False,
                 pass_fds: Any = (), *, text: bool | None = None,
                 encoding: str | None = None, errors: str | None = None,
                 **unsupported: Any) -> None:
        import subprocess

        if preexec_fn is not None:
            raise SandboxUnsupported(0, "preexec_fn: a sandboxed child is not forked")
        given = sorted(k for k, v in unsupported.items() if v not in (None, -1, (), False))
        if given:
            raise SandboxUnsupported(0, f"Popen option(s) {', '.join(given)} in the sandbox")
        self._sp = subprocess
        self.args = args
        self.text_mode = bool(text or universal_newlines or encoding or errors)
        self._encoding = encoding or "utf-8"
        self._errors = errors or "strict"
        self._spec = _command_for(args, shell, executable)
        if cwd is not None:
            self._spec["cwd"] = os.path.abspath(os.fsdecode(cwd))
        else:
            self._spec["cwd"] = os.getcwd()
        self._spec["env"] = {os.fsdecode(k): os.fsdecode(v)
                             for k, v in (os.environ if env is None else env).items()}
        self._stdout_to, self._stderr_to = stdout, stderr
        self.returncode: int | None = None
        self.pid = 0
        self.stdin: IO[Any] | None = None
        self._stdout: IO[Any] | None = None
        self._stderr: IO[Any] | None = None
        self._input: bytes | None = b""
        self._reply: dict[str, Any] | None = None
        self._out = self._err = b""
        if stdin == subprocess.PIPE:
            self._input = None
            pipe = _PipeIn(self)
            self.stdin = io.TextIOWrapper(pipe, self._encoding, self._errors) \
                if self.text_mode else pipe
        elif stdin not in (None, subprocess.DEVNULL):
            self._input = _read_all(stdin)

    @property
    def stdout(self) -> IO[Any] | None:
        if self._stdout_to == self._sp.PIPE:
            self._finish(None)
        return self._stdout

    @property
    def stderr(self) -> IO[Any] | None:
        if self._stderr_to == self._sp.PIPE:
            self._finish(None)
        return self._stderr

    # -- running --------------------------------------------------------------------------

    def _finish(self, timeout: float | None) -> None:
        if self._reply is not None:
            return
        if self._input is None:
            if self.stdin is not None and not self.stdin.closed:
                self.stdin.flush()
                self.stdin.close()
            if self._input is None:
                self._input = b""
        request = {**self._spec, "stdin_b64": base64.b64encode(self._input).decode()}
        if timeout is not None:
            request["timeout"] = timeout
        self._reply = reply = _run(request, timeout)
        out = base64.b64decode(reply.get("stdout_b64") or "")
        err = base64.b64decode(reply.get("stderr_b64") or "")
        if reply.get("error") and not err:
            err = f"{self._spec.get('argv', ['sh'])[0]}: {reply['error']}\n".encode()
        if self._stderr_to == self._sp.STDOUT:
            out, err = out + err, b""
        self.returncode = int(reply.get("status", 1))
        self._out, self._err = out, err
        self._stdout = self._deliver(self._stdout_to, out, sys.stdout)
        self._stderr = self._deliver(self._stderr_to, err, sys.stderr)
        if reply.get("timed_out"):
            raise self._sp.TimeoutExpired(self.args, timeout or 0.0,
                                          output=self._decode(out), stderr=self._decode(err))

    def _deliver(self, to: Any, data: bytes, inherit: Any) -> IO[Any] | None:
        if to == self._sp.PIPE:
            pipe = io.BytesIO(data)
            return io.TextIOWrapper(pipe, self._encoding, self._errors) if self.text_mode \
                else pipe
        if to is None:
            inherit.flush()
            target = getattr(inherit, "buffer", None)
            if target is not None:
                target.write(data)
                target.flush()
            else:
                inherit.write(data.decode(self._encoding, "replace"))
        elif to not in (self._sp.DEVNULL, self._sp.STDOUT):
            if isinstance(to, int):
                os.write(to, data)
            else:
                to.write(data if "b" in getattr(to, "mode", "b") else
                         data.decode(self._encoding, self._errors))
                to.flush()
        return None

    def _decode(self, data: bytes) -> Any:
        return data.decode(self._encoding, self._errors) if self.text_mode else data

    # -- the Popen API --------------------------------------------------------------------

    def communicate(self, input: Any = None, timeout: float | None = None
                    ) -> tuple[Any, Any]:
        if input is not None:
            if self._reply is not None or self._input is not None:
                raise ValueError("input given but the child's stdin is not a PIPE")
            self._input = input.encode(self._encoding, self._errors) \
                if isinstance(input, str) else bytes(input)
        self._finish(timeout)
        out = self._decode(self._out) if self._stdout_to == self._sp.PIPE else None
        err = self._decode(self._err) if self._stderr_to == self._sp.PIPE else None
        return out, err

    def wait(self, timeout: float | None = None) -> int:
        self._finish(timeout)
        assert self.returncode is not None
        return self.returncode

    def poll(self) -> int | None:
        if self._reply is None and self._input is None:
            return None  # still waiting for its input
        return self.wait()

    def send_signal(self, sig: int) -> None:
        if self._reply is None:  # not started yet (a child runs whole): it never will
            self._reply, self.returncode, self._out, self._err = {}, -sig, b"", b""

    def terminate(self) -> None:
        self.send_signal(15)

    def kill(self) -> None:
        self.send_signal(9)

    def __enter__(self) -> Popen:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.wait()
        for f in (self._stdout, self._stderr):
            if f is not None:
                f.close()


def _read_all(stdin: Any) -> bytes:
    if isinstance(stdin, int):
        chunks = []
        while chunk := os.read(stdin, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    data = stdin.read()
    return data.encode() if isinstance(data, str) else bytes(data)


def system(command: str) -> int:
    """``os.system``: run ``command`` with the shell, output inherited; a wait status."""
    return Popen(command, shell=True).wait() << 8


def install(module: Any) -> None:
    """Patch the freshly imported standard ``subprocess`` ``module``."""
    module.Popen = Popen
    module._USE_POSIX_SPAWN = False
