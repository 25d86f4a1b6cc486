"""The private parts of wasmtime-py oanix relies on, all in one place.

wasmtime-py wraps most of wasmtime's C API, but not three calls the runtime needs, and it
keeps the output callbacks it holds in a private table. They are reached here and nowhere
else, so a wasmtime release that renames or drops one breaks this module alone, at import,
with an ``ImportError`` naming the missing symbol; ``tests/wasi/test_wasmtime_compat.py``
checks each of them (and what it is used for) against the installed release, so moving the
``wasmtime`` pin means running that test first.

* ``wasmtime._ffi``: ``wasm_byte_vec_t``, ``wasm_byte_vec_new`` and
  ``wasi_config_set_stdin_bytes`` (``set_stdin_bytes``: a run's stdin from memory);
  ``wasmtime_trap_new_code`` (``trap_new_code``: the trap an epoch callback stops a guest
  with).
* ``wasmtime._bindings``: ``wasmtime_store_epoch_deadline_callback`` and the argument types
  of its raw ctypes function ``_wasmtime_store_epoch_deadline_callback``
  (``set_epoch_deadline_callback``, ``EPOCH_CALLBACK_TYPES``).
* ``wasmtime._wasi.CUSTOM_OUTPUTS.handles``: the output callbacks wasmtime still holds
  (``held_output_callbacks``).

Locking: none; these are plain calls into wasmtime (``set_epoch_deadline_callback`` and
``set_stdin_bytes`` before the store's run starts, on its thread).
"""

from __future__ import annotations

import ctypes
import importlib
from collections.abc import Callable
from typing import Any, Final

import wasmtime

__all__ = ["EPOCH_CALLBACK_TYPES", "REQUIRED", "held_output_callbacks", "missing",
           "set_epoch_deadline_callback", "set_stdin_bytes", "trap_new_code"]

REQUIRED: Final = (
    ("wasmtime._ffi", "wasm_byte_vec_t"),
    ("wasmtime._ffi", "wasm_byte_vec_new"),
    ("wasmtime._ffi", "wasi_config_set_stdin_bytes"),
    ("wasmtime._ffi", "wasmtime_trap_new_code"),
    ("wasmtime._bindings", "wasmtime_store_epoch_deadline_callback"),
    ("wasmtime._bindings", "_wasmtime_store_epoch_deadline_callback"),
    ("wasmtime._wasi", "CUSTOM_OUTPUTS"),
)
"""Every private ``(module, name)`` of wasmtime-py used here."""


def missing() -> list[str]:
    """The dotted names in ``REQUIRED`` the installed wasmtime lacks (empty: all there)."""
    out = []
    for module, name in REQUIRED:
        try:
            found = hasattr(importlib.import_module(module), name)
        except ImportError:
            found = False
        if not found:
            out.append(f"{module}.{name}")
    return out


def _private(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ImportError(f"this wasmtime ({_version()}) has no {module}.{name}, which "
                          f"oanix relies on (oanix/wasi/_wasmtime_compat.py)") from None


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("wasmtime")
    except Exception:
        return "version unknown"


_byte_vec_t: Final = _private("wasmtime._ffi", "wasm_byte_vec_t")
_byte_vec_new: Final = _private("wasmtime._ffi", "wasm_byte_vec_new")
_set_stdin_bytes: Final = _private("wasmtime._ffi", "wasi_config_set_stdin_bytes")
_trap_new_code: Final = _private("wasmtime._ffi", "wasmtime_trap_new_code")
_set_epoch_callback: Final = _private("wasmtime._bindings",
                                      "wasmtime_store_epoch_deadline_callback")
EPOCH_CALLBACK_TYPES: Final[list[Any]] = _private(
    "wasmtime._bindings", "_wasmtime_store_epoch_deadline_callback").argtypes
"""The ctypes argument types of ``wasmtime_store_epoch_deadline_callback``: (store,
callback, data, finalizer); ``[1]`` and ``[3]`` make the callback and finalizer."""
# Optional at run time: without it, finished runs are not waited for at exit.
_custom_outputs: Final = getattr(importlib.import_module("wasmtime._wasi"), "CUSTOM_OUTPUTS",
                                 None)


def set_stdin_bytes(wasi: wasmtime.WasiConfig, data: bytes) -> None:
    """``wasi_config_set_stdin_bytes``, which wasmtime-py does not wrap (C API)."""
    vec = _byte_vec_t()
    buf = (ctypes.c_uint8 * max(1, len(data))).from_buffer_copy(data or b"\0")
    _byte_vec_new(ctypes.byref(vec), len(data), buf)
    _set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))  # takes ownership


def trap_new_code(code: wasmtime.TrapCode) -> int:
    """The address of a new trap with ``code`` (``wasmtime_trap_new_code``), as an epoch
    deadline callback returns it to stop the guest."""
    trap = _trap_new_code(ctypes.c_uint8(code.value))
    return ctypes.cast(trap, ctypes.c_void_p).value or 0


def set_epoch_deadline_callback(store: wasmtime.Store, callback: Callable[..., int],
                                data: int, finalizer: Any) -> None:
    """``wasmtime_store_epoch_deadline_callback``: ``callback`` (made with
    ``EPOCH_CALLBACK_TYPES[1]``) is called on the guest's thread at each deadline."""
    _set_epoch_callback(store.ptr(), callback, ctypes.c_void_p(data), finalizer)


def held_output_callbacks() -> list[object]:
    """The output callbacks wasmtime still holds (it releases them on a thread of its own
    after a store is closed)."""
    handles = getattr(_custom_outputs, "handles", None)
    return list(handles.values()) if isinstance(handles, dict) else []
