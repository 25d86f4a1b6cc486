import io
import json
import logging
import math
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oanix import errors
from oanix.namespace import Namespace
from oanix.services.logs import LEVELS, LogEvent, LogsFs, parse_event_lines

EV1 = b'{"ts": 1, "level": "info", "message": "one"}'
EV2 = b'{"ts": 2.5, "level": "error", "message": "two", "data": {"k": [1, null]}}'


class Clock:
    def __init__(self) -> None:
        self.now = 99.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


# -- structure --------------------------------------------------------------------------------

def test_structure_and_stat() -> None:
    log = LogsFs(clock=Clock())
    assert log.listdir("/") == ["events.jsonl", "stderr.log", "stdout.log"]
    root = log.stat("/")
    assert root.is_dir and root.size == 3 and root.readonly and root.mtime == 100.0
    log.write_stdout("abc")
    st_out = log.stat("/stdout.log")
    assert (st_out.name, st_out.size, st_out.is_dir, st_out.readonly, st_out.mtime) == (
        "stdout.log", 3, False, False, 101.0)
    assert [s.size for s in log.scandir("/")] == [0, 0, 3]
    with pytest.raises(errors.NotADirectory):
        log.listdir("/stdout.log")
    with pytest.raises(errors.NotADirectory):
        log.stat("/stdout.log/x")
    with pytest.raises(errors.NotFound):
        log.stat("/other.log")
    with pytest.raises(errors.NotFound):
        log.open("/d/x.log", "w")
    with pytest.raises(errors.IsADirectory):
        log.open("/", "r")
    with pytest.raises(errors.AlreadyExists):
        log.open("/stdout.log", "x")


@pytest.mark.parametrize("path", ["/stdout.log", "/stderr.log", "/events.jsonl"])
def test_structure_changes_are_refused_naming_the_path(path: str) -> None:
    log = LogsFs()
    with pytest.raises(errors.PermissionDenied) as exc:
        log.remove(path)
    assert exc.value.path == path
    with pytest.raises(errors.PermissionDenied) as exc2:
        log.rename(path, "/moved.log")
    assert (exc2.value.filename, exc2.value.filename2) == (path, "/moved.log")
    with pytest.raises(errors.PermissionDenied):
        log.rename("/stdout.log", path)
    with pytest.raises(errors.NotADirectory):
        log.rmdir(path)
    with pytest.raises(errors.AlreadyExists):
        log.mkdir(path)
    assert log.exists(path)


def test_creating_anything_is_refused() -> None:
    log = LogsFs()
    for op in (lambda: log.write_bytes("/new.log", b"x"), lambda: log.open("/new.log", "a"),
               lambda: log.mkdir("/dir")):
        with pytest.raises(errors.PermissionDenied, match="structure is fixed"):
            op()
    with pytest.raises(errors.PermissionDenied):
        log.rmdir("/")
    with pytest.raises(errors.IsADirectory):
        log.remove("/")
    with pytest.raises(errors.NotFound):
        log.remove("/nope")
    with pytest.raises(errors.NotFound):
        log.rename("/nope", "/x")
    assert log.listdir("/") == ["events.jsonl", "stderr.log", "stdout.log"]


# -- append-only ------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["w", "wb", "a", "r+", "w+", "a+"])
def test_every_write_mode_appends(mode: str) -> None:
    log = LogsFs()
    log.write_stderr(b"first\n")
    with log.open("/stderr.log", mode) as f:
        assert f.tell() == 6
        f.write(b"second\n")
    log.write_bytes("/stderr.log", b"third\n")  # write_bytes appends too
    assert log.stderr() == b"first\nsecond\nthird\n"


def test_truncate_and_overwrite_are_refused() -> None:
    log = LogsFs()
    log.write_stdout("0123456789\n")
    with log.open("/stdout.log", "r+") as f:
        with pytest.raises(errors.PermissionDenied, match="cannot truncate") as exc:
            f.truncate(0)
        assert exc.value.path == "/stdout.log"
        with pytest.raises(errors.PermissionDenied):
            f.truncate()
        f.seek(0)
        assert f.read(4) == b"0123"
        with pytest.raises(errors.PermissionDenied, match="cannot overwrite") as exc2:
            f.write(b"XX")
        assert exc2.value.path == "/stdout.log"
        f.seek(-3, io.SEEK_END)
        with pytest.raises(errors.PermissionDenied):
            f.write(b"XX")
        f.seek(0, io.SEEK_END)
        f.write(b"end\n")
        assert f.tell() == 15
    with log.open("/stdout.log", "a") as f:
        f.seek(100)  # past the end: the write still lands at the end
        f.write(b"!")
    with log.open("/stdout.log", "rb") as f, pytest.raises(errors.BadFileMode):
        f.truncate(0)
    assert log.stdout() == b"0123456789\nend\n!"


def test_readers_see_everything_so_far() -> None:
    log = LogsFs()
    reader = log.open("/stdout.log", "rb")
    writer = log.open("/stdout.log", "ab")
    assert reader.read() == b""
    writer.write(b"line 1\n")
    log.write_stdout("line 2\n")
    assert reader.readline() == b"line 1\n"
    assert reader.read() == b"line 2\n"
    writer.close()
    reader.close()


def test_append_from_many_threads_keeps_lines_whole() -> None:
    log = LogsFs()
    n_threads, n_lines = 8, 200
    barrier = threading.Barrier(n_threads)

    def worker(i: int) -> None:
        barrier.wait()
        with log.open("/stdout.log", "w" if i % 2 else "a") as f:
            for j in range(n_lines):
                payload = f"thread {i} line {j} " + "x" * (j % 37) + "\n"
                if j % 3 == 0:
                    log.write_stdout(payload)
                else:
                    f.write(payload.encode())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = log.stdout().decode().splitlines()
    expected = {f"thread {i} line {j} " + "x" * (j % 37)
                for i in range(n_threads) for j in range(n_lines)}
    assert len(lines) == n_threads * n_lines and set(lines) == expected
    for i in range(n_threads):  # each thread's lines in its own order
        mine = [int(ln.split()[3]) for ln in lines if ln.startswith(f"thread {i} ")]
        assert mine == list(range(n_lines))


# -- events -----------------------------------------------------------------------------------

def test_events_written_and_read_back_canonically() -> None:
    log = LogsFs()
    log.write_bytes("/events.jsonl", EV1 + b"\n\n  \r\n" + EV2 + b"\n")
    assert log.events() == [LogEvent(1.0, "info", "one"),
                            LogEvent(2.5, "error", "two", {"k": [1, None]})]
    assert log.read_bytes("/events.jsonl") == (
        b'{"ts":1.0,"level":"info","message":"one"}\n'
        b'{"ts":2.5,"level":"error","message":"two","data":{"k":[1,null]}}\n')
    assert parse_event_lines(log.read_bytes("/events.jsonl")) == log.events()


def test_events_written_in_pieces_through_a_file() -> None:
    log = LogsFs()
    with log.open("/events.jsonl", "a") as f:
        f.write(EV1[:10])
        assert log.events() == []
        f.write(EV1[10:] + b"\n" + EV2[:5])
        assert len(log.events()) == 1
        f.write(EV2[5:])
        assert len(log.events()) == 1
    assert len(log.events()) == 2  # the unfinished last line is parsed at close


@pytest.mark.parametrize(("line", "why"), [
    (b"{not json}", "not valid JSON"),
    (b'{"ts": 1, "level": "info"}', "missing 'message'"),
    (b'{"level": "info", "message": "m"}', "missing 'ts'"),
    (b'{"ts": 1, "message": "m"}', "missing 'level'"),
    (b'{"ts": 1, "level": "warn", "message": "m"}', "'level' must be one of"),
    (b'{"ts": 1, "level": 3, "message": "m"}', "'level' must be one of"),
    (b'{"ts": 1, "level": ["info"], "message": "m"}', "'level' must be one of"),
    (b'{"ts": 1, "level": "info", "message": 5}', "'message' must be a string"),
    (b'{"ts": "1", "level": "info", "message": "m"}', "'ts' must be a finite number"),
    (b'{"ts": true, "level": "info", "message": "m"}', "'ts' must be a finite number"),
    (b'{"ts": 1e999, "level": "info", "message": "m"}', "not valid JSON: .* 1e999 does not fit"),
    (b'{"ts": NaN, "level": "info", "message": "m"}', "not valid JSON"),
    (b'{"ts": 1, "level": "info", "message": "m", "data": null}', "'data' must be"),
    (b'{"ts": 1, "level": "info", "message": "m", "data": [1]}', "'data' must be"),
    (b'{"ts": 1, "level": "info", "message": "m", "extra": 1}', "unknown key"),
    (b'["ts", 1]', "an event must be a JSON object"),
    (b'"just a string"', "an event must be a JSON object"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_bad_event_lines_are_rejected_with_file_and_line(line: bytes, why: str) -> None:
    log = LogsFs()
    log.write_bytes("/events.jsonl", EV1 + b"\n")
    before = log.read_bytes("/events.jsonl")
    with pytest.raises(errors.InvalidArgument, match=f"/events.jsonl line 3: {why}"):
        log.write_bytes("/events.jsonl", EV2 + b"\n\n" + line + b"\n" + EV1)
    assert log.read_bytes("/events.jsonl") == before and len(log.events()) == 1
    with log.open("/events.jsonl", "a") as f:  # the same through a file, per write call
        f.write(EV2 + b"\n")
        with pytest.raises(errors.InvalidArgument, match=f"line 3: {why}"):
            f.write(EV1 + b"\n" + line + b"\n" + EV2 + b"\n")
        f.write(EV1 + b"\n")  # the writer may go on; the rejected call counted for nothing
        with pytest.raises(errors.InvalidArgument, match=f"line 3: {why}"):
            f.write(line + b"\n")
    assert [e.message for e in log.events()] == ["one", "two", "one"]


def test_bad_unfinished_line_fails_at_close() -> None:
    log = LogsFs()
    f = log.open("/events.jsonl", "w")
    f.write(EV1 + b"\n" + b'{"ts": 1')
    with pytest.raises(errors.InvalidArgument, match="line 2: not valid JSON"):
        f.close()
    assert f.closed and [e.message for e in log.events()] == ["one"]
    with log.open("/events.jsonl", "a") as g:
        g.write(b"  \r")  # blank: nothing to parse
    assert len(log.events()) == 1


def test_host_event_api() -> None:
    log = LogsFs(clock=Clock())
    ev = log.event("warning", "disk almost full", used=0.93, mount="/tmp")
    assert ev == LogEvent(101.0, "warning", "disk almost full", {"used": 0.93, "mount": "/tmp"})
    assert log.event("debug", "plain").data is None
    assert log.events() == [ev, LogEvent(103.0, "debug", "plain")]  # 102: ev's mtime
    with pytest.raises(errors.InvalidArgument, match="'level' must be one of"):
        log.event("fatal", "x")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgument, match="'message' must be a string"):
        log.event("info", b"x")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgument, match="event data"):
        log.event("info", "x", bad={1, 2})
    with pytest.raises(errors.InvalidArgument, match="event data"):
        log.event("info", "x", nan=math.nan)
    assert len(log.events()) == 2
    events = log.events()
    events.clear()
    assert len(log.events()) == 2


def test_host_output_api() -> None:
    log = LogsFs()
    log.write_stdout("héllo\n")
    log.write_stdout(b"\x00\xff")
    log.write_stderr(bytearray(b"err"))
    assert log.stdout() == "héllo\n".encode() + b"\x00\xff" and log.stderr() == b"err"
    with pytest.raises(errors.InvalidArgument, match="str or bytes"):
        log.write_stdout(42)  # type: ignore[arg-type]


# -- caps -------------------------------------------------------------------------------------

def test_caps_store_nothing_of_a_write_past_them() -> None:
    log = LogsFs(max_bytes=10)
    log.write_stdout("12345")
    with pytest.raises(errors.NoSpace) as exc:
        log.write_stdout("123456")
    assert exc.value.path == "/stdout.log" and "capped at 10 bytes" in str(exc.value)
    log.write_stdout("12345")  # exactly full
    with log.open("/stdout.log", "a") as f, pytest.raises(errors.NoSpace):
        f.write(b"x")
    assert log.stdout() == b"1234512345"
    log.write_stderr("0123456789")  # each file has its own cap
    with pytest.raises(errors.NoSpace):
        log.write_stderr("!")


def test_events_cap() -> None:
    line = LogEvent(101.0, "info", "m").to_line()
    log = LogsFs(max_bytes=2 * len(line), clock=Clock())
    log.event("info", "m")
    with pytest.raises(errors.NoSpace) as exc:
        log.write_bytes("/events.jsonl", EV1 + b"\n" + EV1 + b"\n")
    assert exc.value.path == "/events.jsonl"
    assert len(log.events()) == 1 and log.stat("/events.jsonl").size == len(line)
    with pytest.raises(errors.NoSpace):
        log.event("info", "a longer message that does not fit")
    log.event("info", "m")  # ts 103.0: as long as 101.0
    assert len(log.events()) == 2 and log.stat("/events.jsonl").size == 2 * len(line)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_bad_cap(bad: Any) -> None:
    with pytest.raises(errors.InvalidArgument, match="max_bytes"):
        LogsFs(max_bytes=bad)


# -- tail -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "n", "expected"), [
    (b"", 3, []),
    (b"a\nb\nc\n", 0, []),
    (b"a\nb\nc\n", 1, ["c"]),
    (b"a\nb\nc\n", 2, ["b", "c"]),
    (b"a\nb\nc\n", 10, ["a", "b", "c"]),
    (b"a\nb\npartial", 2, ["b", "partial"]),
    (b"\n", 5, [""]),
    (b"a\n\n\nb\n", 3, ["", "", "b"]),
    (b"no newline", 1, ["no newline"]),
    (b"bad \xff\n", 1, ["bad \ufffd"]),
])
def test_tail(data: bytes, n: int, expected: list[str]) -> None:
    log = LogsFs()
    log.write_stderr(data)
    assert log.tail("stderr.log", n) == expected
    assert log.tail("/stderr.log", n) == expected


def test_tail_of_events_and_bad_arguments() -> None:
    log = LogsFs()
    for i in range(5):
        log.event("info", f"m{i}")
    assert [json.loads(ln)["message"] for ln in log.tail("events.jsonl", 2)] == ["m3", "m4"]
    with pytest.raises(errors.InvalidArgument, match="no log named"):
        log.tail("other.log", 1)
    with pytest.raises(errors.InvalidArgument, match="n must be"):
        log.tail("stdout.log", -1)


# -- subscribers ------------------------------------------------------------------------------

def test_subscribe_and_unsubscribe() -> None:
    log = LogsFs(clock=Clock())
    got: list[tuple[str, Any]] = []
    sub = log.subscribe(lambda name, payload: got.append((name, payload)))
    assert sub.active
    log.write_stdout("out\n")
    log.write_stderr(b"err\n")
    log.write_stdout("")  # nothing stored, nothing delivered
    with log.open("/stdout.log", "a") as f:
        f.write(b"file\n")
    ev = log.event("info", "hi")
    log.write_bytes("/events.jsonl", EV1 + b"\n" + EV2)
    assert got == [("stdout.log", b"out\n"), ("stderr.log", b"err\n"),
                   ("stdout.log", b"file\n"), ("events.jsonl", ev),
                   ("events.jsonl", log.events()[1]), ("events.jsonl", log.events()[2])]
    sub.unsubscribe()
    sub.unsubscribe()  # idempotent
    assert not sub.active
    log.write_stdout("after\n")
    assert len(got) == 6
    with log.subscribe(lambda name, payload: got.append((name, payload))) as sub2:
        log.write_stderr("x")
    assert not sub2.active and got[-1] == ("stderr.log", b"x")
    log.write_stderr("y")
    assert got[-1] == ("stderr.log", b"x")
    with pytest.raises(errors.InvalidArgument, match="not callable"):
        log.subscribe("nope")  # type: ignore[arg-type]


def test_callbacks_run_outside_the_lock_and_may_write() -> None:
    log = LogsFs()
    seen: list[tuple[str, Any]] = []

    def echo(name: str, payload: Any) -> None:
        seen.append((name, payload))
        assert log.stdout().endswith(payload if name == "stdout.log" else b"")  # no deadlock
        if name == "stdout.log":
            log.event("info", "echo", n=len(payload))  # delivered after this round

    def second(name: str, payload: Any) -> None:
        seen.append(("second:" + name, payload))

    log.subscribe(echo)
    log.subscribe(second)
    log.write_stdout("abc")
    ev = log.events()[0]
    assert seen == [("stdout.log", b"abc"), ("second:stdout.log", b"abc"),
                    ("events.jsonl", ev), ("second:events.jsonl", ev)]
    assert ev.data == {"n": 3}


def test_a_failing_callback_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    log = LogsFs()
    got: list[Any] = []

    def bad(name: str, payload: Any) -> None:
        raise RuntimeError("subscriber bug")

    log.subscribe(bad)
    log.subscribe(lambda name, payload: got.append(payload))
    with caplog.at_level(logging.ERROR, logger="oanix.services.logs"):
        log.write_stdout("x")
    assert got == [b"x"] and log.stdout() == b"x"
    assert "subscriber" in caplog.text and "subscriber bug" in caplog.text


def test_unsubscribe_inside_a_callback() -> None:
    log = LogsFs()
    got: list[str] = []
    subs: list[Any] = []

    def first(name: str, payload: Any) -> None:
        got.append("first")
        subs[1].unsubscribe()

    subs.append(log.subscribe(first))
    subs.append(log.subscribe(lambda n, p: got.append("second")))
    log.write_stdout("x")
    log.write_stdout("y")
    assert got == ["first", "first"]


def test_subscribers_see_concurrent_output_in_storage_order() -> None:
    log = LogsFs()
    got: list[Any] = []
    log.subscribe(lambda name, payload: got.append(payload))

    def worker(i: int) -> None:
        for j in range(100):
            log.write_stdout(f"{i}:{j}\n")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b"".join(got) == log.stdout() and len(got) == 400


# -- through a namespace ----------------------------------------------------------------------

def test_through_a_namespace_mount() -> None:
    log = LogsFs()
    ns = Namespace()
    ns.mount("/logs", log)
    with ns.open("/logs/stdout.log", "w") as f:
        f.write(b"one\n")
    ns.write_bytes("/logs/stdout.log", b"two\n")
    assert ns.read_bytes("/logs/stdout.log") == b"one\ntwo\n" == log.stdout()
    ns.write_bytes("/logs/events.jsonl", EV1 + b"\n")
    assert log.events() == [LogEvent(1.0, "info", "one")]
    with pytest.raises(errors.InvalidArgument, match="line 1: missing 'message'"):
        ns.write_bytes("/logs/events.jsonl", b'{"ts": 1, "level": "info"}')
    for op in (lambda: ns.remove("/logs/stdout.log"),
               lambda: ns.rename("/logs/stdout.log", "/logs/x.log"),
               lambda: ns.write_bytes("/logs/new.log", b"")):
        with pytest.raises(errors.PermissionDenied) as exc:
            op()
        assert str(exc.value.path).startswith("/logs/")
    with pytest.raises(errors.PermissionDenied) as exc2:
        ns.remove("/logs/stderr.log")
    assert exc2.value.path == "/logs/stderr.log"
    assert ns.listdir("/logs") == ["events.jsonl", "stderr.log", "stdout.log"]


# -- the events.jsonl parser against a reference ----------------------------------------------

def _refuse(name: str) -> Any:
    raise ValueError(name)


def reference(data: bytes) -> list[dict[str, Any]] | int:
    """The events as dicts, or the number of the first bad line: the spec, written plainly."""
    out: list[dict[str, Any]] = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return n
        if line.strip(" \t\r") == "":
            continue
        try:
            obj = json.loads(line, parse_constant=_refuse)
            json.dumps(obj, ensure_ascii=False).encode("utf-8")  # no lone surrogate
        except (ValueError, RecursionError, UnicodeEncodeError):
            return n
        if not isinstance(obj, dict):
            return n
        keys = set(obj)
        if not {"ts", "level", "message"} <= keys <= {"ts", "level", "message", "data"}:
            return n
        ts, level, message = obj["ts"], obj["level"], obj["message"]
        if isinstance(ts, bool) or not isinstance(ts, int | float):
            return n
        try:
            ts = float(ts)
        except OverflowError:
            return n
        if not math.isfinite(ts):
            return n
        if not isinstance(level, str) or level not in ("debug", "info", "warning", "error"):
            return n
        if not isinstance(message, str):
            return n
        if "data" in obj and not isinstance(obj["data"], dict):
            return n
        event = {"ts": ts, "level": level, "message": message}
        if "data" in obj:
            event["data"] = obj["data"]
        out.append(event)
    return out


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6)
valid_events = st.fixed_dictionaries(
    {"ts": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
     "level": st.sampled_from(LEVELS), "message": st.text(max_size=8)},
    optional={"data": st.dictionaries(st.text(max_size=4), json_values, max_size=3)})
near_events = st.dictionaries(
    st.sampled_from(["ts", "level", "message", "data", "extra"]),
    json_values | st.sampled_from(LEVELS), max_size=5)
lines = st.one_of(
    valid_events.map(json.dumps), valid_events.map(json.dumps), near_events.map(json.dumps),
    json_values.map(json.dumps), st.text(max_size=20), st.sampled_from(
        ["", " ", "\t\r", "NaN", '{"ts": Infinity, "level": "info", "message": ""}',
         '{"ts": 1, "level": "info", "message": "\\ud800"}', "[" * 3000]))
good_lines = st.one_of(valid_events.map(json.dumps), st.sampled_from(["", " \r", "\t"]))
documents = st.one_of(
    st.lists(good_lines, max_size=6).map("\n".join).map(str.encode),
    st.lists(good_lines, max_size=6).map(lambda ls: "\r\n".join(ls).encode()),
    st.lists(lines, max_size=6).map("\n".join).map(str.encode),
    st.lists(lines, max_size=6).map(lambda ls: "".join(ln + "\n" for ln in ls).encode()),
    st.text(max_size=60).map(str.encode),
    st.binary(max_size=60))


@settings(max_examples=200, deadline=None)
@given(documents)
def test_event_parser_matches_the_reference(data: bytes) -> None:
    expected = reference(data)
    log = LogsFs()
    if isinstance(expected, int):
        with pytest.raises(errors.InvalidArgument) as exc:
            parse_event_lines(data)
        assert f"/events.jsonl line {expected}: " in str(exc.value)
        with pytest.raises(errors.InvalidArgument):
            log.write_bytes("/events.jsonl", data)
        assert log.events() == [] and log.read_bytes("/events.jsonl") == b""
        return
    events = parse_event_lines(data)
    assert [e.to_dict() for e in events] == expected
    log.write_bytes("/events.jsonl", data)
    stored = log.read_bytes("/events.jsonl")
    assert stored.count(b"\n") == len(expected)
    assert parse_event_lines(stored) == events == log.events()
