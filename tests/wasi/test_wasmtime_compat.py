"""The private parts of wasmtime-py oanix relies on (``oanix.wasi._wasmtime_compat``) are
there in the installed release and still do what the runtime needs: run this first when
moving the ``wasmtime`` pin. Each failure names the missing symbol."""

from __future__ import annotations

import importlib
import itertools
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import pytest
import wasmtime

from oanix.wasi import _wasmtime_compat as compat
from oanix.wasi.cache import wasmtime_version

Wasm = Callable[[str], str]


@pytest.mark.parametrize("module, name", compat.REQUIRED,
                         ids=[f"{m}.{n}" for m, n in compat.REQUIRED])
def test_the_private_symbol_is_there(module: str, name: str) -> None:
    found = hasattr(importlib.import_module(module), name)
    assert found, (f"wasmtime {wasmtime_version()} has no {module}.{name}: adapt "
                   f"oanix/wasi/_wasmtime_compat.py before moving the wasmtime pin")


def test_missing_names_nothing() -> None:
    assert compat.missing() == [], f"wasmtime {wasmtime_version()} lacks {compat.missing()}"


def test_missing_names_a_symbol_a_release_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself can fail: a symbol taken away is named."""
    ffi = importlib.import_module("wasmtime._ffi")
    monkeypatch.delattr(ffi, "wasmtime_trap_new_code")
    assert compat.missing() == ["wasmtime._ffi.wasmtime_trap_new_code"]


def test_the_output_table_still_holds_the_callbacks_of_a_live_store(wasm: Wasm) -> None:
    """``CUSTOM_OUTPUTS.handles`` is where wasmtime keeps output callbacks until it lets
    them go: the runtime waits on it at exit."""
    outputs = importlib.import_module("wasmtime._wasi").CUSTOM_OUTPUTS
    assert isinstance(getattr(outputs, "handles", None), dict), (
        f"wasmtime {wasmtime_version()}: wasmtime._wasi.CUSTOM_OUTPUTS.handles is no "
        f"longer a dict")
    got: list[bytes] = []

    def sink(data: bytes) -> None:
        got.append(data)

    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = wasmtime.Module.from_file(engine, wasm("hello"))
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.stdout_custom = sink
    store.set_wasi(wasi)
    assert sink in compat.held_output_callbacks(), (
        "wasmtime._wasi.CUSTOM_OUTPUTS.handles does not hold the stdout callback")
    start = linker.instantiate(store, module).exports(store)["_start"]
    assert isinstance(start, wasmtime.Func)
    start(store)
    assert b"".join(got)


def _run(wasm_path: str, prepare: Callable[[wasmtime.Store, wasmtime.WasiConfig], Any],
         engine: wasmtime.Engine | None = None) -> bytes:
    """Run ``wasm_path`` with its stdout in a file; what it wrote."""
    engine = engine or wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = wasmtime.Module.from_file(engine, wasm_path)
    store = wasmtime.Store(engine)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        wasi = wasmtime.WasiConfig()
        wasi.stdout_file = out
        prepare(store, wasi)
        store.set_wasi(wasi)
        start = linker.instantiate(store, module).exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
        finally:
            store.close()
        with open(out, "rb") as f:
            return f.read()


def test_set_stdin_bytes_feeds_the_guest(wasm: Wasm) -> None:
    data = bytes(range(256)) * 40
    out = _run(wasm("cat"), lambda _store, wasi: compat.set_stdin_bytes(wasi, data))
    assert out == data


def test_an_epoch_callback_stops_the_guest_with_the_trap_it_returns(wasm: Wasm) -> None:
    """``wasmtime_store_epoch_deadline_callback`` with a trap from ``wasmtime_trap_new_code``
    stops a looping guest as a plain deadline would (``TrapCode.INTERRUPT``)."""
    calls = itertools.count()

    def on_deadline(_ctx: Any, _data: int | None, delta: Any, kind: Any) -> int:
        if next(calls) < 3:
            delta[0] = 1
            kind[0] = 0  # continue
            return 0
        return compat.trap_new_code(wasmtime.TrapCode.INTERRUPT)

    callback = compat.EPOCH_CALLBACK_TYPES[1](on_deadline)
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = True  # a callback that cannot stop the guest: out of fuel, no hang
    engine = wasmtime.Engine(config)

    def prepare(store: wasmtime.Store, _wasi: wasmtime.WasiConfig) -> None:
        store.set_fuel(2_000_000_000)
        compat.set_epoch_deadline_callback(store, callback, 7,
                                           compat.EPOCH_CALLBACK_TYPES[3]())
        store.set_epoch_deadline(1)

    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(0.005):
            engine.increment_epoch()

    t = threading.Thread(target=ticker, daemon=True)
    t.start()
    try:
        with pytest.raises(wasmtime.Trap) as info:
            _run(wasm("loop"), prepare, engine)
    finally:
        stop.set()
        t.join()
    assert info.value.trap_code == wasmtime.TrapCode.INTERRUPT
    assert next(calls) >= 4
