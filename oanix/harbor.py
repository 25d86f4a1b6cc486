"""oanix as an environment of Harbor: tasks graded by Harbor's own trial loop, no Docker.

    harbor run -p TASK_DIR -a oracle -e oanix.harbor:OanixEnvironment

``start`` builds the task's ``environment/`` with the task runner's builder (the
Dockerfile as far as it can be honoured, the Debian stand-ins) and starts its
ENTRYPOINT/CMD when the shell can run it (a warning otherwise); an environment that
cannot be built raises, naming what is missing. Every ``exec`` runs the command with
oanix's shell over one namespace (a copy-on-write layer over the image), with the
installers and the sandbox's pytest of the task runner's verifier, under the timeout.
Files move between the host and the namespace with ``upload_*``/``download_*``.
Capabilities: no GPUs or TPUs, nothing mounted from the host, no network whatever the
policy (so ``no-network`` is honoured; a task that needs the internet fails its commands).
``user`` is accepted and ignored: the namespace has one user.

Needs ``pip install 'oanix[harbor]'`` (Python >= 3.12).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from harbor.environments.base import BaseEnvironment, ExecResult
from harbor.environments.capabilities import EnvironmentCapabilities

from . import paths
from .env import Limits, OanixEnv
from .errors import OanixError
from .fs.cow import CowFs
from .fs.mem import MemFs
from .tasks.formats import TaskSpec, read_compose
from .tasks.runner import build_image, environment_problems, start_entrypoint
from .tasks.verifier import install_verifier_tools
from .wasi import WasiRuntime

__all__ = ["OanixEnvironment"]

_DIRS = ("/logs/agent", "/logs/verifier", "/logs/artifacts", "/tests", "/solution")


class OanixEnvironment(BaseEnvironment):
    """A Harbor environment whose container is an oanix namespace.

    Locking: Harbor drives one trial's environment from one event loop; each ``exec``
    runs in a worker thread (``OanixEnv.exec`` may be called from several threads).
    """

    _env: OanixEnv | None = None
    _runtime: WasiRuntime | None = None

    @staticmethod
    def type() -> str:
        return "oanix"

    @property
    def capabilities(self) -> Any:
        return EnvironmentCapabilities(disable_internet=True)

    def _spec(self) -> TaskSpec:
        env_dir = Path(self.environment_dir)
        dockerfile = env_dir / "Dockerfile"
        compose = env_dir / "docker-compose.yaml"
        services: tuple[str, ...] = ()
        if compose.is_file():
            services = read_compose(compose).get("services", ())
        return TaskSpec(
            name=str(self.environment_name), path=env_dir.parent, format="harbor",
            instruction="", agent_timeout_sec=1.0, verifier_timeout_sec=1.0,
            build_context=env_dir, dockerfile=dockerfile if dockerfile.is_file() else None,
            solution=None, test_script=None, tests_dir=None,
            docker_image=getattr(self.task_env_config, "docker_image", None) or None,
            services=services)

    def _validate_definition(self) -> None:
        problems = environment_problems(self._spec())
        if problems:
            raise RuntimeError("oanix cannot provide this environment: "
                               + "; ".join(problems))

    async def start(self, force_build: bool) -> None:
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        spec = self._spec()
        runtime = WasiRuntime()
        try:
            image, workdir, env_vars, unsupported = build_image(spec, runtime)
        except BaseException:
            runtime.close()
            raise
        if unsupported:
            runtime.close()
            raise RuntimeError("oanix cannot build this environment: "
                               + "; ".join(unsupported))
        for d in _DIRS:
            image.makedirs(d, exist_ok=True)
        dev = MemFs()
        dev.write_bytes("/null", b"")
        logs = MemFs()  # Harbor's /logs: plain directories it reads back
        for d in _DIRS:
            if d.startswith("/logs/"):
                logs.makedirs(d[len("/logs"):], exist_ok=True)
        workdir = getattr(self.task_env_config, "workdir", None) or workdir
        image.makedirs(workdir, exist_ok=True)
        task_env = dict(getattr(self.task_env_config, "env", None) or {})
        env_vars = {"HOME": "/root", **env_vars, **task_env}
        workspace = CowFs(image)
        for note in start_entrypoint(spec, workspace, workdir, env_vars, runtime):
            self.logger.warning(note)
        env = OanixEnv(workspace=workspace, workspace_at="/", env=env_vars, cwd=workdir,
                       runtime=runtime, limits=Limits(memory_limit=1 << 30),
                       mounts={"/logs": logs, "/dev": dev})
        install_verifier_tools(env)  # as the runner's verifier has them
        self._env, self._runtime = env, runtime

    def _live(self) -> OanixEnv:
        if self._env is None:
            raise RuntimeError("the oanix environment is not started")
        return self._env

    async def stop(self, delete: bool) -> None:
        env, runtime = self._env, self._runtime
        self._env = self._runtime = None
        if env is not None:
            env.close()
        if runtime is not None:
            runtime.close()

    async def exec(self, command: str, cwd: str | None = None,
                   env: dict[str, str] | None = None, timeout_sec: int | None = None,
                   user: str | int | None = None) -> Any:
        live = self._live()
        merged = self._merge_env(env) or {}
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["res"] = live.exec(command, env=merged, cwd=cwd)
            except OanixError as e:
                box["error"] = f"{type(e).__name__}: {e}"
            finally:
                done.set()

        worker = threading.Thread(target=run, daemon=True, name="oanix-harbor-exec")
        worker.start()
        finished = await asyncio.to_thread(done.wait, timeout_sec)
        if not finished:  # a thread cannot be killed: it is abandoned, as Docker's is
            raise RuntimeError(f"Command timed out after {timeout_sec} seconds")
        if "error" in box:
            return ExecResult(stdout="", stderr=box["error"] + "\n", return_code=126)
        res = box["res"]
        return ExecResult(stdout=res.stdout_text, stderr=res.stderr_text,
                          return_code=res.exit_code)

    async def upload_file(self, source_path: Path | str, target_path: str) -> None:
        ns = self._live().namespace
        target = self._abs(target_path)
        ns.makedirs(paths.dirname(target), exist_ok=True)
        ns.write_bytes(target, Path(source_path).read_bytes())

    async def upload_dir(self, source_dir: Path | str, target_dir: str) -> None:
        ns = self._live().namespace
        root = Path(source_dir)
        target = self._abs(target_dir)
        ns.makedirs(target, exist_ok=True)
        for host in sorted(root.rglob("*")):
            if host.is_symlink():
                continue
            dest = paths.join(target, host.relative_to(root).as_posix())
            if host.is_dir():
                ns.makedirs(dest, exist_ok=True)
            elif host.is_file():
                ns.makedirs(paths.dirname(dest), exist_ok=True)
                ns.write_bytes(dest, host.read_bytes())

    async def download_file(self, source_path: str, target_path: Path | str) -> None:
        data = self._live().namespace.read_bytes(self._abs(source_path))
        target = Path(target_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    async def download_dir(self, source_dir: str, target_dir: Path | str) -> None:
        ns = self._live().namespace
        source = self._abs(source_dir)
        root = Path(target_dir)
        root.mkdir(parents=True, exist_ok=True)
        for top, dirs, files in ns.walk(source):
            rel = top[len(source):].lstrip("/")
            here = root / rel if rel else root
            here.mkdir(parents=True, exist_ok=True)
            for d in dirs:
                (here / d).mkdir(exist_ok=True)
            for f in files:
                out = here / f
                if out.is_symlink():
                    out.unlink()
                out.write_bytes(ns.read_bytes(paths.join(top, f)))

    def _abs(self, path: str) -> str:
        return paths.normalize(path if path.startswith("/")
                               else paths.join(self._live().cwd, path))
