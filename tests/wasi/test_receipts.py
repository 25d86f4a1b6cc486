"""Receipts of runs and trials, and replay: content addresses, what is (never) recorded, a
replay that matches, and one that finds the changed input."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from oanix import (
    InvalidArgument,
    MemFs,
    Namespace,
    Receipt,
    RunConfig,
    RunResult,
    WasiRuntime,
    replay,
)
from oanix.env import Limits, OanixEnv
from oanix.errors import ModuleError, PermissionDenied, ReadOnly
from oanix.tasks import load_task
from oanix.tasks.runner import run_trial

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"
SECRET = "s3cr3t-value-never-recorded"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def world(content: bytes) -> Namespace:
    ns = Namespace()
    data = MemFs()
    data.write_bytes("/in.txt", content)
    data.write_bytes("/keep.txt", b"untouched")
    ns.mount("/data", data)
    return ns


def move_run(rt: WasiRuntime, wasm: Callable[[str], str], ns: Namespace) -> RunResult:
    # the output's content is the input's: a changed input changes the output
    return rt.run(wasm("fsops"), ns, RunConfig(
        argv=["mv", "/data/in.txt", "/data/out.txt", "--", "read", "/data/out.txt"],
        env={"API_KEY": SECRET}, receipt=True, fuel=10**9))


def test_a_receipt_names_everything_by_content(rt: WasiRuntime,
                                               wasm: Callable[[str], str]) -> None:
    res = move_run(rt, wasm, world(b"payload"))
    assert res.ok and res.stdout == b"payload"
    r = res.receipt
    assert r is not None
    assert r.module_sha256 == sha(Path(wasm("fsops")).read_bytes())
    assert r.argv[1:] == ("mv", "/data/in.txt", "/data/out.txt", "--", "read",
                          "/data/out.txt")
    assert {(f.path, f.sha256) for f in r.inputs} == {("/data/in.txt", sha(b"payload")),
                                                      ("/data/keep.txt", sha(b"untouched"))}
    assert r.inputs_complete
    assert {(f.path, f.kind, f.sha256) for f in r.outputs} == {
        ("/data/out.txt", "file", sha(b"payload")), ("/data/in.txt", "deleted", None)}
    assert r.exit_code == 0 and r.status == 0 and r.trap is None
    assert r.fuel_consumed == res.fuel_consumed > 0
    assert r.stdout_sha256 == sha(b"payload") and r.stdin_sha256 == sha(b"")
    assert r.limits["fuel"] == 10**9 and set(r.versions) == {"oanix", "wasmtime", "python"}
    # the names of the environment, never the values
    assert r.env_names == ("API_KEY",)
    text = r.to_bytes().decode()
    assert SECRET not in text
    # a content address: the JSON form round-trips and the id is its sha256
    again = Receipt.from_json(text)
    assert again == r and again.id == r.id == sha(r.to_bytes())
    assert Receipt.from_json(json.loads(text)) == r


def test_receipts_are_off_unless_asked(rt: WasiRuntime, wasm: Callable[[str], str]) -> None:
    assert rt.run(wasm("hello")).receipt is None
    res = rt.run(wasm("hello"), config=RunConfig(receipt=True))
    assert res.receipt is not None and res.receipt.inputs == ()


def test_replay_matches_a_deterministic_run(rt: WasiRuntime,
                                            wasm: Callable[[str], str]) -> None:
    original = move_run(rt, wasm, world(b"payload")).receipt
    assert original is not None
    report = replay(original.to_json(), world(b"payload"), runtime=rt,
                    env={"API_KEY": "another value: values are not recorded"})
    assert report.matches, report
    assert report.result.receipt is not None
    assert report.result.receipt.outputs == original.outputs


def test_replay_reports_a_changed_input_and_the_outputs_it_changed(
        rt: WasiRuntime, wasm: Callable[[str], str]) -> None:
    original = move_run(rt, wasm, world(b"payload")).receipt
    assert original is not None
    report = replay(original, world(b"tampered"), runtime=rt, env={"API_KEY": "x"})
    assert not report.matches
    assert report.inputs == (("/data/in.txt", "different"),)  # found before the run
    assert report.outputs == (("/data/out.txt", "different"),)
    assert report.status_matches and not report.stdout_matches


def test_replay_needs_the_module_the_environment_and_the_stdin(
        rt: WasiRuntime, wasm: Callable[[str], str]) -> None:
    original = move_run(rt, wasm, world(b"payload")).receipt
    assert original is not None
    with pytest.raises(InvalidArgument, match="API_KEY"):
        replay(original, world(b"payload"), runtime=rt)
    with pytest.raises(InvalidArgument, match="stdin"):
        replay(original, world(b"payload"), runtime=rt, env={"API_KEY": "x"}, stdin=b"?")
    unknown = {**original.to_json(), "module": {"name": "gone.wasm", "sha256": "ab" * 32}}
    with pytest.raises(ModuleError, match="ab" * 32):
        replay(unknown, world(b"payload"), runtime=rt, env={"API_KEY": "x"})


@pytest.mark.parametrize("change, field", [
    (lambda d: d.pop("argv"), "argv"),
    (lambda d: d.update(version=99), "version"),
    (lambda d: d.update(status="0"), "status"),
    (lambda d: d["module"].update(sha256="XYZ"), "module.sha256"),
    (lambda d: d["inputs"].append({"path": "/x", "kind": "pipe", "size": 0, "sha256": None}),
     "kind"),
    (lambda d: d.update(extra=1), "extra"),
])
def test_a_bad_receipt_is_refused_naming_the_field(
        rt: WasiRuntime, wasm: Callable[[str], str],
        change: Callable[[dict[str, object]], object], field: str) -> None:
    original = move_run(rt, wasm, world(b"payload")).receipt
    assert original is not None
    data = json.loads(original.to_bytes())
    change(data)
    with pytest.raises(InvalidArgument, match=field):
        Receipt.from_json(data)
    with pytest.raises(InvalidArgument, match="receipt"):
        Receipt.from_json(b"{not json")


def test_the_environment_keeps_receipts_the_agent_cannot_rewrite(
        wasm: Callable[[str], str]) -> None:
    with OanixEnv(limits=Limits(receipts=True)) as env:
        env.namespace.write_bytes("/bin/fsops", Path(wasm("fsops")).read_bytes())
        res = env.exec("fsops write /workspace/a.txt hi")
        assert res.ok, res
        names = env.namespace.listdir("/logs/receipts")
        assert len(names) == 1
        stored = Receipt.from_json(env.namespace.read_bytes(f"/logs/receipts/{names[0]}"))
        assert names[0] == f"{stored.id}.json"
        assert ("/workspace/a.txt", sha(b"hi")) in {(f.path, f.sha256) for f in stored.outputs}
        # the agent reads them but can neither change nor add nor remove one
        forged = env.exec(f"echo forged > /logs/receipts/{names[0]}; "
                          "echo x > /logs/receipts/new.json; rm /logs/receipts/*")
        assert "Read-only" in forged.stderr_text
        assert env.namespace.listdir("/logs/receipts") == names
        with pytest.raises((ReadOnly, PermissionDenied)):
            env.namespace.write_bytes("/logs/receipts/x.json", b"{}")
        python = env.run_python(code="open('/workspace/p.txt', 'w').write('py')")
        assert python.ok and python.receipt is not None
        assert len(env.namespace.listdir("/logs/receipts")) == 2


def test_a_trial_receipt(tmp_path: Path) -> None:
    spec = load_task(EXAMPLES / "hello-world")
    result = run_trial(spec, "oracle", receipt=True)
    assert result.passed, result.error
    r = result.receipt
    assert r is not None
    assert r.task == spec.name and r.agent == "oracle" and r.status == "passed"
    assert r.reward == result.reward
    assert {f.path for f in r.outputs} == set(result.changes.added) | set(
        result.changes.modified) | set(result.changes.deleted)
    assert all(f.sha256 for f in r.outputs if f.kind == "file")
    assert result.to_json()["receipt"]["task"]["sha256"] == r.task_sha256
    # the task's content address follows its files
    copy = tmp_path / "hello-world"
    shutil.copytree(EXAMPLES / "hello-world", copy)
    again = run_trial(load_task(copy), "oracle", receipt=True).receipt
    assert again is not None and again.task_sha256 == r.task_sha256
    (copy / "instruction.md").write_text("something else\n")
    changed = run_trial(load_task(copy), "nop", receipt=True).receipt
    assert changed is not None and changed.task_sha256 != r.task_sha256
    assert run_trial(spec, "nop").receipt is None
