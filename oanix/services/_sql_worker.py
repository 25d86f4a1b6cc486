"""The process SqlFs runs its queries in, so a query can always be stopped.

SQLite's progress handler stops a query between two steps of its virtual machine, which is
enough for a runaway join or recursive CTE; but one call of a built-in function over long
strings (``instr`` or ``LIKE`` on megabyte strings, ``printf`` with a huge width) can run
for minutes without a step. So the host kills this process when a query overruns, and
starts a new one for the next query.

Standard library only: it runs as a script (``python -I -S _sql_worker.py``). The
protocol is JSON lines on stdin and stdout: first the settings (``path``, ``writable``,
``timeout``, ``max_rows``, ``max_result_bytes``, ``max_sql_bytes``), answered by
``{"ok": true}`` or an error; then one ``{"sql": ..., "params": ...}`` per query, each
answered by the result object of the ``result`` file (without its id).

Locking: single-threaded; one query at a time.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import sqlite3
import sys
import time
from typing import Any, Final
from urllib.parse import quote

INTROSPECTION_PRAGMAS: Final = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "collation_list", "function_list", "pragma_list", "user_version",
    "application_id", "schema_version", "page_count", "page_size", "encoding",
    "foreign_keys"})
"""The PRAGMAs a query may run: reads of the schema. Those that could set a value
(``user_version``, ``foreign_keys``, ...) only without an argument."""

_PRAGMAS_WITH_ARG: Final = frozenset({"table_info", "table_xinfo", "index_list",
                                      "index_info", "index_xinfo", "foreign_key_list",
                                      "table_list"})
_DENIED_FUNCTIONS: Final = frozenset({"load_extension", "fts3_tokenizer"})
_NO_ATTACH: Final = ("ATTACH, DETACH and VACUUM INTO are not allowed: a query sees one "
                     "database and writes no other file")
_PROGRESS_STEPS: Final = 1000  # SQLite VM instructions between two looks at the clock


class _Refused(Exception):
    """A query refused before it ran: ``kind`` and a message for the result file."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Runner:
    """One connection, guarded (see the SqlFs docstring), and the queries run on it."""

    def __init__(self, path: str, writable: bool, timeout: float, max_rows: int,
                 max_result_bytes: int, max_sql_bytes: int) -> None:
        self.timeout = timeout
        self.max_rows = max_rows
        self.max_result_bytes = max_result_bytes
        self._deadline = math.inf
        self._denied = ""
        mode = "rw" if writable else "ro"
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode={mode}", uri=True,
                               isolation_level=None, timeout=timeout)
        conn.text_factory = lambda b: b.decode("utf-8", "replace")
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        if not writable:
            conn.execute("PRAGMA query_only = ON")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_result_bytes)
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, max_sql_bytes)
        conn.set_authorizer(self._authorize)
        conn.set_progress_handler(self._progress, _PROGRESS_STEPS)
        self.conn = conn

    def _authorize(self, action: int, arg1: str | None, arg2: str | None,
                   db: str | None, trigger: str | None) -> int:
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return self._deny(_NO_ATTACH)
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if name not in INTROSPECTION_PRAGMAS or (
                    arg2 is not None and name not in _PRAGMAS_WITH_ARG):
                return self._deny(f"PRAGMA {arg1}{'' if arg2 is None else ' = ' + arg2} is "
                                  "not allowed: only reads of the schema "
                                  f"({', '.join(sorted(INTROSPECTION_PRAGMAS))})")
        elif action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() in _DENIED_FUNCTIONS:
                return self._deny(f"the function {arg2}() is not allowed")
        elif action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
            return self._deny("transaction control is not allowed: each query is one "
                              "transaction")
        return sqlite3.SQLITE_OK

    def _deny(self, why: str) -> int:
        self._denied = why
        return sqlite3.SQLITE_DENY

    def _progress(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def run(self, sql: str, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        """The result of one query: rows, or an error naming the problem."""
        self._denied = ""
        self._deadline = time.monotonic() + self.timeout
        conn = self.conn
        try:
            cur = conn.execute(sql, _params(params))
            columns = [d[0] for d in cur.description or ()]
            rows: list[list[Any]] = []
            size = 0
            truncated = False
            while (row := cur.fetchone()) is not None:
                out = [_json_value(v) for v in row]
                size += len(json.dumps(out, separators=(",", ":"))) + 2
                if len(rows) >= self.max_rows or size > self.max_result_bytes:
                    truncated = True
                    break
                rows.append(out)
            changes = max(cur.rowcount, 0)
            cur.close()
            return {"columns": columns, "rows": rows, "row_count": len(rows),
                    "truncated": truncated, "changes": changes}
        except _Refused as e:
            return {"error": e.kind, "message": str(e)}
        except (sqlite3.Error, sqlite3.Warning) as e:
            return self._sql_error(e)
        except Exception as e:  # never a traceback in the result file
            return {"error": "error", "message": f"{type(e).__name__}: {e}"}
        finally:
            self._deadline = math.inf

    def _sql_error(self, e: sqlite3.Error | sqlite3.Warning) -> dict[str, Any]:
        text = str(e)
        if ("not authorized" in text or "authorization denied" in text) and self._denied:
            return {"error": "not_authorized", "message": self._denied}
        if "too many attached databases" in text:
            return {"error": "not_authorized", "message": _NO_ATTACH}
        if "interrupted" in text:
            return timeout_error(self.timeout)
        if "readonly database" in text:
            return {"error": "read_only", "message": f"the database is read-only: {text}"}
        if "string or blob too big" in text:
            return {"error": "too_large",
                    "message": f"a value over {self.max_result_bytes} bytes: {text}"}
        if "one statement at a time" in text:
            return {"error": "invalid_query",
                    "message": "a query file holds one SQL statement"}
        if isinstance(e, sqlite3.ProgrammingError | sqlite3.InterfaceError):
            return {"error": "invalid_query", "message": text}
        return {"error": "sql_error", "message": text}


def timeout_error(timeout: float) -> dict[str, Any]:
    """The result of a query stopped at its time limit."""
    return {"error": "timeout", "message": f"the query ran past its {timeout:g} s and was "
                                           "stopped"}


def _params(params: list[Any] | dict[str, Any]) -> list[Any] | dict[str, Any]:
    """JSON parameters as SQLite values: ``{"base64": ...}`` is a blob."""
    if isinstance(params, dict):
        return {str(k): _param(v, f"params[{k!r}]") for k, v in params.items()}
    if isinstance(params, list):
        return [_param(v, f"params[{i}]") for i, v in enumerate(params)]
    raise _Refused("invalid_query", "params must be a JSON array or object")


def _param(value: Any, where: str) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"],
                                                                           str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise _Refused("invalid_query", f"{where}: not valid base64: {e}") from None
    raise _Refused("invalid_query", f"{where}: a parameter is a JSON scalar or "
                                    f'{{"base64": "..."}}, not {value!r}')


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return "Infinity" if value > 0 else "-Infinity"  # SQLite stores no NaN
    return value


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, allow_nan=False) + "\n")
    sys.stdout.flush()


def main() -> None:
    try:
        runner = Runner(**json.loads(sys.stdin.readline()))
    except sqlite3.Error as e:
        _reply({"error": "error", "message": f"cannot open the database: {e}"})
        return
    _reply({"ok": True})
    for line in sys.stdin:
        request = json.loads(line)
        _reply(runner.run(request["sql"], request["params"]))


if __name__ == "__main__":
    main()
