#!/usr/bin/env python3
"""Build the WASI test fixtures: every src/*.c -> <name>.wasm (wasm32-wasi, preview1),
each linked with the shared lib/*.c (lib/follow_pwd.c: start in $PWD).

    python wasi_fixtures/build.py                    # rebuild *.wasm and manifest.json
    python wasi_fixtures/build.py --check            # rebuild in a temp dir and compare
    python wasi_fixtures/build.py --compiler clang   # force a compiler (zig | clang)

Compilers, in order of preference:

* zig, from the PyPI package ``ziglang``: ``<python> -m ziglang cc``. The
  interpreter is $OANIX_ZIG_PYTHON when set, else the one running this script.
  Zig's caches go to $OANIX_ZIG_CACHE (default ~/.cache/oanix-zig), never into
  the repository. The first build compiles wasi-libc and takes ~40 s.
* clang from Debian (packages clang lld wasi-libc libclang-rt-14-dev-wasm32),
  with ``--sysroot=/usr``.

``--check`` exit codes: 0 every output is byte-identical to the committed one;
1 some differ (they are listed); 2 the compiler recorded in manifest.json is
not available here (one-line reason on stderr).

Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
LIB = HERE / "lib"  # linked into every fixture
MANIFEST = HERE / "manifest.json"

TARGET = "--target=wasm32-wasi"
# Warnings do not change the output bytes. The explicit 1 MiB stack overrides
# the compilers' defaults (zig: 16 MiB, wasm-ld: 64 KiB), so a fixture's
# initial memory is ~1.1 MiB under either compiler and tests can set small
# store memory limits.
FLAGS = ["-O2", "-s", "-Wall", "-Wextra", "-Wl,-z,stack-size=1048576"]


class Unavailable(Exception):
    """The requested compiler cannot be run on this machine."""


@dataclass(frozen=True)
class Compiler:
    kind: str  # "zig" | "clang"
    ident: str  # name and exact version, recorded in the manifest
    argv: tuple[str, ...]  # command prefix up to (excluding) flags
    flags: tuple[str, ...]  # flags recorded in the manifest
    env: dict[str, str]

    def compile(self, source: Path, output: Path) -> None:
        shared = [str(p.relative_to(HERE)) for p in sorted(LIB.glob("*.c"))]
        cmd = [*self.argv, *self.flags, "-o", str(output), str(source.relative_to(HERE)),
               *shared]
        proc = subprocess.run(cmd, cwd=HERE, env=self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"build.py: compiling {source.name} failed: {' '.join(cmd)}")


def _zig_pythons() -> list[str]:
    cands = []
    env_py = os.environ.get("OANIX_ZIG_PYTHON")
    if env_py:
        cands.append(env_py)
    if importlib.util.find_spec("ziglang") is not None:
        cands.append(sys.executable)
    return cands


def find_zig() -> Compiler:
    cache = os.environ.get("OANIX_ZIG_CACHE") or str(Path.home() / ".cache" / "oanix-zig")
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=cache, ZIG_LOCAL_CACHE_DIR=cache)
    tried = []
    for py in _zig_pythons():
        try:
            proc = subprocess.run(
                [py, "-m", "ziglang", "version"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{py}: {exc}")
            continue
        if proc.returncode == 0 and proc.stdout.strip():
            version = proc.stdout.strip()
            return Compiler(
                kind="zig",
                ident=f"zig {version} (PyPI ziglang)",
                argv=(py, "-m", "ziglang", "cc"),
                flags=(TARGET, *FLAGS),
                env=env,
            )
        tried.append(f"{py}: ziglang not usable ({(proc.stderr or proc.stdout).strip()[:200]})")
    if not tried:
        tried.append("ziglang is not importable by this interpreter and OANIX_ZIG_PYTHON is unset")
    raise Unavailable("zig: " + "; ".join(tried))


def _dpkg_version(pkg: str) -> str | None:
    if shutil.which("dpkg-query") is None:
        return None
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True
    )
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def find_clang() -> Compiler:
    clang = shutil.which("clang")
    if clang is None:
        raise Unavailable(
            "clang: not on PATH (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)"
        )
    if not Path("/usr/lib/wasm32-wasi/libc.a").exists():
        raise Unavailable("clang: wasi-libc sysroot missing (apt-get install wasi-libc)")
    proc = subprocess.run([clang, "--version"], capture_output=True, text=True)
    version = proc.stdout.splitlines()[0].strip() if proc.stdout else "clang (unknown version)"
    # The libc is linked in, so its version is part of what makes the bytes.
    libc = _dpkg_version("wasi-libc")
    ident = f"{version}; wasi-libc {libc}" if libc else version
    return Compiler(
        kind="clang",
        ident=ident,
        argv=(clang,),
        flags=(TARGET, "--sysroot=/usr", *FLAGS),
        env=dict(os.environ),
    )


FINDERS = {"zig": find_zig, "clang": find_clang}


def pick_compiler(forced: str | None) -> Compiler:
    if forced:
        return FINDERS[forced]()
    reasons = []
    for finder in FINDERS.values():
        try:
            return finder()
        except Unavailable as exc:
            reasons.append(str(exc))
    raise Unavailable("no compiler available: " + "; ".join(reasons))


def sources() -> list[Path]:
    return sorted(SRC.glob("*.c"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_all(comp: Compiler, outdir: Path) -> dict[str, Path]:
    built = {}
    for src in sources():
        out = outdir / f"{src.stem}.wasm"
        comp.compile(src, out)
        built[out.name] = out
    return built


def manifest_for(comp: Compiler, built: dict[str, Path]) -> dict[str, object]:
    return {
        "compiler": comp.ident,
        "flags": list(comp.flags),
        "files": {
            name: {"source": f"src/{Path(name).stem}.c", "sha256": sha256(path)}
            for name, path in sorted(built.items())
        },
    }


def cmd_build(forced: str | None) -> int:
    try:
        comp = pick_compiler(forced)
    except Unavailable as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 2
    print(f"compiler: {comp.ident}")
    with tempfile.TemporaryDirectory(prefix="oanix-wasi-") as tmp:
        built = build_all(comp, Path(tmp))
        manifest = manifest_for(comp, built)
        for name, path in built.items():
            shutil.copyfile(path, HERE / name)
            print(f"  {name:12} {path.stat().st_size:7} bytes")
    # Outputs whose source is gone would otherwise linger unlisted.
    for stale in sorted(set(p.name for p in HERE.glob("*.wasm")) - set(built)):
        (HERE / stale).unlink()
        print(f"  removed stale {stale}")
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {MANIFEST.relative_to(HERE.parent)}")
    return 0


def cmd_check(forced: str | None) -> int:
    try:
        manifest = json.loads(MANIFEST.read_text())
        recorded = manifest["compiler"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"build.py --check: cannot read {MANIFEST.name}: {exc}", file=sys.stderr)
        return 1
    kind = forced or ("zig" if recorded.startswith("zig ") else "clang")
    try:
        comp = FINDERS[kind]()
    except Unavailable as exc:
        print(
            f"build.py --check: manifest compiler {recorded!r} unavailable: {exc}", file=sys.stderr
        )
        return 2
    if comp.ident != recorded:
        print(
            f"build.py --check: manifest compiler {recorded!r} unavailable: found {comp.ident!r}",
            file=sys.stderr,
        )
        return 2

    diffs = []
    if list(comp.flags) != manifest.get("flags"):
        diffs.append(f"manifest.json (flags {manifest.get('flags')} != {list(comp.flags)})")
    recorded_files = manifest.get("files", {})
    with tempfile.TemporaryDirectory(prefix="oanix-wasi-check-") as tmp:
        built = build_all(comp, Path(tmp))
        for name in sorted(set(built) | set(recorded_files)):
            committed = HERE / name
            if name not in built:
                diffs.append(f"{name} (in manifest, no source)")
            elif name not in recorded_files:
                diffs.append(f"{name} (not in manifest)")
            elif not committed.exists():
                diffs.append(f"{name} (missing)")
            elif committed.read_bytes() != built[name].read_bytes():
                diffs.append(f"{name} (rebuild differs)")
            elif recorded_files[name].get("sha256") != sha256(committed):
                diffs.append(f"{name} (manifest sha256 stale)")
    if diffs:
        print("build.py --check: differing files:")
        for d in diffs:
            print(f"  {d}")
        return 1
    print(f"build.py --check: {len(built)} files identical ({comp.ident})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare")
    ap.add_argument("--compiler", choices=sorted(FINDERS), help="force a compiler")
    args = ap.parse_args(argv)
    return cmd_check(args.compiler) if args.check else cmd_build(args.compiler)


if __name__ == "__main__":
    sys.exit(main())
