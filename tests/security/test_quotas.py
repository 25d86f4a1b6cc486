"""Attacks on the disk budgets of a run and on the size caps of log and request files.

A guest writes far past what its mounts may hold; the run must be stopped while it writes
(``Trap(kind="disk")`` naming the mount and the budget), with the staging holding at most
the budget plus what the guest writes in a tick, and the write-back must keep reporting
what it refuses. Writers of capped service files must get a typed error as the file grows
past its cap, with the excess never held in memory.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Any

import pytest

from oanix import InvalidArgument, MemFs, Namespace, NoSpace
from oanix.cap.http import HttpFs
from oanix.cap.nostr import NostrFs
from oanix.cap.ws.service import MAX_CONTROL_LINE, WsFs
from oanix.errors import InvalidContent
from oanix.services.logs import DEFAULT_MAX_LOG_BYTES, LogsFs
from oanix.wasi import PythonSession, RunConfig, WasiRuntime
from oanix.wasi.python import run_python

FIXTURES = Path(__file__).resolve().parents[2] / "wasi_fixtures"
MIB = 1 << 20

# Writes up to 300 MiB into PATH, 1 MiB a write, telling on stdout how far it got.
FLOOD = """
import os, sys
path, total = sys.argv[1], int(sys.argv[2])
chunk = b"x" * (1 << 20)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
for i in range(total):
    os.write(fd, chunk)
    os.write(1, b"%d\\n" % (i + 1))
os.close(fd)
"""


def _written_mib(stdout: bytes) -> int:
    lines = stdout.split()
    return int(lines[-1]) if lines else 0


def _staged_bytes(rt: WasiRuntime) -> int:
    """Bytes of regular files in every staging directory of ``rt`` now."""
    total = 0
    for _ref, staging in list(rt._stagings.values()):
        for dirpath, _dirs, files in os.walk(staging.base):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


# -- disk budgets of a run ---------------------------------------------------------------


def test_flood_into_a_quota_mount_is_stopped_as_it_writes(rt: WasiRuntime) -> None:
    ns = Namespace()
    ns.mount("/tmp", MemFs(max_bytes=MIB))
    res = run_python(FLOOD, namespace=ns, argv=["/tmp/big", "300"], runtime=rt, timeout=60)
    assert res.trap is not None and res.trap.kind == "disk", (res.trap, res.stderr_text)
    assert res.status == 153 and res.exit_code is None
    assert "/tmp" in res.trap.message and str(MIB) in res.trap.message
    # Stopped while writing: the budget plus a tick's writes, far from the 300 MiB asked
    # (the bound here is generous for a loaded machine; a tick is 10 ms).
    assert _written_mib(res.stdout) < 150
    # What the write-back refuses is still reported, and nothing is left staged.
    assert [p for p, why in res.changes.refused if "NoSpace" in why] == ["/tmp/big"]
    assert not ns.exists("/tmp/big")
    assert _staged_bytes(rt) < MIB


def test_a_mount_without_quota_gets_the_run_ceiling(rt: WasiRuntime) -> None:
    ns = Namespace()
    ns.mount("/scratch", MemFs())
    res = run_python(FLOOD, namespace=ns, argv=["/scratch/big", "300"], runtime=rt,
                     timeout=60, max_disk=4 * MIB)
    assert res.trap is not None and res.trap.kind == "disk"
    assert "/scratch" in res.trap.message and "max_disk" in res.trap.message
    assert _written_mib(res.stdout) < 150
    assert not ns.exists("/scratch/big")


def test_writing_beside_the_mounts_is_bounded_too(rt: WasiRuntime) -> None:
    ns = Namespace()
    ns.mount("/tmp", MemFs(max_bytes=MIB))
    res = run_python(FLOOD, namespace=ns, argv=["/big", "300"], runtime=rt, timeout=60,
                     max_disk=4 * MIB)
    assert res.trap is not None and res.trap.kind == "disk", res.stderr_text
    assert "beside the mounts" in res.trap.message
    assert _written_mib(res.stdout) < 150
    assert _staged_bytes(rt) < MIB


def test_a_host_directory_shown_as_is_grows_by_max_disk_at_most(
        rt: WasiRuntime, tmp_path: Path) -> None:
    from oanix.fs.workspace import WorkspaceFs

    (tmp_path / "old.bin").write_bytes(b"o" * (2 * MIB))
    ns = Namespace()
    ns.mount("/repo", WorkspaceFs(str(tmp_path)))
    res = run_python(FLOOD, namespace=ns, argv=["/repo/big", "300"], runtime=rt,
                     timeout=60, max_disk=4 * MIB)
    assert res.trap is not None and res.trap.kind == "disk", res.stderr_text
    assert "/repo" in res.trap.message and "before the run" in res.trap.message
    assert str(6 * MIB) in res.trap.message  # what it held plus max_disk
    assert _written_mib(res.stdout) < 150
    (tmp_path / "big").unlink()  # the directory is live: what was written stays


def test_many_files_pass_the_file_quota(rt: WasiRuntime) -> None:
    ns = Namespace()
    ns.mount("/tmp", MemFs(max_files=50))
    code = ("import os\n"
            "for i in range(200000):\n"
            "    open(f'/tmp/f{i}', 'w').close()\n")
    res = run_python(code, namespace=ns, runtime=rt, timeout=60)
    assert res.trap is not None and res.trap.kind == "disk", res.stderr_text
    assert "/tmp" in res.trap.message and "50 entries" in res.trap.message
    assert len(ns.listdir("/tmp")) <= 50


def test_a_sparse_file_is_refused_without_being_read(rt: WasiRuntime) -> None:
    ns = Namespace()
    ns.mount("/tmp", MemFs(max_bytes=MIB))
    code = ("f = open('/tmp/sparse', 'wb'); f.seek((64 << 30) - 1); f.write(b'x'); "
            "f.close()")
    res = run_python(code, namespace=ns, runtime=rt, timeout=60)
    # Stopped or not (it may exit before a tick), the 64 GiB file is never read back.
    assert res.trap is None or res.trap.kind == "disk"
    assert [p for p, why in res.changes.refused if "NoSpace" in why] == ["/tmp/sparse"]
    assert not ns.exists("/tmp/sparse")


def test_within_the_quota_nothing_is_stopped(rt: WasiRuntime) -> None:
    ns = Namespace()
    tmp = MemFs(max_bytes=4 * MIB)
    tmp.write_bytes("/old", b"o" * MIB)
    ns.mount("/tmp", tmp)
    code = ("import time\n"
            "with open('/tmp/new', 'wb') as f: f.write(b'n' * (2 << 20))\n"
            "time.sleep(0.1)\n")  # a few ticks measure the tree
    res = run_python(code, namespace=ns, runtime=rt, timeout=60)
    assert res.ok, (res.trap, res.stderr_text)
    assert ns.read_bytes("/tmp/new") == b"n" * (2 * MIB)


def test_a_timeout_still_stops_a_measured_run(rt: WasiRuntime) -> None:
    ns = Namespace()
    ns.mount("/tmp", MemFs(max_bytes=MIB))
    res = rt.run(str(FIXTURES / "loop.wasm"), ns, RunConfig(timeout=0.2))
    assert res.trap is not None and (res.trap.kind, res.trap.code) == ("timeout", "INTERRUPT")
    assert res.duration < 5


def test_the_ceiling_can_be_lifted(rt: WasiRuntime) -> None:
    ns = Namespace()
    ns.mount("/tmp", MemFs())
    res = run_python(FLOOD, namespace=ns, argv=["/tmp/big", "3"], runtime=rt, timeout=60,
                     max_disk=None, max_disk_files=None)
    assert res.ok and ns.stat("/tmp/big").size == 3 * MIB


# -- size caps of service files ------------------------------------------------------------


def _flood_open_file(ns: Namespace, path: str, chunk: bytes, total: int) -> tuple[int, Any]:
    """Write ``chunk`` until ``total`` bytes or NoSpace; the bytes accepted and the file."""
    f = ns.open(path, "wb")
    written = 0
    with pytest.raises(NoSpace) as err:
        while written < total:
            f.write(chunk)
            written += len(chunk)
    assert err.value.filename == path and err.value.errno == errno.ENOSPC
    return written, f


def _inner(f: Any) -> Any:
    """The service's own file object behind a namespace's file (to look at its buffer)."""
    return getattr(f, "_f", f)


def test_a_log_is_capped_by_default() -> None:
    logs = LogsFs()
    ns = Namespace()
    ns.mount("/logs", logs)
    written, f = _flood_open_file(ns, "/logs/stdout.log", b"x" * MIB, 40 * MIB)
    f.close()
    assert written <= DEFAULT_MAX_LOG_BYTES
    assert len(logs.stdout()) <= DEFAULT_MAX_LOG_BYTES  # the excess was never stored
    with pytest.raises(NoSpace, match=r"stdout\.log"):
        ns.write_bytes("/logs/stdout.log", b"y" * MIB)
    assert LogsFs(max_bytes=None).max_bytes is None  # the cap can be lifted


def test_an_unfinished_event_line_is_capped() -> None:
    logs = LogsFs(max_bytes=MIB)
    ns = Namespace()
    ns.mount("/logs", logs)
    f = ns.open("/logs/events.jsonl", "wb")
    with pytest.raises(NoSpace, match=r"events\.jsonl"):
        for _ in range(40):
            f.write(b'{"message": "' + b"a" * (MIB // 4))
    assert len(_inner(f)._partial) <= MIB  # what the open file holds stays under the cap
    with pytest.raises(InvalidArgument, match=r"events\.jsonl"):
        f.close()  # the unfinished line held is parsed, and is no event
    assert logs.events() == []


def test_an_http_request_file_is_capped_as_it_grows() -> None:
    http = HttpFs(max_file_bytes=4 * MIB)
    ns = Namespace()
    ns.mount("/cap/http", http)
    written, f = _flood_open_file(ns, "/cap/http/request", b"x" * MIB, 200 * MIB)
    assert written <= 4 * MIB and _inner(f).held <= 4 * MIB
    f.close()  # nothing submitted: what it held is incomplete
    assert ns.listdir("/cap/http/pending") == [] and ns.listdir("/cap/http/errors") == []
    with pytest.raises(NoSpace, match="request"):
        ns.write_bytes("/cap/http/request", b"y" * (5 * MIB))
    assert HttpFs().max_file_bytes == 16 * MIB


def test_a_ws_message_and_control_line_are_capped() -> None:
    ws = WsFs(max_message_bytes=MIB)
    ns = Namespace()
    ns.mount("/cap/ws", ws)
    written, f = _flood_open_file(ns, "/cap/ws/control", b"c" * (16 << 10), 200 * MIB)
    assert written <= MAX_CONTROL_LINE and len(_inner(f)._pending) <= MAX_CONTROL_LINE
    with pytest.raises(InvalidContent, match="control"):
        f.close()  # the unfinished line held is run, and is no command
    cid = ws.connect("ws://127.0.0.1:9/")
    written, f = _flood_open_file(ns, f"/cap/ws/conns/{cid}/out", b"m" * (64 << 10),
                                  200 * MIB)
    assert written <= MIB and _inner(f).held <= MIB
    f.close()  # nothing queued: what it held is incomplete
    assert ws.status(cid)["queued_out"] == 0, ws.status(cid)


def test_nostr_submit_and_request_files_are_capped() -> None:
    nostr = NostrFs(max_file_bytes=MIB)
    ns = Namespace()
    ns.mount("/cap/nostr", nostr)
    for name in ("submit", "request", "subscriptions/all.json"):
        written, f = _flood_open_file(ns, f"/cap/nostr/{name}", b"n" * (64 << 10), 200 * MIB)
        assert written <= MIB and _inner(f).held <= MIB
        f.close()
    assert ns.listdir("/cap/nostr/outbox") == []
    assert NostrFs().max_file_bytes == MIB


def test_a_guest_request_past_the_cap_is_refused_unread(rt: WasiRuntime) -> None:
    http = HttpFs(max_file_bytes=MIB)
    ns = Namespace()
    ns.mount("/cap/http", http)
    code = "open('/cap/http/request', 'wb').write(b'x' * (8 << 20))"
    res = run_python(code, namespace=ns, runtime=rt, timeout=60)
    assert res.ok, res.stderr_text
    assert [p for p, why in res.changes.refused if "capped" in why] == ["/cap/http/request"]
    assert ns.listdir("/cap/http/pending") == [] and ns.listdir("/cap/http/errors") == []


def test_a_session_call_flooding_a_quota_mount_is_stopped(rt: WasiRuntime) -> None:
    ns = Namespace()
    ns.mount("/tmp", MemFs(max_bytes=MIB))
    with PythonSession(ns, runtime=rt, timeout=60) as py:
        assert py.run("x = 1").ok
        res = py.run("import os\n"
                     "fd = os.open('/tmp/big', os.O_WRONLY | os.O_CREAT)\n"
                     "for i in range(300):\n"
                     "    os.write(fd, b'x' * (1 << 20))\n"
                     "    os.write(1, b'%d\\n' % (i + 1))\n")
        assert res.trap is not None and res.trap.kind == "disk", (res.trap, res.stderr_text)
        assert "/tmp" in res.trap.message and str(MIB) in res.trap.message
        assert _written_mib(res.stdout) < 150
        assert [p for p, why in res.changes.refused if "NoSpace" in why] == ["/tmp/big"]
        assert not py.alive
