"""Making host Python packages importable in the sandbox, for the verifier's pytest.

A task's ``test.sh`` asks for pytest and plugins (``uvx -w pytest==8.4.1 -w
pytest-json-ctrf==0.3.5 pytest ...``). There is no network, so each requested
distribution and its dependencies are taken from the host's installed packages, if they
are pure Python; a compiled one is reported as unsupported. The files are copied once
into a content-addressed site directory that the verifier mounts read-only and puts on
the guest's ``PYTHONPATH``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import attrs

__all__ = ["SANDBOX_PYTHON", "Site", "build_site", "python_version_note", "requirement_name"]

_COMPILED = (".so", ".pyd", ".dylib")
# The sandbox interpreter: CPython 3.12 on wasm32-wasi.
_MARKER_ENV = {"python_version": "3.12", "python_full_version": "3.12.0",
               "sys_platform": "wasi", "platform_system": "", "os_name": "posix",
               "platform_machine": "wasm32", "implementation_name": "cpython",
               "platform_python_implementation": "CPython", "extra": ""}


SANDBOX_PYTHON = _MARKER_ENV["python_version"]


def python_version_note(asked: str) -> str | None:
    """``"3.13"`` (``uvx -p``/``uv run --python``'s value) -> ``"Python 3.13 asked, 3.12
    used"``; None when the sandbox's Python satisfies it, or it names no version."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    m = re.fullmatch(r"(?:c?python)?[@-]?(\d+(?:\.\d+)*)", asked.strip(), re.IGNORECASE)
    if m:
        parts = m.group(1).split(".")
        ours = _MARKER_ENV["python_full_version"].split(".")
        return None if parts == ours[:len(parts)] else \
            f"Python {m.group(1)} asked, {SANDBOX_PYTHON} used"
    try:
        spec = SpecifierSet(asked)
    except InvalidSpecifier:
        return None
    if not str(spec) or spec.contains(_MARKER_ENV["python_full_version"]):
        return None
    return f"Python {asked.strip()} asked, {SANDBOX_PYTHON} used"


@attrs.frozen
class Site:
    """A directory of pure-Python packages for the sandbox, and what could not go in it.

    ``notes`` are remarks (a pinned version differs from the host's); ``unsupported``
    lists requirements that cannot be honoured (not installed, compiled).
    """

    path: Path
    dists: tuple[str, ...]
    notes: tuple[str, ...]
    unsupported: tuple[str, ...]


def requirement_name(req: str) -> tuple[str, str | None]:
    """``"pytest==8.4.1"`` -> ``("pytest", "8.4.1")``; other specifiers keep no version."""
    m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(==\s*([^\s;,]+))?",
                 req)
    if not m:
        return req.strip(), None
    return m.group(1), m.group(3)


def _closure(requirements: Iterable[str]) -> tuple[list[md.Distribution], list[str],
                                                   list[str]]:
    from packaging.requirements import InvalidRequirement, Requirement

    found: dict[str, md.Distribution] = {}
    notes: list[str] = []
    unsupported: list[str] = []
    queue = list(requirements)
    while queue:
        req = queue.pop(0)
        name, pinned = requirement_name(req)
        key = re.sub(r"[-_.]+", "-", name).lower()
        try:
            dist = found.get(key) or md.distribution(name)
        except md.PackageNotFoundError:
            unsupported.append(f"{name}: not installed on the host, and there is no network "
                               "in the sandbox")
            continue
        note = f"{name}=={pinned} asked, {dist.version} used"
        if pinned and dist.version != pinned and note not in notes:
            notes.append(note)
        if key in found:
            continue
        files = dist.files or []
        if any(str(f).endswith(_COMPILED) for f in files):
            unsupported.append(f"{name}: has compiled extensions; only pure-Python packages "
                               "run in the sandbox")
            continue
        found[key] = dist
        for dep in dist.requires or []:
            try:
                r = Requirement(dep)
            except InvalidRequirement:
                continue
            if r.marker is not None and not r.marker.evaluate(_MARKER_ENV):
                continue
            queue.append(r.name)
    return list(found.values()), notes, unsupported


def _cache_root() -> Path:
    base = os.environ.get("OANIX_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "oanix")
    return Path(base) / "sites"


def build_site(requirements: Iterable[str], cache: Path | None = None) -> Site:
    """The site directory holding ``requirements`` and their dependencies (built once)."""
    dists, notes, unsupported = _closure(requirements)
    ids = sorted(f"{d.metadata['Name']}=={d.version}" for d in dists)
    key = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:20]
    root = (cache or _cache_root()) / key
    if not root.is_dir():
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root.parent))
        try:
            for dist in dists:
                _copy_dist(dist, tmp)
            os.replace(tmp, root)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not root.is_dir():  # not another process winning the race
                raise
    return Site(root, tuple(ids), tuple(notes), tuple(unsupported))


def _copy_dist(dist: md.Distribution, dest: Path) -> None:
    for f in dist.files or []:
        rel = Path(str(f))
        if rel.is_absolute() or ".." in rel.parts or "__pycache__" in rel.parts:
            continue  # scripts and data outside site-packages
        src = Path(str(dist.locate_file(f)))
        if not src.is_file() or src.suffix == ".pyc":
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
