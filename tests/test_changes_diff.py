"""``unified_diff`` / ``CowFs.diff()`` print what GNU ``diff -u`` prints for each file."""

from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path

import pytest

from oanix.changes import Changes, unified_diff
from oanix.fs.cow import CowFs
from oanix.fs.mem import MemFs

OLD = "".join(f"line {i}\n" for i in range(1, 31))
NEW = OLD.replace("line 5\n", "line five\n").replace("line 20\n", "") + "line 31\n"
CASES: dict[str, tuple[bytes | None, bytes | None]] = {
    "/edited.txt": (OLD.encode(), NEW.encode()),
    "/src/added.py": (None, b"print('hi')\nprint('there')\n"),
    "/gone.txt": (b"bye\nnow\n", None),
    "/no-eol.txt": (b"a\nb\nc", b"a\nB\nc"),
    "/eol-added.txt": (b"x", b"x\n"),
    "/crlf.txt": (b"one\r\ntwo\r\n", b"one\r\ntwo!\r\n"),
    "/form\x0cfeed.txt": (b"a\x0cb\nc\n", b"a\x0cB\nc\n"),
    "/utf8.txt": ("caf\u00e9\n".encode(), "caf\u00e8\n".encode()),
}


def _trees() -> tuple[MemFs, CowFs]:
    base = MemFs()
    base.mkdir("/src")
    for path, (old, _) in CASES.items():
        if old is not None:
            base.write_bytes(path, old)
    cow = CowFs(base)
    for path, (_, new) in CASES.items():
        if new is None:
            cow.remove(path)
        else:
            cow.write_bytes(path, new)
    return base, cow


def _gnu_diff(tmp: Path, name: str, old: bytes | None, new: bytes | None) -> str:
    args = []
    for side, data in (("a", old), ("b", new)):
        if data is None:
            args += ["--label", "/dev/null", "/dev/null"]
        else:
            host = tmp / side / name
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_bytes(data)
            args += ["--label", f"{side}/{name}", str(host)]
    res = subprocess.run(["diff", "-u", args[0], args[1], args[3], args[4], args[2],
                          args[5]], capture_output=True, check=False)
    assert res.returncode in (0, 1), res.stderr
    return res.stdout.decode("utf-8")


@pytest.mark.skipif(shutil.which("diff") is None, reason="needs GNU diff")
def test_the_diff_is_what_diff_u_prints_file_by_file(tmp_path: Path) -> None:
    _, cow = _trees()
    expected = "".join(_gnu_diff(tmp_path, path.lstrip("/"), *CASES[path])
                       for path in sorted(CASES))
    assert cow.diff() == expected
    assert "\\ No newline at end of file" in expected and "--- /dev/null" in expected


def test_the_diff_is_difflibs_with_the_files_labelled() -> None:
    base, cow = _trees()
    old, new = CASES["/edited.txt"]
    assert old is not None and new is not None
    lines = difflib.unified_diff(old.decode().splitlines(keepends=True),
                                 new.decode().splitlines(keepends=True),
                                 "a/edited.txt", "b/edited.txt", n=1)
    only = Changes(modified=("/edited.txt",))
    assert unified_diff(base, cow, only, context=1) == "".join(lines)


def test_binary_files_are_named_and_directories_and_empty_files_have_no_lines() -> None:
    base = MemFs()
    base.write_bytes("/blob", b"\x00\x01")
    base.write_bytes("/latin1.txt", b"caf\xe9\n")
    base.mkdir("/old")
    cow = CowFs(base)
    cow.write_bytes("/blob", b"\x00\x02")
    cow.write_bytes("/latin1.txt", b"caf\xe8\n")
    cow.write_bytes("/new.bin", b"\x00")
    cow.write_bytes("/empty", b"")
    cow.rmdir("/old")
    cow.makedirs("/made/dir")
    assert cow.diff() == ("Binary files a/blob and b/blob differ\n"
                          "Binary files a/latin1.txt and b/latin1.txt differ\n"
                          "Binary files /dev/null and b/new.bin differ\n")
    ch = cow.changes()
    assert ch.added_dirs == ("/made", "/made/dir") and ch.deleted_dirs == ("/old",)
    assert "/empty" in ch.added


def test_a_path_that_changed_kind_shows_the_file_side() -> None:
    base = MemFs()
    base.write_bytes("/f", b"was a file\n")
    base.makedirs("/d")
    base.write_bytes("/d/x", b"x\n")
    cow = CowFs(base)
    cow.remove("/f")
    cow.mkdir("/f")
    cow.rmtree("/d")
    cow.write_bytes("/d", b"now a file\n")
    assert cow.diff() == ("--- /dev/null\n+++ b/d\n@@ -0,0 +1 @@\n+now a file\n"
                          "--- a/d/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
                          "--- a/f\n+++ /dev/null\n@@ -1 +0,0 @@\n-was a file\n")
