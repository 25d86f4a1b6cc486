"""Attacks on the SQL capability (SqlFs): getting around read-only, reaching other files,
flooding the host with a huge result, and hanging it with a slow query. Each test performs
the attack and fails if it works."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oanix import SqlFs


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "data" / "app.db"
    path.parent.mkdir()
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, secret TEXT);
        INSERT INTO users VALUES (1, 'ann', 's1'), (2, 'bob', 's2');
        CREATE INDEX users_name ON users (name);
        CREATE TABLE big (n INTEGER);
        WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c LIMIT 20000)
        INSERT INTO big SELECT i FROM c;
    """)
    con.commit()
    con.close()
    return str(path)


@pytest.fixture
def other(tmp_path: Path) -> str:
    """Another database on the host that no query may read or write."""
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE private (x TEXT)")
    con.execute("INSERT INTO private VALUES ('host only')")
    con.commit()
    con.close()
    return str(path)


def run(sql: SqlFs, text: str) -> dict[str, Any]:
    sql.write_text("/query", text)
    raw = sql.read_bytes("/result")
    assert b"Traceback" not in raw
    result: dict[str, Any] = json.loads(raw)
    return result


def snapshot(directory: str) -> dict[str, str]:
    return {name: hashlib.sha256(Path(directory, name).read_bytes()).hexdigest()
            for name in sorted(os.listdir(directory))}


@pytest.fixture
def readonly(db: str) -> Iterator[SqlFs]:
    with SqlFs(db) as sql:
        yield sql


WRITES = [
    "INSERT INTO users VALUES (3, 'eve', 'x')",
    "UPDATE users SET secret = 'pwned'",
    "DELETE FROM users",
    "REPLACE INTO users VALUES (1, 'eve', 'x')",
    "INSERT INTO users VALUES (1, 'eve', 'x') ON CONFLICT (id) DO UPDATE SET name = 'eve'",
    "WITH v(x) AS (SELECT 1) INSERT INTO users (name) SELECT 'eve' FROM v",
    "DROP TABLE users",
    "ALTER TABLE users ADD COLUMN pwned TEXT",
    "CREATE TABLE pwned (x)",
    "CREATE TEMP TABLE pwned (x)",
    "CREATE INDEX pwned ON users (name)",
    "CREATE VIEW pwned AS SELECT 1",
    "CREATE TRIGGER pwned AFTER INSERT ON users BEGIN DELETE FROM users; END",
    "REINDEX",
    "ANALYZE",
    "VACUUM",
]

LIFTS = [  # what would lift the read-only locks, or reach outside the database
    "PRAGMA query_only = 0",
    "PRAGMA query_only = OFF",
    "PRAGMA writable_schema = ON",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA user_version = 7",
    "PRAGMA temp_store_directory = '/tmp'",
    "PRAGMA database_list",
    "BEGIN IMMEDIATE",
    "SAVEPOINT s",
    "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libsqlite3.so.0')",
    "SELECT load_extension('mod_spatialite')",
    "SELECT fts3_tokenizer('simple')",
]


@pytest.mark.parametrize("statement", WRITES)
def test_read_only_refuses_every_write(readonly: SqlFs, db: str, statement: str) -> None:
    before = snapshot(os.path.dirname(db))
    r = run(readonly, statement)
    assert "error" in r and r["error"] in ("read_only", "not_authorized"), r
    assert snapshot(os.path.dirname(db)) == before
    assert run(readonly, "SELECT count(*) FROM users")["rows"] == [[2]]


@pytest.mark.parametrize("statement", LIFTS)
def test_read_only_cannot_be_lifted(readonly: SqlFs, db: str, statement: str) -> None:
    before = snapshot(os.path.dirname(db))
    r = run(readonly, statement)
    assert r.get("error") == "not_authorized", r
    # and a write right after still fails
    r = run(readonly, "INSERT INTO users VALUES (3, 'eve', 'x')")
    assert r.get("error") == "read_only", r
    assert snapshot(os.path.dirname(db)) == before


@pytest.mark.parametrize("writable", [False, True])
def test_attach_and_vacuum_into_reach_no_other_file(db: str, other: str, tmp_path: Path,
                                                    writable: bool) -> None:
    target = tmp_path / "planted.db"
    before = snapshot(str(tmp_path / "data")), Path(other).read_bytes()
    with SqlFs(db, writable=writable) as sql:
        for statement in [
            f"ATTACH '{other}' AS o",
            f"ATTACH DATABASE '{target}' AS p",
            f"ATTACH 'file:{other}?mode=ro' AS o",
            "ATTACH ':memory:' AS m",
            f"VACUUM INTO '{target}'",
            "DETACH DATABASE main",
        ]:
            r = run(sql, statement)
            assert r.get("error") == "not_authorized", (statement, r)
        r = run(sql, "SELECT * FROM o.private")
        assert r.get("error") == "sql_error", r
        for statement in WRITES[:1] + LIFTS:
            r = run(sql, statement)
            assert r.get("error") in ("not_authorized", None if writable else "read_only"), r
    assert not target.exists()
    assert Path(other).read_bytes() == before[1]
    if not writable:
        assert snapshot(str(tmp_path / "data")) == before[0]


def test_writable_still_refuses_schema_pragmas(db: str) -> None:
    with SqlFs(db, writable=True) as sql:
        assert run(sql, "PRAGMA writable_schema = 1")["error"] == "not_authorized"
        r = run(sql, "UPDATE sqlite_schema SET sql = 'x'")
        assert "error" in r
        assert run(sql, "SELECT count(*) FROM users")["rows"] == [[2]]
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


# -- huge results --------------------------------------------------------------------------------


@pytest.mark.parametrize("statement", [
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT i FROM c",
    "SELECT a.n, b.n FROM big a, big b",
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c LIMIT 100) "
    "SELECT randomblob(200000) FROM c",
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c LIMIT 100) "
    "SELECT substr(hex(randomblob(100000)), 1, 150000) FROM c",
])
def test_huge_results_are_cut(db: str, statement: str) -> None:
    limit = 256 << 10
    with SqlFs(db, max_rows=5000, max_result_bytes=limit, timeout=5) as sql:
        r = run(sql, statement)
        assert r.get("truncated") is True, {k: v for k, v in r.items() if k != "rows"}
        assert r["row_count"] <= 5000
        assert len(sql.read_bytes("/result")) <= limit + 4096


@pytest.mark.parametrize("statement", [
    "SELECT zeroblob(1000000000)",
    "SELECT randomblob(2000000000)",
    "SELECT replace(hex(zeroblob(100000)), '0', hex(zeroblob(100000)))",
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c LIMIT 200000) "
    "SELECT group_concat('xxxxxxxxxx') FROM c",
])
def test_one_huge_value_is_refused(readonly: SqlFs, statement: str) -> None:
    t0 = time.monotonic()
    r = run(readonly, statement)
    assert r.get("error") == "too_large", r
    assert time.monotonic() - t0 < 30
    assert len(readonly.read_bytes("/result")) < 4096


# -- slow queries --------------------------------------------------------------------------------


@pytest.mark.parametrize("statement", [
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT count(*) FROM c",
    "SELECT count(*) FROM big a, big b, big c",
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) "
    "SELECT i FROM c ORDER BY random() LIMIT 1",
    "SELECT max(length(hex(randomblob(1000)))) FROM big a, big b",
])
def test_slow_queries_are_stopped(db: str, statement: str) -> None:
    with SqlFs(db, timeout="200ms") as sql:
        t0 = time.monotonic()
        r = run(sql, statement)
        elapsed = time.monotonic() - t0
        assert r.get("error") == "timeout", r
        assert elapsed < 5, elapsed  # a 200 ms promise, on a loaded machine
        assert run(sql, "SELECT name FROM users WHERE id = 1")["rows"] == [["ann"]]


@pytest.mark.parametrize("statement", [
    "SELECT instr(hex(zeroblob(500000)), hex(zeroblob(250000)) || '1')",
    "SELECT hex(zeroblob(500000)) LIKE '%' || hex(zeroblob(20000)) || '1%'",
    "SELECT printf('%.*c', 1000000000, 'x')",
])
def test_a_query_stuck_in_one_function_is_killed(db: str, statement: str) -> None:
    """One call of a built-in function never returns to SQLite's progress handler (these
    run for 10 s to minutes): the query's process is killed, the next query gets a new
    one."""
    with SqlFs(db, timeout="300ms") as sql:
        t0 = time.monotonic()
        r = run(sql, statement)
        assert time.monotonic() - t0 < 5
        assert r.get("error") == "timeout", r
        assert run(sql, "SELECT name FROM users WHERE id = 2")["rows"] == [["bob"]]


def test_a_killed_write_leaves_the_database_whole(db: str) -> None:
    with SqlFs(db, writable=True, timeout="300ms") as sql:
        r = run(sql, "INSERT INTO users (name) SELECT instr(hex(zeroblob(500000)), "
                     "hex(zeroblob(250000)) || '1') FROM big")
        assert r.get("error") == "timeout", r
        assert run(sql, "SELECT count(*) FROM users")["rows"] == [[2]]
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


def test_a_slow_query_does_not_block_the_host_forever(db: str) -> None:
    """Another thread's query waits for the slow one, which is stopped at its timeout."""
    with SqlFs(db, timeout="300ms") as sql:
        results: list[dict[str, Any]] = []
        slow = threading.Thread(target=lambda: results.append(sql.execute(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) "
            "SELECT count(*) FROM c")))
        slow.start()
        time.sleep(0.05)
        t0 = time.monotonic()
        fast = sql.execute("SELECT 1")
        assert time.monotonic() - t0 < 5
        slow.join()
        assert results[0]["error"] == "timeout" and fast["rows"] == [[1]]


def test_a_locked_database_does_not_hang_a_write(db: str) -> None:
    """A host process holds the write lock: the agent's write gives up at its timeout."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with SqlFs(db, writable=True, timeout="300ms") as sql:
            t0 = time.monotonic()
            r = run(sql, "INSERT INTO users (name) VALUES ('eve')")
            assert time.monotonic() - t0 < 5
            assert r.get("error") == "sql_error" and "locked" in r["message"], r
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_query_file_cap_holds_while_writing(db: str) -> None:
    with SqlFs(db, max_file_bytes=4096) as sql:
        f = sql.open("/query", "wb")
        f.write(b"SELECT 1 -- " + b"x" * 3000)
        with pytest.raises(OSError):
            f.write(b"x" * 2000)
        f.close()
        assert sql.read_bytes("/result") == b""  # the incomplete query never ran
