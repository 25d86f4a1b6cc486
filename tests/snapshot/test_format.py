"""The format can be read without oanix: the stdlib sqlite3 and json, and the layout the
docstring of oanix.snapshot.format describes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from oanix import MemFs, OanixEnv


def test_reading_a_workspace_with_sqlite3_and_json_alone(tmp_path: Path) -> None:
    ws = MemFs()
    ws.makedirs("/src/pkg")
    ws.write_text("/src/pkg/mod.py", "x = 1\n")
    ws.write_bytes("/data.bin", b"\x00\x01\xff")
    with OanixEnv(workspace=ws) as env:
        env.logs.event("info", "hello")
        env.snapshot(tmp_path / "s.oanix")

    con = sqlite3.connect(tmp_path / "s.oanix")
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0x4F414E58
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    meta = dict(con.execute("SELECT key, value FROM meta"))
    assert (meta["format"], meta["version"]) == ("oanix-snapshot", "1")
    root = json.loads(meta["root"])
    kind, state = con.execute("SELECT kind, state FROM objects WHERE id = ?",
                              (root["workspace"],)).fetchone()
    assert kind == "memfs"
    blobs = {k: bytes(v) for k, v in con.execute("SELECT sha256, data FROM blobs")}
    files = {e[0]: blobs[e[3]["$blob"]] for e in json.loads(state)["entries"] if e[1] == "f"}
    assert files == {"/src/pkg/mod.py": b"x = 1\n", "/data.bin": b"\x00\x01\xff"}
    assert all(hashlib.sha256(v).hexdigest() == k for k, v in blobs.items())
    mounts = [r[0] for r in con.execute(
        "SELECT path FROM mounts WHERE namespace = ? ORDER BY seq", (root["namespace"],))]
    assert mounts == ["/bin", "/cap/proc", "/logs", "/logs/receipts", "/tmp", "/workspace"]
    kind, state = con.execute("SELECT kind, state FROM objects WHERE id = ?",
                              (root["logs"],)).fetchone()
    events = blobs[json.loads(state)["files"]["/events.jsonl"][1]["$blob"]]
    assert json.loads(events)["message"] == "hello"
    con.close()
