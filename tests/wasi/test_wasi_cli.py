"""``python -m oanix.run_wasi``, end to end in a subprocess: output, exit codes, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Wasm = Callable[[str], str]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cli(wasi_cache_dir: Path) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    env = {**os.environ, "OANIX_CACHE_DIR": str(wasi_cache_dir), "PYTHONPATH": str(ROOT)}

    def run(*args: str, stdin: bytes = b"", cwd: Path = ROOT
            ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "oanix.run_wasi", *args], input=stdin,
                              capture_output=True, env=env, cwd=cwd, timeout=120)

    return run


def one_line(err: bytes) -> str:
    lines = err.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("oanix-run: ") and "Traceback" not in lines[0]
    return lines[0]


def test_output_and_exit_code(cli: Callable[..., subprocess.CompletedProcess[bytes]],
                              wasm: Wasm) -> None:
    p = cli(wasm("hello"))
    assert (p.returncode, p.stdout, p.stderr) == (0, b"hello, wasi\n", b"")
    p = cli(wasm("exit"), "42")
    assert (p.returncode, p.stdout, p.stderr) == (42, b"", b"bye\n")
    p = cli(wasm("cat"), stdin=b"not read")
    assert (p.returncode, p.stdout) == (0, b"")  # the guest's stdin is empty by default


def test_binary_stdin_file_and_args(cli: Callable[..., subprocess.CompletedProcess[bytes]],
                                    wasm: Wasm, tmp_path: Path) -> None:
    blob = bytes(range(256)) * 4
    (tmp_path / "in.bin").write_bytes(blob)
    p = cli("--stdin", str(tmp_path / "in.bin"), wasm("cat"))
    assert p.stdout == blob
    p = cli("--stdin", "-", wasm("cat"), stdin=blob)
    assert p.stdout == blob
    p = cli("--env", "A=1", "--env", "B=x=y", wasm("args"), "--fuel", "-x")
    assert p.stdout.decode().splitlines() == ["argv[0]=args.wasm", "argv[1]=--fuel",
                                              "argv[2]=-x", "env A=1", "env B=x=y"]


def test_dir_and_mem(cli: Callable[..., subprocess.CompletedProcess[bytes]], wasm: Wasm,
                     tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("host file")
    p = cli("--dir", f"{tmp_path}::/data", "--mem", "/tmp", wasm("fsops"),
            "read", "/data/in.txt", "--", "write", "/data/out.txt", "o", "--",
            "write", "/tmp/scratch", "s", "--", "ls", "/tmp")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"host filescratch\n"
    assert (tmp_path / "out.txt").read_text() == "o"
    p = cli("--dir", ".", wasm("fsops"), "write", "rel.txt", "r", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "rel.txt").read_text() == "r"
    p = cli("--dir", str(tmp_path), wasm("fsops"), "read", f"{tmp_path}/in.txt")
    assert p.stdout == b"host file"


@pytest.mark.parametrize("flags, module, code, words", [
    (["--timeout", "0.1"], "loop", 124, "time limit"),
    (["--fuel", "1000"], "loop", 126, "fuel"),
    (["--memory", "16M"], "memhog", 137, "memory limit"),
    ([], "exit 126", 134, "wasm trap"),
])
def test_limits(cli: Callable[..., subprocess.CompletedProcess[bytes]], wasm: Wasm,
                flags: list[str], module: str, code: int, words: str) -> None:
    name, *args = module.split()
    p = cli(*flags, wasm(name), *args)
    assert p.returncode == code
    last = p.stderr.decode().splitlines()[-1]
    assert last.startswith("oanix-run: ") and words in last
    assert "Traceback" not in p.stderr.decode()


def test_max_output(cli: Callable[..., subprocess.CompletedProcess[bytes]],
                    wasm: Wasm) -> None:
    p = cli("--max-output", "1K", wasm("flood"), "100000")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"x" * 1024, b"done\n")


@pytest.mark.parametrize("args, words", [
    (["/nonexistent/m.wasm"], "no such module"),
    (["--fuel", "many", "M"], "--fuel"),
    (["--fuel", "0", "M"], "--fuel"),
    (["--timeout", "-1", "M"], "--timeout"),
    (["--memory", "12Q", "M"], "--memory"),
    (["--bogus-flag", "M"], "bogus"),
    ([], "required"),
    (["--dir", "/nonexistent-dir", "M"], "nonexistent-dir"),
    (["--stdin", "/nonexistent-file", "M"], "nonexistent-file"),
    (["--env", "=x", "M"], "--env"),
    (["--timeout", "1e308", "M"], "--timeout"),
    (["--timeout", "nan", "M"], "--timeout"),
    (["--fuel", str(2**70), "M"], "--fuel"),
    (["--fuel", "1.5", "M"], "--fuel"),
    (["--memory", str(2**70), "M"], "--memory"),
    (["--memory", "-1", "M"], "--memory"),
    (["--max-output", "1e999999999", "M"], "--max-output"),
    (["--env", "A=" + os.fsdecode(b"\xff"), "M"], "--env"),
    (["M", "ok", os.fsdecode(b"\xfe")], "argument 2"),
    (["--dir", os.fsdecode(b"/tmp/\xff"), "M"], "--dir"),
    (["--dir", "/tmp::" + os.fsdecode(b"/\xff"), "M"], "--dir"),
    (["--mem", os.fsdecode(b"/\xff"), "M"], "--mem"),
])
def test_usage_errors(cli: Callable[..., subprocess.CompletedProcess[bytes]], wasm: Wasm,
                      args: list[str], words: str) -> None:
    args = [wasm("hello") if a == "M" else a for a in args]
    p = cli(*args)
    assert p.returncode == 125 and p.stdout == b""
    assert words in one_line(p.stderr)


def test_value_spellings(cli: Callable[..., subprocess.CompletedProcess[bytes]],
                         wasm: Wasm) -> None:
    """The limits take the spellings of ``oanix.values``, as a manifest does."""
    p = cli("--timeout", "500ms", "--fuel", "1e9", "--memory", "256MiB",
            "--max-output", "1_000", wasm("hello"))
    assert p.returncode == 0, p.stderr
    p = cli("--timeout", "1m", "--fuel", "10_000_000_000", "--memory", "0.5G", wasm("hello"))
    assert p.returncode == 0, p.stderr
    p = cli("--fuel", "1e3", wasm("loop"))
    assert p.returncode == 126 and "fuel of 1000 instructions" in p.stderr.decode()


def test_invalid_module(cli: Callable[..., subprocess.CompletedProcess[bytes]],
                        tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\x00asm\x01\x00\x00\x00\xff\xff")
    p = cli(str(bad))
    assert p.returncode == 125 and "bad.wasm" in one_line(p.stderr)


def test_help(cli: Callable[..., subprocess.CompletedProcess[bytes]]) -> None:
    p = cli("--help")
    text = p.stdout.decode()
    assert p.returncode == 0
    for code in ("124", "125", "126", "134", "137"):
        assert code in text
