"""KvFs: keys as files, atomic values, compare-and-set through .cas, key validation,
persistence, and use from a shell and a wasm guest."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import oanix
from oanix import KvFs, Namespace, Shell, SqliteFs
from oanix.errors import (
    AlreadyExists,
    InvalidContent,
    InvalidPath,
    IsADirectory,
    NameTooLong,
    NoSpace,
    NotADirectory,
    NotFound,
    PermissionDenied,
)
from oanix.services.kv import MAX_KEY_BYTES
from oanix.wasi import RunConfig, WasiRuntime

Wasm = Callable[[str], str]


@pytest.fixture
def kv() -> Iterator[KvFs]:
    with KvFs(":memory:") as store:
        yield store


def cas(kv: KvFs, **request: object) -> dict[str, object]:
    kv.write_text("/.cas", json.dumps(request))
    result: dict[str, object] = json.loads(kv.read_bytes("/.cas.result"))
    return result


def test_exported() -> None:
    assert oanix.KvFs is KvFs and "KvFs" in oanix.__all__


# -- keys as files -----------------------------------------------------------------------------


def test_keys_are_files(kv: KvFs) -> None:
    kv.write_bytes("/b", b"two")
    kv.write_text("/a", "one")
    with kv.open("/c", "wb") as f:
        f.write(b"th")
        f.write(b"ree")
    assert kv.listdir("/") == [".cas", ".cas.result", "a", "b", "c"]
    assert kv.keys() == ["a", "b", "c"]
    assert kv.read_bytes("/c") == b"three" and kv.get("c") == b"three"
    st = kv.stat("/a")
    assert (st.name, st.size, st.is_dir) == ("a", 3, False) and st.mtime > 0
    assert kv.stat("/").is_dir and kv.stat("/").size == 5
    with kv.open("/a", "ab") as f:
        f.write(b"!")
    assert kv.get("a") == b"one!"
    with kv.open("/a", "r+b") as f:
        assert f.read() == b"one!"
        f.seek(0)
        f.write(b"O")
    assert kv.get("a") == b"One!"
    kv.remove("/b")
    assert kv.get("b") is None and not kv.exists("/b")
    with pytest.raises(NotFound):
        kv.remove("/b")
    with pytest.raises(NotFound):
        kv.read_bytes("/b")
    kv.rename("/a", "/renamed")
    assert kv.keys() == ["c", "renamed"] and kv.get("renamed") == b"One!"


def test_value_appears_only_at_close(kv: KvFs) -> None:
    kv.set("k", b"old")
    with kv.open("/k", "wb") as f:
        f.write(b"new")
        assert kv.get("k") == b"old"
    assert kv.get("k") == b"new"
    with kv.open("/fresh", "wb") as f:
        f.write(b"x")
        assert not kv.exists("/fresh")  # no empty key while it is being written
    assert kv.get("fresh") == b"x"


def test_exclusive_create_is_checked_at_close(kv: KvFs) -> None:
    with pytest.raises(AlreadyExists):
        kv.set("taken", b"1")
        kv.open("/taken", "xb")
    f = kv.open("/race", "xb")
    f.write(b"mine")
    kv.set("race", b"theirs")
    with pytest.raises(AlreadyExists):
        f.close()
    assert kv.get("race") == b"theirs"


def test_readers_never_see_half_a_value(tmp_path: Path) -> None:
    path = str(tmp_path / "kv.db")
    values = [bytes([i]) * 200_000 for i in range(1, 30)]
    with KvFs(path) as writer, KvFs(path) as other:
        writer.set("big", values[0])
        stop = threading.Event()
        bad: list[int] = []
        reads = [0]

        def reader(store: KvFs) -> None:
            while not stop.is_set():
                data = store.read_bytes("/big")
                if data not in values:
                    bad.append(len(data))
                reads[0] += 1

        threads = [threading.Thread(target=reader, args=(s,)) for s in (writer, other)]
        for t in threads:
            t.start()
        for v in values[1:]:
            with writer.open("/big", "wb") as f:
                for i in range(0, len(v), 10_000):
                    f.write(v[i:i + 10_000])
        stop.set()
        for t in threads:
            t.join()
    assert not bad and reads[0] > 0


# -- key names ---------------------------------------------------------------------------------


def test_key_names_are_validated(kv: KvFs) -> None:
    with pytest.raises(InvalidPath, match="flat") as exc:
        kv.write_bytes("/a/b", b"x")
    assert exc.value.path == "/a/b"
    with pytest.raises(InvalidPath):
        kv.write_bytes("/a\x00b", b"x")
    with pytest.raises(NameTooLong) as long_exc:
        kv.write_bytes("/" + "k" * (MAX_KEY_BYTES + 1), b"x")
    assert str(MAX_KEY_BYTES) in str(long_exc.value)
    kv.write_bytes("/" + "é" * (MAX_KEY_BYTES // 2), b"fits")  # 254 bytes of UTF-8
    with pytest.raises(NameTooLong):
        kv.write_bytes("/" + "é" * (MAX_KEY_BYTES // 2 + 1), b"x")
    with pytest.raises(InvalidPath, match="control files"):
        kv.write_bytes("/.hidden", b"x")
    with pytest.raises(PermissionDenied):
        kv.mkdir("/dir")
    # reads of names that cannot be keys are plain misses
    assert not kv.exists("/.hidden") and not kv.exists("/a/b")
    kv.set("file", b"1")
    with pytest.raises(NotADirectory):
        kv.stat("/file/below")
    with pytest.raises(NotADirectory):
        kv.listdir("/file")
    with pytest.raises(IsADirectory):
        kv.read_bytes("/")
    for bad in ["", "a/b", "a\x00", ".x", "k" * 300, "\ud800"]:
        with pytest.raises((InvalidPath, NameTooLong)):
            kv.set(bad, b"x")
    assert kv.keys() == ["file", "é" * (MAX_KEY_BYTES // 2)]


def test_value_size_cap() -> None:
    with KvFs(max_value_bytes=10) as kv:
        with pytest.raises(NoSpace), kv.open("/k", "wb") as f:
            f.write(b"x" * 11)
        assert kv.get("k") is None
        with pytest.raises(NoSpace):
            kv.set("k", b"x" * 11)
        r = cas(kv, key="k", expect=None, value="x" * 11)
        assert r["swapped"] is False and r["error"] == "refused"
        assert kv.get("k") is None
        with pytest.raises(NoSpace):  # a request is capped too: 2 values in base64 + 4 KiB
            kv.write_bytes("/.cas", b" " * (3 * 10 + 4097))
        with pytest.raises(NoSpace), kv.open("/.cas", "wb") as f:
            f.write(b" " * (3 * 10 + 4097))
        assert json.loads(kv.read_bytes("/.cas.result"))["id"] == 1  # nothing more ran


def test_control_files(kv: KvFs) -> None:
    with pytest.raises(PermissionDenied, match="write-only"):
        kv.read_bytes("/.cas")
    with pytest.raises(PermissionDenied, match="read-only"):
        kv.write_bytes("/.cas.result", b"x")
    with pytest.raises(PermissionDenied):
        kv.remove("/.cas")
    kv.set("a", b"1")
    with pytest.raises(PermissionDenied):
        kv.rename("/a", "/.cas")
    assert kv.read_bytes("/.cas.result") == b""


# -- compare-and-set ---------------------------------------------------------------------------


def test_cas_protocol(kv: KvFs) -> None:
    r = cas(kv, key="n", expect=None, value="1")
    assert r == {"id": 1, "key": "n", "swapped": True, "value": "1"}
    r = cas(kv, key="n", expect=None, value="2")  # exists now: no swap, current value shown
    assert r == {"id": 2, "key": "n", "swapped": False, "value": "1"}
    r = cas(kv, key="n", expect="1", value="2")
    assert r["swapped"] is True and kv.get("n") == b"2"
    r = cas(kv, key="n", expect="2", value=None)  # delete
    assert r == {"id": 4, "key": "n", "swapped": True, "value": None} and kv.get("n") is None
    blob = bytes(range(250, 256))
    r = cas(kv, key="b", expect=None, value_base64=base64.b64encode(blob).decode())
    assert r["swapped"] is True and r["value_base64"] == base64.b64encode(blob).decode()
    r = cas(kv, key="b", expect_base64=base64.b64encode(blob).decode(), value="text")
    assert r["swapped"] is True and kv.get("b") == b"text"
    kv.write_bytes("/.cas", b"  \n")  # an empty request is ignored
    assert json.loads(kv.read_bytes("/.cas.result"))["id"] == 6


@pytest.mark.parametrize("request_, message", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"key": "k", "value": "v"}', "exactly one of 'expect'"),
    (b'{"key": "k", "expect": null}', "exactly one of 'value'"),
    (b'{"key": "k", "expect": 1, "value": "v"}', "string or null"),
    (b'{"key": "k", "expect": null, "value_base64": "@@"}', "not valid base64"),
    (b'{"key": "k", "expect": null, "value": "v", "ttl": 3}', "unknown key"),
    (b'{"expect": null, "value": "v"}', 'missing "key"'),
    (b'{"key": "a/b", "expect": null, "value": "v"}', "cannot hold '/'"),
    (b'{"key": ".cas", "expect": null, "value": "v"}', "control files"),
])
def test_cas_malformed_requests(kv: KvFs, request_: bytes, message: str) -> None:
    kv.write_bytes("/.cas", request_)  # accepted: the answer is in the result
    r = json.loads(kv.read_bytes("/.cas.result"))
    assert r["swapped"] is False and r["error"] == "invalid_request"
    assert message in r["message"]
    assert kv.keys() == []


def test_concurrent_cas_loses_no_update(tmp_path: Path) -> None:
    """Agents each with its own KvFs on one database increment a counter by CAS: every
    increment counts exactly once."""
    path = str(tmp_path / "shared.db")
    per_agent, agents = 40, 4
    stores = [KvFs(path) for _ in range(agents)]
    stores[0].set("counter", b"0")
    swaps = [0] * agents

    def agent(i: int) -> None:
        kv = stores[i]
        done = 0
        while done < per_agent:
            seen = kv.get("counter")
            assert seen is not None
            r = cas(kv, key="counter", expect=seen.decode(), value=str(int(seen) + 1))
            if r["swapped"]:
                done += 1
                swaps[i] += 1

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(agents)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].get("counter") == str(per_agent * agents).encode()
    assert swaps == [per_agent] * agents
    for kv in stores:
        kv.close()


# -- persistence and refused databases ---------------------------------------------------------


def test_reopen_and_schema(tmp_path: Path) -> None:
    path = str(tmp_path / "kv.db")
    with KvFs(path) as kv:
        kv.set("a", b"1")
        kv.set("b", b"\xff")
    with KvFs(path) as kv:
        assert kv.keys() == ["a", "b"] and kv.get("b") == b"\xff"
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT key, value FROM kv ORDER BY key").fetchall() == [
            ("a", b"1"), ("b", b"\xff")]
        assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        con.close()


def test_refused_databases(tmp_path: Path) -> None:
    text = tmp_path / "text"
    text.write_bytes(b"plain text, not SQLite " * 100)
    with pytest.raises(InvalidContent, match="not an SQLite database") as exc:
        KvFs(str(text))
    assert exc.value.path == str(text)
    fs_db = str(tmp_path / "fs.db")
    SqliteFs(fs_db).close()
    with pytest.raises(InvalidContent, match="not an oanix KvFs database"):
        KvFs(fs_db)
    kv_db = str(tmp_path / "kv.db")
    KvFs(kv_db).close()
    with pytest.raises(InvalidContent, match="not an oanix SqliteFs database"):
        SqliteFs(kv_db)
    con = sqlite3.connect(kv_db)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(InvalidContent, match="newer"):
        KvFs(kv_db)


# -- from a shell and from a wasm guest --------------------------------------------------------


def test_shell_uses_the_store(kv: KvFs) -> None:
    ns = Namespace()
    ns.mount("/cap/kv", kv)
    sh = Shell(ns)
    res = sh.exec("echo -n 41 > /cap/kv/counter; ls /cap/kv; "
                  "echo '{\"key\": \"counter\", \"expect\": \"41\", \"value\": \"42\"}' "
                  "> /cap/kv/.cas; cat /cap/kv/.cas.result; cat /cap/kv/counter; echo; "
                  "rm /cap/kv/counter; ls /cap/kv")
    assert res.exit_code == 0, res.stderr
    out = res.stdout.decode()
    assert out.startswith("counter\n")
    assert '"swapped": true' in out and out.endswith("42\n")
    assert kv.keys() == []


def test_wasm_guest_writes_keys(runtime: WasiRuntime, wasm: Wasm, kv: KvFs) -> None:
    """The store is staged like a directory: the guest's writes, removals and .cas
    request reach the database after the run."""
    kv.set("seed", b"from the host")
    kv.set("counter", b"41")
    ns = Namespace()
    ns.mount("/cap/kv", kv)
    res = runtime.run(wasm("fsops"), ns, RunConfig(argv=[
        "read", "/cap/kv/seed", "--", "write", "/cap/kv/answer", "42", "--",
        "rm", "/cap/kv/seed", "--",
        "write", "/cap/kv/.cas", '{"key": "counter", "expect": "41", "value": "42"}']))
    assert res.ok, res.stderr
    assert res.stdout == b"from the host"
    assert kv.keys() == ["answer", "counter"] and kv.get("answer") == b"42"
    assert kv.get("counter") == b"42"
    assert json.loads(kv.read_bytes("/.cas.result"))["swapped"] is True
