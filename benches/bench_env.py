"""The agent environment, in one run: creation, fork, exec latency, the scheduler, a batch.

    python benches/bench_env.py [--quick]

- OanixEnv creation and fork (copy-on-write branch) time.
- ``env.exec("echo hi")`` and a 5-command pipeline, against the floor a user would
  otherwise pay: ``subprocess.run(["sh", "-c", ...])`` on the host.
- Scheduler throughput on 10,000 no-op jobs against a bare trio nursery with a
  CapacityLimiter (the floor), from ``bench_sched``.
- A batch of the example tasks with the oracle agent at concurrency 1 and 2 (wall-time
  ratio; 2 cores).
- ``subprocess.run([sys.executable, "-c", "pass"])`` from sandboxed Python (through
  ``/cap/proc``), timed inside the guest, against the same one-shot run of ``pass`` from
  the host, ``env.run_python`` (target: at most 1.5x); ``--subprocess`` runs only this.
- ``--harbor`` (also in the full run): the Harbor-format example tasks through
  ``oanix-tasks batch`` against the same tasks through ``harbor run -e
  oanix.harbor:OanixEnvironment`` (wall time of each, ratio), both at concurrency 2,
  oracle agent; skipped, saying why, without a harbor venv (``$OANIX_HARBOR_VENV``,
  default ``/tmp/harbor-venv``).
- ``--ray`` (also in the full run): the example tasks as one batch at concurrency 2 through
  ``oanix-tasks batch``, locally and with ``--ray`` (a local Ray started by the batch);
  wall time of each and the ratio.
- ``--build`` (also in the full run): the environment build time of a task whose
  Dockerfile runs ``apt-get install -y curl python3`` and ``pip install requests``
  (``build_image`` alone, the runner's build).
- ``--mcp`` (also in the full run): ``exec "echo hi"`` through the MCP SDK's client
  over stdio against ``python -m oanix.mcp`` (a round trip: JSON-RPC, a worker thread,
  the shell) against the same ``env.exec`` in process; skipped without the ``oanix[mcp]``
  extra.
- ``--aexec`` (also in the full run): ``await env.aexec("echo hi")`` under asyncio (and
  trio) against ``env.exec("echo hi")`` (target: at most 1.2x): the price of the worker
  thread that keeps the event loop free.
- Bounds (``--bounds`` runs only these): the time a runaway command line takes to stop
  after its timeout (target < 100 ms), and the peak RSS growth and time of
  ``seq 1 100000000 | tail -1`` (target < 100 MB: pipes stream), measured in a fresh
  process.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sched import bare_nursery, best_of, through_scheduler

from oanix.env import OanixEnv
from oanix.fs.mem import MemFs
from oanix.sched import JobSpec, Scheduler
from oanix.tasks import find_tasks, load_task
from oanix.tasks.runner import build_image, run_trial
from oanix.wasi import WasiRuntime

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "tasks"
PIPELINE = "seq 1 200 | grep 1 | sort -r | head -n 5 | wc -l"


def per_call(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def batch(concurrency: int, runtime: WasiRuntime) -> float:
    specs = [load_task(p) for p in find_tasks(EXAMPLES)]

    async def main() -> None:
        async with Scheduler(max_concurrent=concurrency) as sched:
            handles = [sched.submit(JobSpec.python(lambda s=s: run_trial(s, runtime=runtime)))
                       for s in specs]
            for h in handles:
                r = await h.wait()
                assert r.value.passed, (r.value.task, r.value.error)

    t0 = time.perf_counter()
    trio.run(main)
    return time.perf_counter() - t0


RUNAWAYS = ["while :; do :; done", "yes | cat > /dev/null", "f() { f; }; while :; do f; done",
            "yes | sort", "sleep 100"]
BIG_PIPE = "seq 1 100000000 | tail -1"


def rss_probe(command: str) -> None:
    """In a fresh process: peak RSS growth (MB) and time of ``command``, on one line."""
    with OanixEnv() as env:
        env.exec("seq 1 100 | tail -1")  # import and warm everything first
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        res = env.exec(command)
        took = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{(after - before) / 1024:.1f} {took:.1f} {res.stdout.decode().strip()}")


def bounds() -> None:
    with OanixEnv() as env:
        for command in RUNAWAYS:
            late = []
            for _ in range(5):
                t0 = time.perf_counter()
                res = env.exec(command, timeout=0.2)
                late.append(time.perf_counter() - t0 - 0.2)
                assert res.timed_out, res
            print(f"stop after timeout: {statistics.median(late) * 1e3:6.1f} ms median, "
                  f"{max(late) * 1e3:6.1f} ms max   {command}")
    out = subprocess.run([sys.executable, __file__, "--rss-probe", BIG_PIPE],
                         capture_output=True, text=True, check=True).stdout.split()
    print(f"{BIG_PIPE}: answer {out[2]}, peak RSS growth {out[0]} MB, {out[1]} s")


SUBPROCESS_GUEST = """\
import subprocess, sys, time
subprocess.run([sys.executable, "-c", "pass"])  # the first start of the child: warm
t = []
for _ in range(N):
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    t.append(time.perf_counter() - t0)
t.sort()
print(t[len(t) // 2])
"""


def subprocess_from_the_sandbox(n: int = 9) -> None:
    with OanixEnv() as env:
        env.run_python(code="pass")  # compile/load CPython once
        host = statistics.median(
            [per_call(lambda: env.run_python(code="pass"), 1) for _ in range(n)])
        res = env.run_python(code=f"N = {n}\n" + SUBPROCESS_GUEST)
        assert res.exit_code == 0, res.stderr
        guest = float(res.stdout)
    print(f"subprocess.run python3 -c pass from the sandbox {guest * 1e3:7.1f} ms; "
          f"the same run from the host {host * 1e3:7.1f} ms; ratio {guest / host:.2f}x")


def mcp_round_trip(n: int = 200) -> None:
    try:
        import anyio
        from mcp import ClientSession, StdioServerParameters, stdio_client
    except ImportError:
        print("MCP round trip: skipped, no mcp SDK (pip install -e '.[mcp]')")
        return
    root = str(Path(__file__).resolve().parent.parent)
    params = StdioServerParameters(command=sys.executable, args=["-m", "oanix.mcp"],
                                   env={"PYTHONPATH": root}, cwd=root)

    async def over_stdio() -> tuple[float, float]:
        async with stdio_client(params) as (r, w), ClientSession(r, w) as session:
            await session.initialize()

            async def echo() -> None:
                res = await session.call_tool("exec", {"command": "echo hi"})
                assert not res.is_error and res.structured_content, res

            async def ping() -> None:
                await session.send_ping()

            async def best(call: Callable[[], Awaitable[None]]) -> float:
                fastest = float("inf")
                for _ in range(3):
                    t0 = time.perf_counter()
                    for _ in range(n):
                        await call()
                    fastest = min(fastest, (time.perf_counter() - t0) / n)
                return fastest

            return await best(echo), await best(ping)

    remote, floor = anyio.run(over_stdio)
    with OanixEnv() as env:
        local = per_call(lambda: env.exec("echo hi"), n)
    print(f"exec 'echo hi' through MCP over stdio {remote * 1e6:8.1f} us; env.exec in "
          f"process {local * 1e6:8.1f} us; ratio {remote / local:.2f}x (an MCP ping, the "
          f"SDK's own round trip: {floor * 1e6:.1f} us)")
def aexec_vs_exec(n: int = 100, rounds: int = 7) -> None:
    """``aexec`` under each event loop against ``exec`` called directly, and against the
    bare thread hand-off a user would otherwise write (``to_thread.run_sync(env.exec)``,
    which cannot stop the command when cancelled): per call, the best of ``rounds``
    interleaved rounds (a loaded machine slows whichever runs when it is busiest), for
    ``echo hi`` and for the 5-command pipeline."""
    import anyio
    import anyio.to_thread

    async def timed(call: Callable[[], Awaitable[object]], count: int) -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            await call()
        return (time.perf_counter() - t0) / count

    def rounds_of(command: str, count: int) -> Callable[[], Awaitable[list[float]]]:
        async def direct() -> None:
            env.exec(command)

        async def run() -> list[float]:
            best = [float("inf")] * 3
            for _ in range(rounds):
                for i, call in enumerate((
                        direct, lambda: anyio.to_thread.run_sync(env.exec, command),
                        lambda: env.aexec(command))):
                    best[i] = min(best[i], await timed(call, count))
            return best
        return run

    with OanixEnv() as env:
        for command, label, count in (("echo hi", "'echo hi'", n),
                                      (PIPELINE, "pipeline ", n // 4)):
            for backend in ("asyncio", "trio"):
                sync, bare, ours = anyio.run(rounds_of(command, count), backend=backend)
                print(f"aexec {label} under {backend:7} {ours * 1e6:7.1f} us   exec "
                      f"{sync * 1e6:7.1f} us   ratio {ours / sync:.2f}x   bare to_thread "
                      f"{bare * 1e6:7.1f} us   ratio {ours / bare:.2f}x")


def harbor_vs_batch() -> None:
    venv = Path(os.environ.get("OANIX_HARBOR_VENV", "/tmp/harbor-venv"))
    harbor = venv / "bin" / "harbor"
    if not harbor.is_file():
        print(f"harbor vs oanix-tasks batch: skipped, no harbor at {harbor} "
              "(set OANIX_HARBOR_VENV)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tasks = Path(tmp) / "tasks"
        for p in find_tasks(EXAMPLES):
            if (p / "task.toml").is_file():  # Harbor's format only
                shutil.copytree(p, tasks / p.name)
        count = len(find_tasks(tasks))
        env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent.parent)}
        t0 = time.perf_counter()
        ours = subprocess.run([sys.executable, "-m", "oanix.tasks", "batch", str(tasks),
                               "--concurrency", "2", "--output", f"{tmp}/ours", "--json"],
                              capture_output=True, env=env, timeout=1800)
        ours_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = subprocess.run([str(harbor), "run", "-p", str(tasks), "-a", "oracle",
                                 "-e", "oanix.harbor:OanixEnvironment", "-n", "2",
                                 "-o", f"{tmp}/jobs", "-y"],
                                capture_output=True, cwd=tmp, env=env, timeout=1800)
        theirs_s = time.perf_counter() - t0
        trials = len(list(Path(tmp, "jobs").glob("*/*/result.json")))
        if ours.returncode != 0 or theirs.returncode != 0:
            print(f"harbor vs oanix-tasks batch: a run failed (oanix-tasks "
                  f"{ours.returncode}, harbor {theirs.returncode}): "
                  f"{(theirs.stderr or theirs.stdout or ours.stderr).decode()[-300:]}")
            return
    print(f"{count} Harbor example tasks (oracle, concurrency 2): oanix-tasks batch "
          f"{ours_s:.1f} s, harbor run -e oanix {theirs_s:.1f} s ({trials} trials), "
          f"ratio {theirs_s / ours_s:.2f}x")


def ray_vs_local() -> None:
    """The example tasks as one batch at concurrency 2, locally and on a local Ray started
    by the batch (``oanix-tasks batch --ray``), each through the CLI in a fresh process."""
    try:
        import ray  # noqa: F401
    except ImportError:
        print("batch on Ray vs local: skipped, Ray is not installed (oanix[ray])")
        return
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent.parent)}
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("local", []), ("ray", ["--ray"])):
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "oanix.tasks", "batch", str(EXAMPLES),
                                  "--concurrency", "2", "--output", f"{tmp}/{name}", "--json",
                                  *extra], capture_output=True, env=env, timeout=1800)
            times[name] = time.perf_counter() - t0
            if res.returncode != 0:
                print(f"batch on Ray vs local: the {name} batch failed: "
                      f"{res.stderr.decode()[-300:]}")
                return
    count = len(find_tasks(EXAMPLES))
    print(f"batch of {count} example tasks (oracle, concurrency 2): local "
          f"{times['local']:.1f} s, on a local Ray {times['ray']:.1f} s, ratio "
          f"{times['ray'] / times['local']:.2f}x (Ray's start and stop, the tasks shipped "
          "to fresh worker processes that build their own runtime and module cache)")


BUILD_DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
RUN apt-get update && apt-get install -y curl python3
RUN pip install requests
COPY data.txt /app/data.txt
"""


def environment_build() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        task = Path(tmp) / "build-task"
        (task / "environment").mkdir(parents=True)
        (task / "environment" / "Dockerfile").write_text(BUILD_DOCKERFILE)
        (task / "environment" / "data.txt").write_text("x\n")
        (task / "tests").mkdir()
        (task / "tests" / "test.sh").write_text("true\n")
        (task / "instruction.md").write_text("Nothing.\n")
        (task / "task.toml").write_text('version = "1.0"\n')
        spec = load_task(task)
        with WasiRuntime() as rt:
            first_t0 = time.perf_counter()
            _, _, _, unsupported = build_image(spec, rt)
            first = time.perf_counter() - first_t0
            again = min(_timed(lambda: build_image(spec, rt)) for _ in range(5))
    print(f"environment build (apt-get install curl python3; pip install requests): "
          f"first {first * 1e3:.1f} ms, then {again * 1e3:.1f} ms best of 5"
          + (f"; unsupported: {unsupported}" if unsupported else ""))


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the task batch")
    ap.add_argument("--bounds", action="store_true", help="only the bounds section")
    ap.add_argument("--subprocess", action="store_true", help="only the subprocess section")
    ap.add_argument("--harbor", action="store_true",
                    help="only oanix-tasks batch against harbor run")
    ap.add_argument("--build", action="store_true", help="only the environment build")
    ap.add_argument("--ray", action="store_true", help="only the batch on Ray against local")
    ap.add_argument("--mcp", action="store_true",
                    help="only exec through MCP over stdio against env.exec")
    ap.add_argument("--aexec", action="store_true", help="only aexec against exec")
    ap.add_argument("--rss-probe", metavar="COMMAND", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_probe:
        rss_probe(args.rss_probe)
        return
    if args.bounds:
        bounds()
        return
    if args.subprocess:
        subprocess_from_the_sandbox()
        return
    if args.ray:
        ray_vs_local()
        return
    if args.mcp:
        mcp_round_trip()
        return
    if args.aexec:
        aexec_vs_exec()
        return
    if args.build or args.harbor:
        if args.build:
            environment_build()
        if args.harbor:
            harbor_vs_batch()
        return

    ws = MemFs()
    for i in range(100):
        ws.write_bytes(f"/f{i}", b"x" * 100)
    create = per_call(lambda: OanixEnv(workspace=ws), 200)
    env = OanixEnv(workspace=ws)
    fork = per_call(env.fork, 200)
    print(f"OanixEnv creation {create * 1e6:8.1f} us    fork {fork * 1e6:8.1f} us")

    with OanixEnv() as env:
        echo = per_call(lambda: env.exec("echo hi"), 200)
        pipe = per_call(lambda: env.exec(PIPELINE), 100)
    sh_echo = per_call(lambda: subprocess.run(["sh", "-c", "echo hi"], capture_output=True),
                       50)
    sh_pipe = per_call(lambda: subprocess.run(["sh", "-c", PIPELINE], capture_output=True),
                       50)
    print(f"exec 'echo hi'        {echo * 1e6:8.1f} us   host sh -c {sh_echo * 1e6:8.1f} us"
          f"   ratio {echo / sh_echo:.2f}x")
    print(f"exec 5-cmd pipeline   {pipe * 1e6:8.1f} us   host sh -c {sh_pipe * 1e6:8.1f} us"
          f"   ratio {pipe / sh_pipe:.2f}x")

    n, c = 10_000, 4
    ours = best_of(3, through_scheduler, n, c)
    floor = best_of(3, bare_nursery, n, c)
    print(f"scheduler, {n} no-op jobs at {c}: {n / ours:,.0f} jobs/s; bare nursery "
          f"{n / floor:,.0f} jobs/s; ratio {ours / floor:.2f}x the floor's time")
    aexec_vs_exec()
    bounds()
    subprocess_from_the_sandbox()
    environment_build()
    mcp_round_trip()

    if not args.quick:
        with WasiRuntime() as rt:
            batch(1, rt)  # warm the caches
            one, two = batch(1, rt), batch(2, rt)
        count = len(find_tasks(EXAMPLES))
        print(f"batch of {count} example tasks (oracle): concurrency 1 {one:.1f} s, "
              f"concurrency 2 {two:.1f} s, speed-up {one / two:.2f}x")
        harbor_vs_batch()
        ray_vs_local()


if __name__ == "__main__":
    main()
