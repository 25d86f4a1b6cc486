"""What of a task's Dockerfile can be honoured without Docker.

The environment is built from the instructions that have a meaning over a namespace:
``WORKDIR``, ``COPY``/``ADD`` of build-context files, ``ENV``, ``ARG`` and ``RUN`` (run by
the oanix shell later; a command it cannot run makes the environment unsupported then).
Instructions about the image's runtime (``FROM``, ``CMD``, ``ENTRYPOINT``, ``EXPOSE``,
``LABEL``, ``USER``, ``SHELL``, ``HEALTHCHECK``, ``STOPSIGNAL``, ``VOLUME``,
``MAINTAINER``, ``ONBUILD``) change nothing a task's agent or verifier can observe here and
are ignored. Anything else is reported, line and all, as unsupported.
"""

from __future__ import annotations

import re
import shlex

import attrs

from ..values import load_json

__all__ = ["Copy", "DockerfilePlan", "Instruction", "parse_dockerfile"]

_IGNORED = frozenset({"FROM", "CMD", "ENTRYPOINT", "EXPOSE", "LABEL", "USER", "SHELL",
                      "HEALTHCHECK", "STOPSIGNAL", "VOLUME", "MAINTAINER", "ONBUILD"})
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
    """Copy build-context ``sources`` to ``dest`` (relative to the WORKDIR at that point)."""

    sources: tuple[str, ...]
    dest: str


@attrs.frozen
class DockerfilePlan:
    """The steps to build a task environment, in Dockerfile order.

    ``steps`` holds ``Copy`` values, ``("RUN", command, workdir, env)`` tuples and nothing
    else; ``workdir`` and ``env`` are their final values; ``unsupported`` lists what
    cannot be honoured.
    """

    workdir: str
    env: tuple[tuple[str, str], ...]
    steps: tuple[Copy | tuple[str, str, str, tuple[tuple[str, str], ...]], ...]
    unsupported: tuple[str, ...]
    base_image: str | None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
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
    if path.startswith("/"):
        return path
    return (workdir.rstrip("/") or "") + "/" + path


def parse_dockerfile(text: str) -> DockerfilePlan:
    """Read a Dockerfile into a plan; never raises for content, it reports it."""
    workdir = "/"
    env: dict[str, str] = {}
    args: dict[str, str] = {}
    steps: list[Copy | tuple[str, str, str, tuple[tuple[str, str], ...]]] = []
    unsupported: list[str] = []
    base: str | None = None
    for line, logical in _logical_lines(text):
        keyword, _, rest = logical.strip().partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        ins = Instruction(line, keyword, rest)
        scope = {**args, **env}
        if keyword == "FROM":
            base = rest.split()[0] if rest else None
            continue
        if keyword in _IGNORED:
            continue
        if keyword == "WORKDIR":
            workdir = _join(workdir, _expand(rest, scope))
        elif keyword == "ENV":
            try:
                env.update(_pairs(rest, scope))
            except ValueError as e:
                unsupported.append(f"{ins} ({e})")
        elif keyword == "ARG":
            name, _, default = rest.partition("=")
            args.setdefault(name.strip(), default.strip().strip('"'))
        elif keyword in ("COPY", "ADD"):
            copy = _parse_copy(ins, scope, workdir)
            if isinstance(copy, str):
                unsupported.append(copy)
            else:
                steps.append(copy)
        elif keyword == "RUN":
            if rest.startswith("--"):
                unsupported.append(f"{ins} (RUN options are not supported)")
                continue
            command = rest
            if rest.startswith("["):
                try:
                    command = shlex.join(_json_list(rest))
                except ValueError:
                    unsupported.append(f"{ins} (malformed exec form)")
                    continue
            steps.append(("RUN", command, workdir, tuple(sorted(env.items()))))
        else:
            unsupported.append(f"{ins} (unknown instruction)")
    return DockerfilePlan(workdir, tuple(sorted(env.items())), tuple(steps),
                          tuple(unsupported), base)


def _json_list(text: str) -> list[str]:
    """The exec form's JSON list of strings; ValueError (InvalidContent) if it is not."""
    value = load_json(text, "exec form")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("not a list of strings")
    return value


def _parse_copy(ins: Instruction, scope: dict[str, str], workdir: str) -> Copy | str:
    words = shlex.split(_expand(ins.args, scope)) if not ins.args.startswith("[") else []
    if ins.args.startswith("["):
        try:
            words = _json_list(ins.args)
        except ValueError:
            return f"{ins} (malformed exec form)"
    flags = [w for w in words if w.startswith("--")]
    words = [w for w in words if not w.startswith("--")]
    for flag in flags:
        if flag.startswith("--from"):
            return f"{ins} (copying from another build stage or image is not supported)"
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
    return Copy(tuple(sources), _join(workdir, dest))
