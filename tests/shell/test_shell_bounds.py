"""Bounds on shell work: timeouts stop runaway command lines, limits stop runaway growth.

Every test runs the runaway thing for real and fails if it is not stopped (the bounds on
elapsed time are generous: the promise is 100 ms, the tests allow seconds).
"""

from __future__ import annotations

import threading
import time

import pytest

from oanix import MemFs, Namespace
from oanix.env import Limits, OanixEnv
from oanix.errors import CommandFailed, TimedOut
from oanix.shell import ExecResult, Shell, context, expand, jobs, rx
from oanix.shell.cancel import CancelScope


@pytest.fixture
def sh() -> Shell:
    ns = Namespace()
    ns.mount("/", MemFs())
    ns.makedirs("/work")
    return Shell(ns, cwd="/work")


def timed(sh: Shell, script: str, timeout: float | None = None) -> tuple[ExecResult, float]:
    t0 = time.monotonic()
    res = sh.exec(script, timeout=timeout)
    return res, time.monotonic() - t0


# -- the command line's timeout -----------------------------------------------------------


@pytest.mark.parametrize("script", [
    "while true; do :; done",
    "until false; do :; done",
    "for ((;;)); do :; done",
    "for ((i=0;;i++)); do x=$i; done",
    "f() { :; }; while :; do f; done",
    "g() { g; }; while :; do g; done",
    "yes > /dev/null",
    "yes | cat > /dev/null",
    "cat /dev/null | sleep 100",
    "sleep 100 | cat",
    "seq 1 1000000000000 | wc -l",
    "sleep 100",
    "x=$(while :; do :; done)",
    "while read l; do echo $l; done < /dev/null; yes | while read l; do :; done",
    "yes | sort",
    "yes | awk '{ n++ }'",
    "awk 'BEGIN { while (1) n++ }'",
    "yes | sed -n p",
    "yes | grep -c n",
    "yes | xargs -n 1 echo > /dev/null",
    "yes | tee /dev/null > /dev/null",
    "sleep 100 &",
    "while :; do :; done & wait",
    "while :; do sleep 5 & done",
    "(yes > /dev/null &) ; sleep 100",
])
def test_timeout_stops_the_whole_command_line(sh: Shell, script: str) -> None:
    res, took = timed(sh, script, timeout=0.3)
    assert res.exit_code == 124 and res.timed_out, res
    assert took < 3.0
    assert b"timed out" in res.stderr
    # the session is still usable, and the next line gets its own time
    assert sh.exec("echo ok", timeout=0.3).stdout == b"ok\n"


def test_a_finished_line_is_not_marked(sh: Shell) -> None:
    res = sh.exec("echo hi; exit 3", timeout=5)
    assert (res.exit_code, res.timed_out, res.ok) == (3, False, False)
    assert sh.exec("true").ok


def test_a_scope_cancelled_from_another_thread_stops_the_line(sh: Shell) -> None:
    import threading

    scope = CancelScope()
    threading.Timer(0.2, scope.cancel).start()
    t0 = time.monotonic()
    res = sh.exec("while :; do :; done", scope=scope)
    assert res.timed_out and res.exit_code == 124 and time.monotonic() - t0 < 3.0
    t0 = time.monotonic()
    assert sh.exec("sleep 30", scope=scope).timed_out  # already cancelled: at once
    assert time.monotonic() - t0 < 1.0


def test_timeout_command_honours_its_duration(sh: Shell) -> None:
    res, took = timed(sh, "timeout 0.2 sleep 30; echo $?; timeout 5 echo inner; echo $?")
    assert res.stdout == b"124\ninner\n0\n" and took < 3.0
    res, _ = timed(sh, "timeout -s KILL -k 1 0.2 yes > /dev/null; echo $?")
    assert res.stdout == b"124\n"
    res, _ = timed(sh, "timeout 0.2 sh -c 'while :; do :; done'; echo after $?")
    assert res.stdout == b"after 124\n"
    # an enclosing deadline wins over a longer inner one: the whole line stops
    res, took = timed(sh, "timeout 30 sleep 30; echo not reached", timeout=0.3)
    assert res.timed_out and res.stdout == b"" and took < 3.0
    assert sh.exec("timeout x sleep 1").exit_code == 2


def test_sleep_sleeps_the_full_time(sh: Shell) -> None:
    res, took = timed(sh, "sleep 2.1; echo done")
    assert res.stdout == b"done\n" and took >= 2.1
    res, took = timed(sh, "sleep 0.1 0.1; sleep .1")
    assert res.exit_code == 0 and took >= 0.3


# -- the environment: exec's signature, check, cancellation --------------------------------


def test_env_exec_timeout_defaults_to_the_limits() -> None:
    with OanixEnv(limits=Limits(timeout=0.3)) as env:
        t0 = time.monotonic()
        res = env.exec("while :; do :; done")
        assert res.timed_out and res.exit_code == 124 and time.monotonic() - t0 < 3.0
        assert env.exec("echo $((1+1))", timeout=5).stdout == b"2\n"
        assert env.exec("cat", stdin="text").stdout == b"text"
        assert env.exec("pwd", cwd="/tmp").stdout == b"/tmp\n"
        assert env.exec("echo $V", env={"V": "v"}).stdout == b"v\n"


def test_env_exec_check_raises_with_the_result() -> None:
    with OanixEnv() as env:
        assert env.exec("true", check=True).ok
        with pytest.raises(CommandFailed, match="exited 3: boom") as info:
            env.exec("echo boom >&2; exit 3", check=True)
        assert info.value.result.exit_code == 3
        with pytest.raises(CommandFailed, match="exited 124"):
            env.exec("sleep 10", timeout=0.1, check=True)


def test_cancelled_env_stops_its_work_and_refuses_more() -> None:
    import threading

    env = OanixEnv()
    threading.Timer(0.3, env.cancel, args=("stop",)).start()
    t0 = time.monotonic()
    res = env.exec("while :; do :; done")
    assert res.timed_out and time.monotonic() - t0 < 3.0
    assert b"stop" in res.stderr
    with pytest.raises(TimedOut):
        env.exec("echo more")
    with pytest.raises(TimedOut):
        env.run_wasi(b"\0asm")
    env.close()


def test_env_deadline_bounds_every_call() -> None:
    with OanixEnv() as env:
        env.expire_after(0.3)
        t0 = time.monotonic()
        res = env.exec("sleep 30", timeout=60)  # the deadline is nearer than the timeout
        assert res.timed_out and time.monotonic() - t0 < 3.0
        with pytest.raises(TimedOut, match="time is up"):
            env.exec("true")


# -- limits on growth: status 2 and a message, never a Python error ------------------------


@pytest.mark.parametrize(("script", "expected"), [
    ("echo $((9**9**9))", str(pow(9, 9 ** 9, 1 << 64) - (1 << 64))),
    ("echo $((1<<100000))", str(1 << (100000 % 64))),
    ("echo $((2**63)) $((9223372036854775807 + 1))",
     "-9223372036854775808 -9223372036854775808"),
    ("echo $((-9223372036854775807 - 1 - 1))", "9223372036854775807"),
    ("echo $(( (1<<63) / -1 )) $((-7 / 2)) $((-7 % 3)) $((1<<64)) $((-1 >> 1))",
     "-9223372036854775808 -3 -1 1 -1"),
    ("x=99999999999999999999; echo $((x))", str(99999999999999999999 % (1 << 64))),
    ("echo $((3**-1))", None),
])
def test_arithmetic_is_64_bit_and_finishes_at_once(sh: Shell, script: str,
                                                  expected: str | None) -> None:
    res, took = timed(sh, script, timeout=10)
    assert took < 5.0 and not res.timed_out
    if expected is None:
        assert res.exit_code == 1 and b"exponent" in res.stderr
    else:
        assert res.stdout.decode().strip() == expected, res


def test_brace_expansion_has_a_limit(sh: Shell) -> None:
    res, took = timed(sh, "echo {1..1000000000000}; echo not reached")
    assert res.exit_code == 2 and b"brace expansion" in res.stderr and took < 5.0
    assert res.stdout == b""
    res = sh.exec("echo {a,b}{1..99999}{x,y,z}; echo not reached")
    assert res.exit_code == 2 and b"more than" in res.stderr and res.stdout == b""
    assert sh.exec("echo {1..3}").stdout == b"1 2 3\n"


def test_string_growth_has_a_limit(sh: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expand, "MAX_VALUE", 1 << 16)
    res = sh.exec("x=ab; while :; do x=$x$x; done; echo not reached", timeout=30)
    assert res.exit_code == 2 and not res.timed_out
    assert b"x: value larger than 65536 bytes" in res.stderr and res.stdout == b""
    res = sh.exec("a[1]=ab; while :; do a[1]+=${a[1]}; done", timeout=30)
    assert res.exit_code == 2 and b"a: value larger" in res.stderr
    res = sh.exec("y=$(seq 1 100000); echo not reached", timeout=30)
    assert res.exit_code == 2 and b"command substitution: output larger" in res.stderr
    res = sh.exec("y=$(yes); echo not reached", timeout=30)  # stops the writer too
    assert res.exit_code == 2 and not res.timed_out
    big = "z" * 40000
    res = sh.exec(f"v={big}; cat <<EOF\n$v$v\nEOF\necho not reached", timeout=30)
    assert res.exit_code == 2 and b"here-document larger" in res.stderr


def test_recursion_has_a_limit(sh: Shell) -> None:
    res, took = timed(sh, "f() { f; }; f; echo status $?", timeout=30)
    assert b"maximum recursion depth" in res.stderr and b"Error" not in res.stderr
    assert res.stdout == b"status 2\n" and took < 10.0
    res = sh.exec("e='eval \"$e\"'; eval \"$e\"; echo status $?", timeout=30)
    assert b"maximum recursion depth" in res.stderr and res.stdout == b"status 2\n"
    res = sh.exec("echo $((" + "(" * 5000 + "1" + ")" * 5000 + "))", timeout=30)
    assert res.exit_code in (1, 2) and b"Traceback" not in res.stderr
    res = sh.exec("x=" + "$(" * 3000 + "echo" + ")" * 3000, timeout=30)
    assert res.exit_code == 2 and b"nesting" in res.stderr


# -- regexes that backtrack catastrophically -----------------------------------------------


EVIL = "^(a|aa)+b$"
LINE = "a" * 40 + "c"


@pytest.mark.parametrize("script", [
    f"[[ {LINE} =~ {EVIL} ]]; echo $?",
    f"echo {LINE} | grep -E '{EVIL}'",
    f"echo {LINE} | sed -E 's/{EVIL}/x/'",
    f"echo {LINE} | awk '/{EVIL}/'",
])
def test_catastrophic_regex_is_stopped(sh: Shell, script: str) -> None:
    res, took = timed(sh, script, timeout=0.5)
    assert res.exit_code == 124 and res.timed_out and took < 8.0, res


def test_catastrophic_regex_without_a_deadline_fails_the_command(
        sh: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rx, "MATCH_LIMIT", 0.3)
    res, took = timed(sh, f"echo {LINE} | grep -E '{EVIL}'; echo status $?")
    assert res.stdout == b"status 2\n" and b"took more than" in res.stderr and took < 8.0
    assert sh.exec("echo abc | grep -E 'b+c'").stdout == b"abc\n"


def test_gathering_an_endless_pipe_has_a_limit(sh: Shell,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "MAX_SLURP", 1 << 20)
    for command in ("sort", "uniq", "tac", "xargs echo", "base64", "md5sum"):
        res = sh.exec(f"yes | {command} > /dev/null; echo status $?", timeout=60)
        assert res.stdout == b"status 2\n" and not res.timed_out, (command, res)
        assert b"standard input larger than 1 MiB" in res.stderr
    assert sh.exec("seq 1 1000 | sort -rn | head -1").stdout == b"1000\n"


@pytest.mark.parametrize("bomb", [
    "b() { b | b; }; b",
    "b() { b & b; }; b",
    "b() { b | b & }; b",
    "while :; do b() { :; }; b & done",
])
def test_a_fork_bomb_holds_at_most_max_threads_and_ends(sh: Shell, bomb: str) -> None:
    # Stages and jobs are the shell's processes: past MAX_THREADS running at once, `&`
    # and pipelines fail as fork does, so a bomb ends in errors or its time limit.
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.wait(0.01):
            peak = max(peak, threading.active_count())

    watcher = threading.Thread(target=watch)
    before = threading.active_count()
    watcher.start()
    try:
        res = sh.exec(bomb, timeout=2)
    finally:
        stop.set()
        watcher.join()
    assert any(why in res.stderr for why in (b"fork: too many", b"recursion", b"timed out"))
    assert peak - before <= jobs.MAX_THREADS + 2, peak  # + the watcher, + one in flight
    assert sh.exec("echo ok", timeout=1).stdout == b"ok\n"
