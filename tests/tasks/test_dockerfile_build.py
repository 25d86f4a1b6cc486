"""Dockerfiles beyond the basics: heredocs, stages, ARG, USER, ENTRYPOINT/CMD."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from taskmaker import harbor_task

from oanix.tasks import Copy, parse_dockerfile
from oanix.tasks.formats import load_task
from oanix.tasks.runner import build_image, run_trial
from oanix.wasi import WasiRuntime

MULTI = """\
ARG BASE=python:3.13-slim
FROM ${BASE} AS builder
ARG GREETING=hello
WORKDIR /src
RUN <<EOF
mkdir -p out
echo "$GREETING from the builder" > out/msg.txt
EOF
COPY <<EOF /src/out/conf.ini
[main]
name = $GREETING
EOF
FROM ubuntu:24.04
ARG BASE
ENV WHERE=/app
WORKDIR $WHERE
COPY --from=builder /src/out/ ./built/
COPY --from=0 /src/out/msg.txt /app/msg-copy.txt
USER agent
RUN cat <<'EOF' > literal.txt
$NOT_EXPANDED
EOF
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo started > /app/started.txt"]
"""


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasiRuntime]:
    with WasiRuntime() as rt:
        yield rt


def test_plan_of_a_multi_stage_build() -> None:
    plan = parse_dockerfile(MULTI)
    assert plan.unsupported == ()
    assert len(plan.stages) == 2 and plan.stages[0].name == "builder"
    assert plan.stages[0].base == "python:3.13-slim"
    assert plan.base_image == "ubuntu:24.04" and plan.workdir == "/app"
    assert plan.user == "agent"
    assert plan.entrypoint == "/bin/sh -c"
    assert plan.cmd == "'echo started > /app/started.txt'"
    run = plan.stages[0].steps[0]
    assert isinstance(run, tuple) and run[1].splitlines() == [
        "mkdir -p out", 'echo "$GREETING from the builder" > out/msg.txt']
    assert ("GREETING", "hello") in run[3]
    conf = plan.stages[0].steps[1]
    assert conf == Copy((), "/src/out/conf.ini", content="[main]\nname = hello\n")
    assert plan.steps[0] == Copy(("/src/out/",), "/app/built/", from_stage=0)
    assert plan.steps[1] == Copy(("/src/out/msg.txt",), "/app/msg-copy.txt", from_stage=0)
    bad = parse_dockerfile("FROM a\nCOPY --from=nginx:latest /x /y\n")
    assert any("--from" in u for u in bad.unsupported)


def test_multi_stage_image_is_the_last_stage(tmp_path: Path, runtime: WasiRuntime) -> None:
    task = harbor_task(tmp_path / "t", MULTI, "true", "true")
    image, workdir, env, unsupported = build_image(load_task(task), runtime)
    assert unsupported == []
    assert workdir == "/app" and env == {"WHERE": "/app"}
    assert image.read_text("/app/built/msg.txt") == "hello from the builder\n"
    assert image.read_text("/app/built/conf.ini") == "[main]\nname = hello\n"
    assert image.read_text("/app/msg-copy.txt") == "hello from the builder\n"
    assert image.read_text("/app/literal.txt") == "$NOT_EXPANDED\n"
    assert not image.exists("/src")  # the builder's tree is not the image


def test_entrypoint_runs_at_start_or_is_reported(tmp_path: Path,
                                                 runtime: WasiRuntime) -> None:
    task = harbor_task(tmp_path / "t", MULTI, "true", "test -f /app/started.txt")
    result = run_trial(task, "nop", runtime=runtime)
    assert result.status == "passed", (result.error, result.notes, result.unsupported)
    odd = harbor_task(tmp_path / "odd", 'FROM x\nCMD ["nginx", "-g", "daemon off;"]\n',
                      "true", "true")
    result = run_trial(odd, "oracle", runtime=runtime)
    assert result.status == "passed"
    assert any("nginx" in n for n in result.notes)


SERVER_IMAGE = """FROM ubuntu:24.04
COPY entrypoint.sh /entrypoint.sh
COPY server.py /usr/local/bin/server.py
ENTRYPOINT ["/entrypoint.sh"]
WORKDIR /app
"""

SERVER_FILES = {
    "entrypoint.sh": "#!/bin/bash\nset -euo pipefail\n"
                     "python3 /usr/local/bin/server.py &\n"
                     "mkdir -p /app/ready\nexec \"$@\"\n",
    "server.py": "import http.server\n"
                 "http.server.HTTPServer(('', 80), http.server.BaseHTTPRequestHandler)"
                 ".serve_forever()\n",
}


def test_a_failing_trial_whose_entrypoint_server_did_not_start_is_not_the_agents(
        tmp_path: Path, runtime: WasiRuntime) -> None:
    # The image's entrypoint starts a server with `&` (which cannot listen in the
    # sandbox) and goes on; the tests reach the server, so they fail whatever the agent
    # does: the trial is environment_unsupported, naming the entrypoint and the error.
    task = harbor_task(tmp_path / "srv", SERVER_IMAGE, "true",
                       "curl -sf http://localhost/ >/dev/null", files=SERVER_FILES)
    result = run_trial(task, "oracle", runtime=runtime)
    assert result.status == "environment_unsupported", (result.status, result.notes)
    assert any("/entrypoint.sh" in u and "Errno" in u for u in result.unsupported)
    # the rest of the entrypoint ran (the job did not stop the script), so a test that
    # does not need the server passes, and a pass stands
    ok = harbor_task(tmp_path / "ok", SERVER_IMAGE, "true", "test -d /app/ready",
                     files=SERVER_FILES)
    result = run_trial(ok, "oracle", runtime=runtime)
    assert result.status == "passed", (result.status, result.notes, result.unsupported)
    assert any("reported an error" in n for n in result.notes)


def test_docker_image_without_dockerfile_is_unsupported(tmp_path: Path,
                                                       runtime: WasiRuntime) -> None:
    task = harbor_task(tmp_path / "img", None, "true", "true",
                       toml='[environment]\ndocker_image = "ghcr.io/acme/tool:1.2"\n')
    result = run_trial(task, "oracle", runtime=runtime)
    assert result.status == "environment_unsupported"
    assert any("ghcr.io/acme/tool:1.2" in u for u in result.unsupported)


@pytest.mark.parametrize("base, os_id", [("ubuntu:22.04", "ubuntu"),
                                         ("python:3.12-slim", "debian")])
def test_the_base_image_says_what_it_is(tmp_path: Path, runtime: WasiRuntime, base: str,
                                        os_id: str) -> None:
    task = harbor_task(tmp_path / "os", f"FROM {base}\nWORKDIR /app\n",
                       ". /etc/os-release && echo $ID > /app/id.txt && "
                       "cut -d: -f1 /etc/passwd > /app/users.txt && whoami >> /app/users.txt",
                       f"grep -qx {os_id} /app/id.txt && test \"$(sort -u /app/users.txt)\" "
                       "= root")
    result = run_trial(task, "oracle", runtime=runtime)
    assert result.status == "passed", (result.agent_output, result.verifier_output)
    if os_id == "ubuntu":
        image, *_ = build_image(load_task(task), runtime)
        assert 'VERSION_ID="22.04"' in image.read_text("/etc/os-release")
