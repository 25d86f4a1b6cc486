import io
import json
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oanix import errors
from oanix.fs.mem import MemFs
from oanix.namespace import Namespace
from oanix.service import FileService
from oanix.services.task import Reward, TaskFs, TaskInfo, TaskStatus


class Clock:
    """A deterministic clock: 1000.0, 1001.0, ..."""

    def __init__(self) -> None:
        self.now = 999.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def make_spec(**kw: Any) -> TaskInfo:
    args: dict[str, Any] = dict(id="hello-world", instruction="Create /app/hello.txt",
                                input={"files": ["a", "b"], "n": 1}, tags=["easy", "file"],
                                agent_timeout_sec=900, verifier_timeout_sec=180.5)
    args.update(kw)
    return TaskInfo(**args)


def make_task(**meta: Any) -> TaskFs:
    return TaskFs(make_spec(), meta or {"author": "me"}, clock=Clock())


# -- the spec ---------------------------------------------------------------------------------

def test_spec_converts_and_copies() -> None:
    data = {"nested": {"list": [1, 2.5, None, True, "x"]}}
    spec = TaskInfo("t", "do it", data, ("a",), 10)
    data["nested"]["list"].append("later")
    assert spec.input == {"nested": {"list": [1, 2.5, None, True, "x"]}}
    assert spec.tags == ("a",) and spec.agent_timeout_sec == 10.0
    assert isinstance(spec.agent_timeout_sec, float) and spec.verifier_timeout_sec is None
    assert TaskInfo("t", "").input == {} and TaskInfo("t", "").tags == ()
    assert TaskInfo.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(("field", "value"), [
    ("id", ""), ("id", "  "), ("id", 3), ("instruction", None),
    ("input", []), ("input", {"x": float("nan")}), ("input", {1: "int key"}),
    ("input", {"t": (1, 2)}), ("input", {"o": object()}),
    ("tags", "easy"), ("tags", ["ok", 2]), ("tags", None),
    ("agent_timeout_sec", 0), ("agent_timeout_sec", -1), ("agent_timeout_sec", True),
    ("agent_timeout_sec", "10"), ("verifier_timeout_sec", math.inf),
    ("verifier_timeout_sec", float("nan")),
])
def test_spec_validation_names_the_field(field: str, value: Any) -> None:
    with pytest.raises(errors.InvalidArgument, match=f"TaskInfo.{field}"):
        make_spec(**{field: value})


def test_spec_from_dict_refuses_unknown_and_missing_fields() -> None:
    with pytest.raises(errors.InvalidArgument, match=r"unknown field\(s\) \['task_type'\]"):
        TaskInfo.from_dict({"id": "t", "instruction": "", "task_type": "x"})
    with pytest.raises(errors.InvalidArgument, match=r"TaskInfo\.instruction is missing"):
        TaskInfo.from_dict({"id": "t"})
    with pytest.raises(errors.InvalidArgument, match="JSON object"):
        TaskInfo.from_dict(["id"])  # type: ignore[arg-type]


def test_taskfs_arguments_are_checked() -> None:
    with pytest.raises(errors.InvalidArgument, match="TaskInfo"):
        TaskFs({"id": "x"})  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgument, match="version"):
        TaskFs(make_spec(), version=0)
    with pytest.raises(errors.InvalidArgument, match="metadata"):
        TaskFs(make_spec(), {"bad": {1, 2}})


# -- the fixed files --------------------------------------------------------------------------

@pytest.mark.parametrize("view", ["agent", "verifier"])
def test_spec_meta_and_listing(view: str) -> None:
    task = make_task()
    fs = task.agent_view() if view == "agent" else task.verifier_view()
    spec_text = fs.read_text("/spec.json")
    assert spec_text == json.dumps(task.spec.to_dict(), indent=2) + "\n"
    assert json.loads(spec_text) == {
        "id": "hello-world", "instruction": "Create /app/hello.txt",
        "input": {"files": ["a", "b"], "n": 1}, "tags": ["easy", "file"],
        "agent_timeout_sec": 900.0, "verifier_timeout_sec": 180.5}
    assert json.loads(fs.read_bytes("/meta.json")) == {
        "created_at": 1000.0, "version": 1, "metadata": {"author": "me"}}
    assert task.metadata == {"author": "me"}
    assert fs.listdir("/") == ["meta.json", "spec.json", "status", "verifier"]
    root = fs.stat("/")
    assert root.is_dir and root.size == 4 and root.readonly
    for entry in fs.scandir("/"):
        if entry.is_file:
            assert entry.readonly and entry.size == len(fs.read_bytes("/" + entry.name))
    assert fs.listdir("/verifier") == []


@pytest.mark.parametrize("view", ["agent", "verifier"])
@pytest.mark.parametrize("path", ["/spec.json", "/meta.json", "/status"])
def test_fixed_files_are_read_only_for_everyone(view: str, path: str) -> None:
    task = make_task()
    fs = task.agent_view() if view == "agent" else task.verifier_view()
    before = fs.read_bytes(path)
    for mode in ("w", "a", "r+", "w+", "a+"):
        with pytest.raises(errors.ReadOnly) as exc:
            fs.open(path, mode)
        assert exc.value.path == path
    with pytest.raises(errors.ReadOnly):
        fs.open(path, "x")
    for op in (lambda: fs.write_bytes(path, b"{}"), lambda: fs.remove(path),
               lambda: fs.rename(path, "/other"), lambda: fs.mkdir(path + ".d"),
               lambda: fs.rmdir(path)):
        with pytest.raises(errors.ReadOnly):
            op()
    assert fs.read_bytes(path) == before


def test_lookup_errors() -> None:
    fs = make_task().agent_view()
    with pytest.raises(errors.NotFound):
        fs.stat("/nope")
    with pytest.raises(errors.NotFound):
        fs.read_bytes("/result.json")
    with pytest.raises(errors.NotADirectory):
        fs.stat("/spec.json/x")
    with pytest.raises(errors.NotADirectory):
        fs.listdir("/spec.json")
    with pytest.raises(errors.NotFound):
        fs.listdir("/nope")
    with pytest.raises(errors.IsADirectory):
        fs.open("/", "rb")
    with pytest.raises(errors.IsADirectory):
        fs.open("/verifier", "rb")
    with pytest.raises(errors.NotFound) as exc:
        fs.read_bytes("/verifier/reward.txt")
    assert exc.value.path == "/verifier/reward.txt"
    with pytest.raises(errors.NotFound):
        fs.open("/verifier/reward.txt", "r+")
    with pytest.raises(errors.ReadOnly) as ro:
        fs.write_bytes("/new-file", b"1")
    assert ro.value.path == "/new-file" and "agent may write only /result.json" in str(ro.value)


# -- status -----------------------------------------------------------------------------------

def status_of(fs: FileService) -> dict[str, Any]:
    data = fs.read_bytes("/status")
    assert fs.stat("/status").size == len(data)
    result: dict[str, Any] = json.loads(data)
    return result


def test_status_lifecycle() -> None:
    task = make_task()
    fs = task.agent_view()
    assert status_of(fs) == {"state": "pending", "created_at": 1000.0, "started_at": None,
                             "finished_at": None, "error": None}
    assert task.start() == TaskStatus("running", 1000.0, started_at=1001.0)
    assert status_of(fs)["state"] == "running" and status_of(fs)["started_at"] == 1001.0
    done = task.complete()
    assert (done.state, done.started_at, done.finished_at, done.error) == (
        "completed", 1001.0, 1002.0, None)
    assert done.is_finished and task.is_finished and task.state == "completed"
    assert status_of(fs) == {"state": "completed", "created_at": 1000.0, "started_at": 1001.0,
                             "finished_at": 1002.0, "error": None}
    assert fs.stat("/status").mtime == 1002.0


def test_fail_and_cancel() -> None:
    task = make_task()
    failed = task.fail("container died")
    assert (failed.state, failed.started_at, failed.error) == ("failed", None, "container died")
    assert status_of(task.verifier_view())["error"] == "container died"
    task2 = make_task()
    task2.start()
    cancelled = task2.cancel("user abort")
    assert (cancelled.state, cancelled.error) == ("cancelled", "user abort")
    task3 = make_task()
    assert task3.cancel().error is None
    with pytest.raises(errors.InvalidArgument, match="error must be a str"):
        make_task().fail(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("setup", "move", "frm", "to"), [
    ([], "complete", "pending", "completed"),
    (["start"], "start", "running", "running"),
    (["start", "complete"], "start", "completed", "running"),
    (["start", "complete"], "fail", "completed", "failed"),
    (["start", "complete"], "cancel", "completed", "cancelled"),
    (["cancel"], "complete", "cancelled", "completed"),
    (["fail"], "cancel", "failed", "cancelled"),
])
def test_illegal_transitions_name_both_states(setup: list[str], move: str, frm: str,
                                              to: str) -> None:
    task = make_task()
    for name in setup:
        getattr(task, name)(*(["e"] if name == "fail" else []))
    before = task.status()
    with pytest.raises(errors.InvalidArgument, match=f"illegal status change {frm} -> {to}"):
        getattr(task, move)(*(["e"] if move == "fail" else []))
    assert task.status() == before


def test_concurrent_start_succeeds_once() -> None:
    task = TaskFs(make_spec())
    wins: list[int] = []
    losses: list[int] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            task.start()
            wins.append(i)
        except errors.InvalidArgument:
            losses.append(i)
        for _ in range(50):
            assert json.loads(task.agent_view().read_bytes("/status"))["state"] == "running"

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7


# -- result.json ------------------------------------------------------------------------------

def test_result_round_trip_and_listing() -> None:
    task = make_task()
    agent, verifier = task.agent_view(), task.verifier_view()
    assert task.result() is None and task.result_bytes() is None
    agent.write_text("/result.json", '{"answer": 42}')
    assert task.result() == {"answer": 42}
    assert verifier.read_text("/result.json") == '{"answer": 42}'
    assert agent.listdir("/") == ["meta.json", "result.json", "spec.json", "status", "verifier"]
    assert not agent.stat("/result.json").readonly
    assert verifier.stat("/result.json").readonly
    with agent.open("/result.json", "a") as f:
        f.seek(0, io.SEEK_END)
        f.write(b"  \n")
    assert agent.read_bytes("/result.json") == b'{"answer": 42}  \n'
    with agent.open("/result.json", "r+") as f:
        assert f.read(1) == b"{"
        f.seek(0)
        f.write(b"[1,2,3]  ")
        f.truncate()
    assert task.result() == [1, 2, 3]
    with pytest.raises(errors.AlreadyExists):
        agent.open("/result.json", "x")
    agent.remove("/result.json")
    assert task.result() is None and not agent.exists("/result.json")
    with pytest.raises(errors.NotFound):
        agent.remove("/result.json")
    with agent.open("/result.json", "x") as f:
        f.write(b"null")
    assert task.result_bytes() == b"null" and task.result() is None


@pytest.mark.parametrize("bad", [b"", b"{", b"{'a': 1}", b"NaN", b"[1] [2]", b"\xff"])
def test_invalid_result_is_rejected_and_previous_content_stays(bad: bytes) -> None:
    task = make_task()
    agent = task.agent_view()
    agent.write_bytes("/result.json", b'{"ok": true}')
    with pytest.raises(errors.InvalidArgument, match=r"/result\.json: not valid JSON"):
        agent.write_bytes("/result.json", bad)
    assert task.result() == {"ok": True}
    f = agent.open("/result.json", "w")
    f.write(bad)
    assert agent.read_bytes("/result.json") == b'{"ok": true}'  # not committed before close
    with pytest.raises(errors.InvalidArgument):
        f.close()
    assert f.closed and task.result() == {"ok": True}


def test_result_is_committed_on_close() -> None:
    task = make_task()
    agent = task.agent_view()
    with agent.open("/result.json", "w") as f:
        f.write(b'{"par')
        assert not agent.exists("/result.json")
        f.write(b'tial": 1}')
    assert task.result() == {"partial": 1}


def test_result_is_frozen_once_the_task_is_finished() -> None:
    task = make_task()
    agent = task.agent_view()
    task.start()
    agent.write_bytes("/result.json", b"1")
    late = agent.open("/result.json", "w")
    late.write(b"2")
    task.complete()
    assert agent.stat("/result.json").readonly
    with pytest.raises(errors.ReadOnly, match="completed: the result is frozen"):
        late.close()
    with pytest.raises(errors.ReadOnly):
        agent.write_bytes("/result.json", b"3")
    with pytest.raises(errors.ReadOnly):
        agent.open("/result.json", "a")
    with pytest.raises(errors.ReadOnly):
        agent.remove("/result.json")
    assert task.result() == 1


def test_result_frozen_even_when_never_written() -> None:
    task = make_task()
    task.cancel()
    with pytest.raises(errors.ReadOnly):
        task.agent_view().write_bytes("/result.json", b"1")
    assert task.result_bytes() is None


def test_verifier_cannot_write_the_result() -> None:
    task = make_task()
    task.agent_view().write_bytes("/result.json", b'"mine"')
    verifier = task.verifier_view()
    for mode in ("w", "a", "r+", "x"):
        with pytest.raises(errors.ReadOnly):
            verifier.open("/result.json", mode)
    for op in (lambda: verifier.remove("/result.json"),
               lambda: verifier.rename("/result.json", "/verifier/r.json"),
               lambda: verifier.rename("/verifier", "/result.json")):
        with pytest.raises(errors.ReadOnly):
            op()
    assert task.result() == "mine"


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=40),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                              lambda c: st.lists(c, max_size=3)
                              | st.dictionaries(st.text(max_size=3), c, max_size=3),
                              max_leaves=8).map(lambda v: json.dumps(v).encode())))
def test_result_is_stored_iff_it_is_strict_json(data: bytes) -> None:
    def valid(b: bytes) -> bool:
        def refuse(name: str) -> Any:
            raise ValueError(name)
        try:
            json.loads(b, parse_constant=refuse)
        except ValueError:
            return False
        return True

    task = TaskFs(make_spec())
    agent = task.agent_view()
    agent.write_bytes("/result.json", b"0")
    try:
        agent.write_bytes("/result.json", data)
    except errors.InvalidArgument:
        assert not valid(data)
        assert task.result_bytes() == b"0"
    else:
        assert valid(data)
        assert task.result_bytes() == data


# -- the verifier area and reward forgery -----------------------------------------------------

def verifier_writes(task: TaskFs) -> None:
    v = task.verifier_view()
    v.write_text("/verifier/reward.txt", "0\n")
    v.makedirs("/verifier/tests/unit")
    v.write_text("/verifier/tests/unit/test_a.txt", "FAILED")
    v.write_text("/verifier/ctrf.json", '{"results": {"summary": {"failed": 1}}}')


Op = Callable[[FileService, str], object]


def _open_write(mode: str, data: bytes = b"1") -> Op:
    def op(fs: FileService, base: str) -> object:
        with fs.open(base + "/verifier/reward.txt", mode) as f:
            f.seek(0)
            return f.write(data)
    return op


FORGERIES: dict[str, Op] = {
    "write_bytes": lambda fs, b: fs.write_bytes(b + "/verifier/reward.txt", b"1"),
    "write_text_json": lambda fs, b: fs.write_text(b + "/verifier/reward.json", '{"r": 1}'),
    "open_w": _open_write("w"),
    "open_wb+": _open_write("wb+"),
    "open_a": _open_write("a"),
    "open_a+": _open_write("a+"),
    "open_r+": _open_write("r+"),
    "open_x": _open_write("x"),
    "create_new_file": lambda fs, b: fs.write_bytes(b + "/verifier/other.txt", b"1"),
    "mkdir": lambda fs, b: fs.mkdir(b + "/verifier/tests2"),
    "makedirs": lambda fs, b: fs.makedirs(b + "/verifier/a/b"),
    "rename_result_in": lambda fs, b: fs.rename(b + "/result.json", b + "/verifier/reward.txt"),
    "rename_inside": lambda fs, b: fs.rename(b + "/verifier/ctrf.json",
                                             b + "/verifier/reward.txt"),
    "rename_out": lambda fs, b: fs.rename(b + "/verifier/reward.txt", b + "/result.json"),
    "rename_dir": lambda fs, b: fs.rename(b + "/verifier/tests", b + "/verifier/t"),
    "remove": lambda fs, b: fs.remove(b + "/verifier/reward.txt"),
    "rmdir": lambda fs, b: fs.rmdir(b + "/verifier/tests/unit"),
    "rmtree": lambda fs, b: fs.rmtree(b + "/verifier/tests"),
    "rmdir_area": lambda fs, b: fs.rmdir(b + "/verifier"),
    "copy_in": lambda fs, b: fs.copy(b + "/result.json", b + "/verifier/reward.txt"),
    "move_in": lambda fs, b: fs.move(b + "/result.json", b + "/verifier/reward.txt"),
}


def _verifier_snapshot(task: TaskFs) -> dict[str, bytes]:
    v = task.verifier_view()
    out: dict[str, bytes] = {}
    for d, dirs, files in v.walk("/verifier"):
        out.update({f"{d}/{n}": v.read_bytes(f"{d}/{n}") for n in files})
        out.update({f"{d}/{n}/": b"" for n in dirs})
    return out


@pytest.mark.parametrize("seeded", [False, True], ids=["empty", "after-verifier"])
@pytest.mark.parametrize("through", ["view", "namespace", "bind"])
@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_agent_cannot_forge_its_reward(name: str, through: str, seeded: bool) -> None:
    task = make_task()
    agent = task.agent_view()
    agent.write_bytes("/result.json", b"1")
    if seeded:
        verifier_writes(task)
    before = _verifier_snapshot(task)
    fs: FileService = agent
    base = ""
    if through != "view":
        ns = Namespace()
        ns.mount("/task", agent)
        ns.mount("/tmp", MemFs())
        if through == "bind":  # a writable bind cannot widen what the view allows
            ns.bind("/task", "/logs", create=True)
            fs, base = ns, "/logs"
        else:
            fs, base = ns, "/task"
    with pytest.raises((errors.ReadOnly, errors.NotFound)) as exc:
        FORGERIES[name](fs, base)
    if seeded or name in {"write_bytes", "open_w", "open_x", "mkdir", "rename_result_in"}:
        assert isinstance(exc.value, errors.ReadOnly), exc.value
    assert _verifier_snapshot(task) == before
    expected = Reward({"reward": 0.0}, "/verifier/reward.txt") if seeded else None
    assert task.reward() == expected
    assert task.result() == 1


def test_agent_cannot_forge_by_moving_from_another_mount() -> None:
    task = make_task()
    ns = Namespace()
    ns.mount("/task", task.agent_view())
    ns.mount("/tmp", MemFs())
    ns.write_bytes("/tmp/reward.txt", b"1")
    with pytest.raises(errors.ReadOnly):
        ns.move("/tmp/reward.txt", "/task/verifier/reward.txt")
    with pytest.raises(errors.CrossMount):
        ns.rename("/tmp/reward.txt", "/task/verifier/reward.txt")
    with pytest.raises(errors.ReadOnly) as exc:
        ns.copy("/tmp/reward.txt", "/task/verifier/reward.txt")
    assert exc.value.path == "/task/verifier/reward.txt"
    assert ns.read_bytes("/tmp/reward.txt") == b"1"
    assert task.reward() is None and task.verifier_view().listdir("/verifier") == []


def test_agent_sees_verifier_area_read_only() -> None:
    task = make_task()
    verifier_writes(task)
    agent = task.agent_view()
    assert agent.read_text("/verifier/reward.txt") == "0\n"
    assert agent.listdir("/verifier") == ["ctrf.json", "reward.txt", "tests"]
    assert all(st.readonly for st in agent.scandir("/verifier"))
    assert agent.stat("/verifier").readonly and agent.stat("/verifier/tests/unit").readonly
    st_v = task.verifier_view().stat("/verifier/reward.txt")
    assert not st_v.readonly and st_v.name == "reward.txt"
    with agent.open("/verifier/ctrf.json") as f, pytest.raises(errors.BadFileMode):
        f.write(b"x")


def test_verifier_writes_its_area() -> None:
    task = make_task()
    v = task.verifier_view()
    verifier_writes(task)
    assert v.stat("/verifier").name == "verifier" and not v.stat("/verifier").readonly
    v.rename("/verifier/tests/unit/test_a.txt", "/verifier/tests/unit/test_b.txt")
    assert v.glob("/verifier/**/*.txt") == ["/verifier/reward.txt",
                                            "/verifier/tests/unit/test_b.txt"]
    with v.open("/verifier/reward.txt", "r+") as f:
        f.write(b"1")
    assert task.reward() == Reward({"reward": 1.0}, "/verifier/reward.txt")
    with pytest.raises(errors.NotEmpty) as exc:
        v.rmdir("/verifier/tests")
    assert exc.value.path == "/verifier/tests"
    with pytest.raises(errors.NotFound) as nf:
        v.rename("/verifier/missing", "/verifier/x")
    assert (nf.value.filename, nf.value.filename2) == ("/verifier/missing", "/verifier/x")
    v.rmtree("/verifier/tests")
    v.remove("/verifier/ctrf.json")
    assert v.listdir("/verifier") == ["reward.txt"]
    for op in (lambda: v.rmdir("/verifier"), lambda: v.rename("/verifier", "/v"),
               lambda: v.write_bytes("/reward.txt", b"1"), lambda: v.mkdir("/logs")):
        with pytest.raises(errors.ReadOnly):
            op()
    task.clear_verifier()
    assert v.listdir("/verifier") == [] and task.reward() is None


def test_views_through_namespaces() -> None:
    task = make_task()
    agent_ns, verifier_ns = Namespace(), Namespace()
    agent_ns.mount("/task", task.agent_view())
    verifier_ns.mount("/task", task.verifier_view())
    verifier_ns.bind("/task/verifier", "/logs/verifier")
    assert json.loads(agent_ns.read_bytes("/task/spec.json"))["id"] == "hello-world"
    agent_ns.write_text("/task/result.json", '{"done": true}')
    assert verifier_ns.read_text("/task/result.json") == '{"done": true}'
    verifier_ns.write_text("/logs/verifier/reward.json", '{"reward": 0.75, "tests": 3}')
    assert agent_ns.read_text("/task/verifier/reward.json") == '{"reward": 0.75, "tests": 3}'
    reward = task.reward()
    assert reward is not None and reward.value == 0.75
    assert dict(reward.metrics) == {"reward": 0.75, "tests": 3.0}
    with pytest.raises(errors.ReadOnly) as exc:
        agent_ns.write_bytes("/task/verifier/reward.json", b'{"reward": 1}')
    assert exc.value.path == "/task/verifier/reward.json"


# -- reward parsing ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("1", 1.0), ("0\n", 0.0), (" 0.25 \n", 0.25), ("-1e-3", -0.001)])
def test_reward_txt(text: str, value: float) -> None:
    task = make_task()
    task.verifier_view().write_text("/verifier/reward.txt", text)
    reward = task.reward()
    assert reward == Reward({"reward": value}, "/verifier/reward.txt")
    assert reward is not None and reward.value == value


def test_reward_txt_is_read_before_reward_json() -> None:
    task = make_task()
    v = task.verifier_view()
    v.write_text("/verifier/reward.json", '{"reward": 0.5}')
    assert task.reward() == Reward({"reward": 0.5}, "/verifier/reward.json")
    v.write_text("/verifier/reward.txt", "1")
    assert task.reward() == Reward({"reward": 1.0}, "/verifier/reward.txt")


def test_reward_value_rules() -> None:
    assert Reward({"acc": 0.5}, "x").value == 0.5
    assert Reward({"a": 1, "b": 2}, "x").value is None
    r = Reward({"reward": 1, "b": 2}, "x")
    assert r.value == 1
    with pytest.raises(TypeError):
        r.metrics["reward"] = 5  # type: ignore[index]


@pytest.mark.parametrize(("name", "data", "why"), [
    ("reward.txt", b"", "not a number"),
    ("reward.txt", b"abc", "not a number"),
    ("reward.txt", b"1 2", "not a number"),
    ("reward.txt", b"\xff", "not a number"),
    ("reward.txt", b"nan", "not a finite number"),
    ("reward.txt", b"-inf", "not a finite number"),
    ("reward.json", b"{", "not valid JSON"),
    ("reward.json", b'{"r": NaN}', "not valid JSON"),
    ("reward.json", b"[1]", "must be a non-empty JSON object"),
    ("reward.json", b"{}", "must be a non-empty JSON object"),
    ("reward.json", b'{"r": "1"}', "metric 'r' is not a finite number"),
    ("reward.json", b'{"r": true}', "metric 'r' is not a finite number"),
    ("reward.json", b'{"r": 1e999}', "not valid JSON: the number 1e999 does not fit a float"),
])
def test_malformed_reward_is_a_clear_error(name: str, data: bytes, why: str) -> None:
    task = make_task()
    task.verifier_view().write_bytes(f"/verifier/{name}", data)
    with pytest.raises(errors.InvalidArgument, match=f"/verifier/{name}: {why}"):
        task.reward()


def test_reward_file_that_is_a_directory() -> None:
    task = make_task()
    task.verifier_view().mkdir("/verifier/reward.txt")
    with pytest.raises(errors.InvalidArgument, match="is a directory"):
        task.reward()


def test_shadowing_the_verifier_area_in_the_agent_namespace_changes_nothing() -> None:
    task = make_task()
    ns = Namespace()
    ns.mount("/task", task.agent_view())
    ns.mount("/task/verifier", MemFs(), mode="before", create=True)
    ns.write_bytes("/task/verifier/reward.txt", b"1")  # lands in the agent's own MemFs
    assert ns.read_bytes("/task/verifier/reward.txt") == b"1"
    assert task.reward() is None
    assert task.verifier_view().listdir("/verifier") == []


def test_status_is_a_snapshot_taken_at_open() -> None:
    task = make_task()
    f = task.agent_view().open("/status")
    task.start()
    assert json.loads(f.read())["state"] == "pending"
    f.close()
    assert status_of(task.agent_view())["state"] == "running"


def test_any_text_in_the_spec_renders() -> None:
    task = TaskFs(TaskInfo("t", "lone \ud800 surrogate and é", {"k": "\udfff"}))
    spec = json.loads(task.agent_view().read_bytes("/spec.json"))
    assert spec["instruction"] == "lone \ud800 surrogate and é"
    assert spec["input"] == {"k": "\udfff"}


def test_illegal_transition_names_both_states() -> None:
    fs = TaskFs(TaskInfo("t1", "do it"))
    with pytest.raises(errors.IllegalTransition) as exc:
        fs.complete()
    assert (exc.value.current, exc.value.target) == ("pending", "completed")
