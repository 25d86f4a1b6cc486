"""What of a task's Dockerfile can be honoured without Docker.

The environment is built from the instructions that have a meaning over a namespace:
``WORKDIR``, ``COPY``/``ADD`` of build-context files (or of an earlier stage's tree with
``--from``, or of a heredoc), ``ENV``, ``ARG`` (their defaults: there are no build
arguments) and ``RUN`` (heredocs too; run by the oanix shell later, with the Debian
stand-ins of ``standins``). A second ``FROM`` starts a new stage; the last stage is the
image. ``USER``, ``ENTRYPOINT`` and ``CMD`` are recorded (the runner starts the latter two
when the shell can run them). Instructions about the image's runtime (``EXPOSE``,
``LABEL``, ``SHELL``, ``HEALTHCHECK``, ``STOPSIGNAL``, ``VOLUME``, ``MAINTAINER``,
``ONBUILD``) change nothing a task's agent or verifier can observe here and are ignored.
Anything else is reported, line and all, as unsupported.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

import attrs

from .. import paths
from ..values import load_json

__all__ = ["Copy", "DockerfilePlan", "Instruction", "Stage", "parse_dockerfile"]

_IGNORED = frozenset({"EXPOSE", "LABEL", "SHELL", "HEALTHCHECK", "STOPSIGNAL", "VOLUME",
                      "MAINTAINER", "ONBUILD"})
_KEEP_ALIVE = frozenset({"sleep infinity", "tail -f /dev/null", "/bin/bash", "/bin/sh",
                         "bash -l", "/bin/bash -l"})
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_]\w*)\2")
_VAR = re.compile(r"\$(?:\{(\w+)(?::-([^}]*))?\}|(\w+))")


@attrs.frozen
class Instruction:
    """One logical instruction: its 1-based first line number, keyword and argument text."""

    line: int
    keyword: str
    args: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.keyword} {self.args}"


@attrs.frozen
class Copy:
    """Copy ``sources`` to ``dest`` (made absolute with the WORKDIR at that point):
    from the build context, from stage ``from_stage`` (an index into the plan's stages),
    or, with ``content``, a heredoc's text to the file ``dest``."""

    sources: tuple[str, ...]
    dest: str
    from_stage: int | None = None
    content: str | None = None


RunStep = tuple[str, str, str, tuple[tuple[str, str], ...]]


@attrs.frozen
class Stage:
    """One build stage: its base (an image, or ``stage:N`` for an earlier stage), its
    steps (``Copy`` values and ``("RUN", command, workdir, env)`` tuples) and its final
    WORKDIR, ENV, USER, ENTRYPOINT and CMD (shell command lines)."""

    name: str | None
    base: str | None
    steps: tuple[Copy | RunStep, ...]
    workdir: str
    env: tuple[tuple[str, str], ...]
    user: str | None = None
    entrypoint: str | None = None
    cmd: str | None = None


@attrs.frozen
class DockerfilePlan:
    """The steps to build a task environment, in Dockerfile order.

    ``stages`` are every stage, the last being the image; ``steps``, ``workdir``, ``env``,
    ``user``, ``entrypoint`` and ``cmd`` are the last stage's; ``base_image`` is the
    image the last stage starts from (through earlier stages); ``unsupported`` lists what
    cannot be honoured.
    """

    workdir: str
    env: tuple[tuple[str, str], ...]
    steps: tuple[Copy | RunStep, ...]
    unsupported: tuple[str, ...]
    base_image: str | None
    stages: tuple[Stage, ...] = ()
    user: str | None = None
    entrypoint: str | None = None
    cmd: str | None = None

    @property
    def start_command(self) -> str | None:
        """The shell line ENTRYPOINT and CMD start, or None (none, or a mere keep-alive
        such as ``bash`` or ``sleep infinity``)."""
        line = " ".join(p for p in (self.entrypoint, self.cmd) if p)
        if not line:
            return None
        words = line.split()
        name = words[0].rsplit("/", 1)[-1]
        if (name in ("bash", "sh") and len(words) == 1) or line in _KEEP_ALIVE:
            return None
        if words[0].startswith(("/bin/", "/usr/bin/", "/usr/local/bin/")):
            line = name + line[len(words[0]):]  # the shell finds its commands by name
        return line


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction) pairs; a heredoc's body follows its instruction's
    first line after a newline, terminator included."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        raw = lines[n]
        n += 1
        line = raw.rstrip()
        if (not buf and _HEREDOC.search(line) and not line.endswith("\\")
                and not line.lstrip().startswith("#")):
            start = n
            body = [line]
            for m in _HEREDOC.finditer(line):
                while n < len(lines):
                    n += 1
                    body.append(lines[n - 1])
                    end = lines[n - 1].lstrip("\t") if m.group(1) else lines[n - 1]
                    if end == m.group(3):
                        break
            out.append((start, "\n".join(body)))
            continue
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # comments inside a continuation are dropped, as Docker does
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        out.append((start, " ".join(part.strip() for part in buf)))
        buf = []
    if buf:
        out.append((start, " ".join(part.strip() for part in buf)))
    return out


def _expand(text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        default = m.group(2)
        value = env.get(name)
        return value if value is not None else (default or "")

    return _VAR.sub(sub, text)


def _pairs(args: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """``ENV a=1 b="two words"`` or the legacy ``ENV name value with spaces``."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return [(words[0], _expand(" ".join(words[1:]), env))]
    return [(k, _expand(v, env)) for k, _, v in (w.partition("=") for w in words)]


def _join(workdir: str, path: str) -> str:
    """``path`` made absolute against ``workdir``, normalised, keeping a final ``/``."""
    full = path if path.startswith("/") else (workdir.rstrip("/") or "") + "/" + path
    norm = paths.normalize(full)
    return norm + "/" if full.endswith("/") and norm != "/" else norm


def _exec_form(text: str) -> str:
    """A JSON exec form as a shell line; a shell form as it is."""
    if text.startswith("["):
        try:
            return shlex.join(_json_list(text))
        except ValueError:
            return text
    return text


def _heredoc_run(rest: str) -> str:
    """``RUN <<EOF`` runs the body as a script; ``RUN cmd <<EOF`` is a shell heredoc."""
    first, _, body = rest.partition("\n")
    m = _HEREDOC.fullmatch(first.strip())
    if m is None:
        return rest
    lines = body.split("\n")
    return "\n".join(lines[:-1] if lines and lines[-1].strip() == m.group(3) else lines)


class _Builder:
    """The state of one parse: the stages so far and the current one's."""

    def __init__(self) -> None:
        self.stages: list[Stage] = []
        self.names: dict[str, int] = {}
        self.global_args: dict[str, str] = {}
        self.unsupported: list[str] = []
        self.started = False
        self.reset(None, None)

    def reset(self, name: str | None, base: str | None) -> None:
        self.name, self.base = name, base
        self.workdir = "/"
        self.env: dict[str, str] = {}
        self.args: dict[str, str] = {}
        self.steps: list[Copy | RunStep] = []
        self.user: str | None = None
        self.entrypoint: str | None = None
        self.cmd: str | None = None
        if base is not None and base.startswith("stage:"):
            prev = self.stages[int(base[6:])]
            self.workdir, self.env = prev.workdir, dict(prev.env)
            self.user, self.entrypoint, self.cmd = prev.user, prev.entrypoint, prev.cmd

    def close(self) -> None:
        if self.started:
            self.stages.append(Stage(self.name, self.base, tuple(self.steps), self.workdir,
                                     tuple(sorted(self.env.items())), self.user,
                                     self.entrypoint, self.cmd))

    def from_(self, ins: Instruction) -> None:
        words = _expand(ins.args, self.global_args).split()
        words = [w for w in words if not w.startswith("--platform")]
        image = words[0] if words else None
        name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
        self.close()
        self.started = True
        if image in self.names:
            image = f"stage:{self.names[image]}"
        self.reset(name, image)
        if name is not None:
            self.names[name] = len(self.stages)

    def stage_index(self, ref: str) -> int | None:
        if ref in self.names:
            return self.names[ref]
        if ref.isdigit() and int(ref) < len(self.stages):
            return int(ref)
        return None


def parse_dockerfile(text: str) -> DockerfilePlan:
    """Read a Dockerfile into a plan; never raises for content, it reports it."""
    b = _Builder()
    for line, logical in _logical_lines(text):
        keyword, _, rest = logical.strip().partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        ins = Instruction(line, keyword, rest)
        scope = {**b.args, **b.env}
        if keyword == "FROM":
            b.from_(ins)
            continue
        if keyword == "ARG":
            for word in shlex.split(rest):
                name, eq, default = word.partition("=")
                if not b.started:
                    b.global_args[name] = default
                elif eq:
                    b.args[name] = _expand(default, scope)
                else:
                    b.args[name] = b.global_args.get(name, b.args.get(name, ""))
            continue
        if keyword in _IGNORED:
            continue
        if keyword == "USER":
            b.user = _expand(rest, scope)
        elif keyword == "ENTRYPOINT":
            b.entrypoint, b.cmd = _exec_form(rest), None
        elif keyword == "CMD":
            b.cmd = _exec_form(rest)
        elif keyword == "WORKDIR":
            b.workdir = _join(b.workdir, _expand(rest, scope))
        elif keyword == "ENV":
            try:
                b.env.update(_pairs(rest, scope))
            except ValueError as e:
                b.unsupported.append(f"{ins} ({e})")
        elif keyword in ("COPY", "ADD"):
            copy = _parse_copy(ins, scope, b.workdir, b.stage_index)
            if isinstance(copy, str):
                b.unsupported.append(copy)
            else:
                b.steps.append(copy)
        elif keyword == "RUN":
            if rest.startswith("--"):
                b.unsupported.append(f"{ins} (RUN options are not supported)")
                continue
            command = _heredoc_run(rest)
            if rest.startswith("["):
                try:
                    command = shlex.join(_json_list(rest))
                except ValueError:
                    b.unsupported.append(f"{ins} (malformed exec form)")
                    continue
            b.steps.append(("RUN", command, b.workdir,
                            tuple(sorted({**b.args, **b.env}.items()))))
        else:
            b.unsupported.append(f"{ins} (unknown instruction)")
    b.started = True
    b.close()
    last = b.stages[-1]
    base = last.base
    while base is not None and base.startswith("stage:"):
        base = b.stages[int(base[6:])].base
    return DockerfilePlan(last.workdir, last.env, last.steps, tuple(b.unsupported), base,
                          tuple(b.stages), last.user, last.entrypoint, last.cmd)


def _json_list(text: str) -> list[str]:
    """The exec form's JSON list of strings; ValueError (InvalidContent) if it is not."""
    value = load_json(text, "exec form")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("not a list of strings")
    return value


def _parse_copy(ins: Instruction, scope: dict[str, str], workdir: str,
                stage_index: Callable[[str], int | None]) -> Copy | str:
    first, nl, body = ins.args.partition("\n")
    if nl:  # COPY <<EOF /path: the heredoc's text is the file
        words = shlex.split(_expand(first, scope))
        m = _HEREDOC.fullmatch(words[0]) if words else None
        if m is None or len(words) != 2:
            return f"line {ins.line}: {ins.keyword} {first} (only one heredoc to one path)"
        lines = body.split("\n")
        text = "\n".join(lines[:-1]) + "\n" if lines[-1:] == [m.group(3)] else body
        if not m.group(2):  # an unquoted terminator expands variables
            text = _expand(text, scope)
        return Copy((), _join(workdir, words[1]), content=text)
    words = shlex.split(_expand(ins.args, scope)) if not ins.args.startswith("[") else []
    if ins.args.startswith("["):
        try:
            words = _json_list(ins.args)
        except ValueError:
            return f"{ins} (malformed exec form)"
    flags = [w for w in words if w.startswith("--")]
    words = [w for w in words if not w.startswith("--")]
    from_stage: int | None = None
    for flag in flags:
        if flag.startswith("--from"):
            from_stage = stage_index(flag.partition("=")[2])
            if from_stage is None:
                return f"{ins} (copying from an image with --from is not supported)"
            continue
        if not flag.startswith(("--chown", "--chmod", "--link")):
            return f"{ins} (option {flag} is not supported)"
    if len(words) < 2:
        return f"{ins} (needs a source and a destination)"
    sources, dest = words[:-1], words[-1]
    for src in sources:
        if "://" in src:
            return f"{ins} (fetching a URL is not supported: no network at build time)"
        if ins.keyword == "ADD" and src.endswith((".tar", ".tar.gz", ".tgz", ".tar.xz")):
            return f"{ins} (ADD of an archive is not supported)"
    return Copy(tuple(sources), _join(workdir, dest), from_stage)
