"""SqlFs: query and result files, parameters, values, bounds, writable mode, refused
databases, and a wasm guest querying during its run."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import oanix
from oanix import Namespace, Shell, SqlFs
from oanix.errors import (
    InvalidArgument,
    InvalidContent,
    NoSpace,
    NotADirectory,
    NotFound,
    PermissionDenied,
)
from oanix.wasi import RunConfig, WasiRuntime

FIXTURES = Path(__file__).resolve().parent.parent / "wasi_fixtures"


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "shop.db"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, img BLOB);
        INSERT INTO items VALUES (1, 'apple', 0.5, x'89504e47'), (2, 'pear', 0.75, NULL),
                                 (3, 'fig', 2.0, NULL);
    """)
    con.commit()
    con.close()
    return str(path)


@pytest.fixture
def sql(db: str) -> Iterator[SqlFs]:
    with SqlFs(db) as service:
        yield service


def query(sql: SqlFs, text: str | dict[str, Any]) -> dict[str, Any]:
    sql.write_text("/query", text if isinstance(text, str) else json.dumps(text))
    result: dict[str, Any] = json.loads(sql.read_bytes("/result"))
    return result


def test_exported() -> None:
    assert oanix.SqlFs is SqlFs and "SqlFs" in oanix.__all__


def test_select(sql: SqlFs) -> None:
    r = query(sql, "SELECT id, name, price, img FROM items ORDER BY id")
    assert r == {"id": 1, "columns": ["id", "name", "price", "img"],
                 "rows": [[1, "apple", 0.5, {"base64": base64.b64encode(b"\x89PNG").decode()}],
                          [2, "pear", 0.75, None], [3, "fig", 2.0, None]],
                 "row_count": 3, "truncated": False, "changes": 0}
    r = query(sql, "SELECT 1e999, -1e999, 9223372036854775807")
    assert r["rows"] == [["Infinity", "-Infinity", 9223372036854775807]]


def test_json_query_with_params(sql: SqlFs) -> None:
    r = query(sql, {"sql": "SELECT name FROM items WHERE price > ? ORDER BY id",
                    "params": [0.6]})
    assert r["rows"] == [["pear"], ["fig"]]
    r = query(sql, {"sql": "SELECT name FROM items WHERE name = :n", "params": {"n": "fig"}})
    assert r["rows"] == [["fig"]]
    r = query(sql, {"sql": "SELECT id FROM items WHERE img = ?",
                    "params": [{"base64": base64.b64encode(b"\x89PNG").decode()}]})
    assert r["rows"] == [[1]]


@pytest.mark.parametrize("text, kind, message", [
    ("SELECT 1; SELECT 2", "invalid_query", "one SQL statement"),
    ('{"sql": 3}', "invalid_query", '{"sql"'),
    ('{"sql": "SELECT ?", "params": [[1]]}', "invalid_query", "params[0]"),
    ('{"sql": "SELECT ?", "params": [{"base64": "@"}]}', "invalid_query", "base64"),
    ('{"sql": "SELECT ?", "params": 3}', "invalid_query", "array or object"),
    ("{broken", "invalid_query", "not valid JSON"),
    ("SELECT ?", "invalid_query", "bindings"),
    ("SELECT * FROM nowhere", "sql_error", "no such table: nowhere"),
    ("SELEKT 1", "sql_error", "syntax error"),
    ("INSERT INTO items (name) VALUES ('x')", "read_only", "read-only"),
])
def test_errors_come_back_in_the_result(sql: SqlFs, text: str, kind: str,
                                        message: str) -> None:
    r = query(sql, text)
    assert r["error"] == kind and message in r["message"], r
    assert "Traceback" not in sql.read_text("/result")


def test_ids_count_and_empty_writes_are_ignored(sql: SqlFs) -> None:
    assert sql.read_bytes("/result") == b""
    query(sql, "SELECT 1")
    sql.write_bytes("/query", b"  \n")
    assert query(sql, "SELECT 2")["id"] == 2
    assert sql.execute("SELECT ?", [3])["rows"] == [[3]]
    assert json.loads(sql.read_bytes("/result"))["id"] == 3


def test_files(sql: SqlFs) -> None:
    assert sql.listdir("/") == ["query", "result"]
    r = query(sql, "SELECT sql FROM sqlite_schema")
    assert r["rows"][0][0].startswith("CREATE TABLE items (id INTEGER PRIMARY KEY")
    with pytest.raises(PermissionDenied, match="write-only"):
        sql.read_bytes("/query")
    with pytest.raises(oanix.ReadOnly):
        sql.write_bytes("/result", b"x")
    with pytest.raises(PermissionDenied):
        sql.write_bytes("/other", b"x")
    with pytest.raises(PermissionDenied):
        sql.remove("/result")
    with pytest.raises(NotFound):
        sql.stat("/nope")
    with pytest.raises(NotADirectory):
        sql.listdir("/result")
    assert sql.stat("/query").size == 0 and sql.stat("/result").readonly


def test_bounds(db: str) -> None:
    with SqlFs(db, max_rows=2) as sql:
        r = query(sql, "SELECT id FROM items ORDER BY id")
        assert r["rows"] == [[1], [2]] and r["truncated"] is True
    with SqlFs(db, max_file_bytes=100) as sql:
        with pytest.raises(NoSpace):
            sql.write_bytes("/query", b"SELECT " + b"1" * 200)
        with pytest.raises(NoSpace), sql.open("/query", "wb") as f:
            f.write(b"SELECT " + b"1" * 200)
        assert sql.read_bytes("/result") == b""  # nothing ran
    for bad in [{"timeout": 0}, {"max_rows": 0}, {"max_result_bytes": "lots"}]:
        with pytest.raises(InvalidArgument):
            SqlFs(db, **bad)  # type: ignore[arg-type]


def test_writable(db: str) -> None:
    with SqlFs(db, writable=True) as sql:
        r = query(sql, "INSERT INTO items (name, price) VALUES ('kiwi', 1.0), ('lime', 0.2)")
        assert r["changes"] == 2 and r["rows"] == []
        r = query(sql, "UPDATE items SET price = price * 2")
        assert r["changes"] == 5
        assert query(sql, "CREATE TABLE notes (t TEXT)")["columns"] == []
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM items").fetchone()[0] == 5
    finally:
        con.close()


def test_writable_creates_a_missing_database(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    with pytest.raises(NotFound) as exc:
        SqlFs(path)
    assert exc.value.path == path
    with SqlFs(path, writable=True) as sql:
        assert "error" not in query(sql, "CREATE TABLE t (x)")


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"not a database at all " * 100)
    with pytest.raises(InvalidContent, match="not an SQLite database") as exc:
        SqlFs(str(path))
    assert exc.value.path == str(path)


def test_shell(sql: SqlFs) -> None:
    ns = Namespace()
    ns.mount("/cap/sql", sql)
    res = Shell(ns).exec("echo 'SELECT name FROM items WHERE id = 3' > /cap/sql/query; "
                         "cat /cap/sql/result")
    assert res.exit_code == 0 and json.loads(res.stdout)["rows"] == [["fig"]]


def test_wasm_guest_queries_during_its_run(runtime: WasiRuntime, sql: SqlFs) -> None:
    ns = Namespace()
    ns.mount("/cap/sql", sql)
    res = runtime.run(FIXTURES / "poll.wasm", ns, RunConfig(
        argv=["/cap/sql/query", "SELECT name FROM items ORDER BY id DESC LIMIT 1",
              "/cap/sql/result", "10000"], timeout=30))
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["rows"] == [["fig"]]
