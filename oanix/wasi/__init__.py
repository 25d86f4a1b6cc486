"""The WASI bridge: run wasm programs (CPython included) over an oanix namespace.

``WasiRuntime.run(module, namespace, RunConfig(...)) -> RunResult`` runs a WASI preview 1
command with fuel, memory and time limits; the namespace's directories are preopened for
the guest and what it changes is written back (``oanix.wasi.staging``). ``run_python`` runs
CPython for WASI the same way; ``PythonSession`` keeps one interpreter between calls.
"""

from .cache import CacheStatistics, ModuleCache
from .python import python_wasm_path, run_python
from .records import NamespacePath, Preopen, RunConfig, RunResult, Trap
from .runtime import CompiledModule, WasiRuntime
from .session import PythonSession

__all__ = [
    "CacheStatistics",
    "CompiledModule",
    "ModuleCache",
    "NamespacePath",
    "Preopen",
    "PythonSession",
    "RunConfig",
    "RunResult",
    "Trap",
    "WasiRuntime",
    "python_wasm_path",
    "run_python",
]
