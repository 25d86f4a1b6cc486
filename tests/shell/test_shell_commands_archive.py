"""tar, gzip and zip against the real tools: what one writes the other reads back
byte for byte, and the command lines behave the same (output and status)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest
from shell_compare import FILES, compare, make_shell, need

from oanix.shell import Shell


def _ns_bytes(sh: Shell, path: str) -> bytes:
    return sh._interp.namespace.read_bytes(path)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


CASES = [
    "gzip -c a.txt | gzip -dc",
    "gzip -c bin.dat | zcat | sha256sum",
    "gzip -9 -c nums.txt | gunzip -c",
    "gzip a.txt; ls a.txt*; gunzip a.txt.gz; cat a.txt",
    "gzip -k nums.txt; ls nums.txt*; gzip nums.txt; echo $?",
    "gzip -c a.txt > x.gz; gzip -t x.gz; echo $?",
    "echo plain > p; gzip -dc p; echo $?",
    "gzip missing; echo $?",
    "gzip -d a.txt; echo $?",
    "printf '' | gzip -dc; echo $?",
    "gzip -c a.txt nums.txt | zcat",
    "tar --sort=name -cf x.tar dir a.txt && tar tf x.tar",
    "tar --sort=name -czf x.tgz dir && tar -tzf x.tgz && mkdir o && tar xzf x.tgz -C o && "
    "cat o/dir/sub/z.txt",
    "tar --sort=name -cf - dir | tar -tf -",
    "tar --sort=name -cjf x.tbz dir && tar xjf x.tbz -O dir/y.txt",
    "tar --sort=name -cJf x.txz a.txt && tar -xOf x.txz",
    "tar --sort=name -cf x.tar dir && mkdir o && tar -xf x.tar -C o --strip-components=1 && "
    "ls o o/sub",
    "tar --sort=name -cf x.tar --exclude='*.py' dir && tar tf x.tar",
    "tar --sort=name -cf x.tar dir a.txt && tar tf x.tar a.txt; tar tf x.tar nope; echo $?",
    "tar tf missing.tar; echo $?", "gzip -k a.txt && gzip -l a.txt.gz",
    "echo a > f && zip -q x.zip f && echo bb > f && zip -q x.zip f nums.txt && unzip -p x.zip f",
    "tar --sort=name -cf x.tar dir; mkdir o; cd o && tar xf ../x.tar dir/y.txt && find . | sort",
]


@pytest.mark.parametrize("cmd", CASES)
def test_same_as_real_tools(cmd: str, tmp_path: Path) -> None:
    need("gzip", "tar", "bzip2", "xz")
    compare(cmd, tmp_path)


def test_gzip_both_ways(tmp_path: Path) -> None:
    need("gzip")
    big = bytes(range(256)) * 20_000  # several chunks
    sh = make_shell(tmp_path, {"big": big})
    assert sh.exec("gzip -k big && gzip -c big > big2.gz").exit_code == 0
    ours = _ns_bytes(sh, "/work/big.gz")
    real = subprocess.run(["gzip", "-dc"], input=ours, capture_output=True, check=True)
    assert real.stdout == big
    theirs = subprocess.run(["gzip", "-c"], input=big, capture_output=True, check=True).stdout
    sh._interp.namespace.write_bytes("/work/theirs.gz", theirs + theirs)  # two members
    r = sh.exec("zcat theirs.gz | sha256sum; gzip -l theirs.gz 2>/dev/null; true")
    import hashlib
    assert r.stdout.split()[0].decode() == hashlib.sha256(big + big).hexdigest()


def test_tar_both_ways(tmp_path: Path) -> None:
    need("tar")
    sh = make_shell(tmp_path)
    assert sh.exec("tar czf /tmp/ours.tgz dir a.txt bin.dat").exit_code == 0
    (tmp_path / "ours.tgz").write_bytes(_ns_bytes(sh, "/tmp/ours.tgz"))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "xzf", str(tmp_path / "ours.tgz"), "-C", str(out)], check=True)
    want = {k: v for k, v in FILES.items() if k.startswith("dir/") or k in ("a.txt",
                                                                             "bin.dat")}
    assert _tree(out) == want
    subprocess.run(["tar", "cf", str(tmp_path / "theirs.tar"), "-C", str(tmp_path), "dir"],
                   check=True)
    sh._interp.namespace.write_bytes("/tmp/theirs.tar", (tmp_path / "theirs.tar").read_bytes())
    r = sh.exec("mkdir -p /x && tar xf /tmp/theirs.tar -C /x && cat /x/dir/sub/z.txt")
    assert (r.stdout, r.exit_code) == (b"zzz\n", 0), r.stderr


def test_tar_links_become_copies(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"target\n"
        info = tarfile.TarInfo("d/real.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        for name, kind, link in (("d/sym", tarfile.SYMTYPE, "real.txt"),
                                 ("d/hard", tarfile.LNKTYPE, "d/real.txt"),
                                 ("d/dangling", tarfile.SYMTYPE, "/etc/passwd")):
            li = tarfile.TarInfo(name)
            li.type, li.linkname = kind, link
            tf.addfile(li)
    sh = make_shell(tmp_path, {"l.tar": buf.getvalue()})
    r = sh.exec("tar xf l.tar; echo $?; cat d/sym d/hard; ls d")
    assert r.stdout == b"2\ntarget\ntarget\nhard\nreal.txt\nsym\n"
    assert b"dangling" in r.stderr and b"not supported" in r.stderr


def test_zip_both_ways(tmp_path: Path) -> None:
    need("zip", "unzip")
    sh = make_shell(tmp_path)
    r = sh.exec("zip -qr /tmp/ours.zip dir a.txt")
    assert r.exit_code == 0, r.stderr
    data = _ns_bytes(sh, "/tmp/ours.zip")
    (tmp_path / "ours.zip").write_bytes(data)
    listing = subprocess.run(["unzip", "-Z1", str(tmp_path / "ours.zip")], capture_output=True,
                             check=True, text=True).stdout.split()
    assert sorted(listing) == ["a.txt", "dir/", "dir/sub/", "dir/sub/z.txt", "dir/x.py",
                               "dir/y.txt"]
    assert subprocess.run(["unzip", "-p", str(tmp_path / "ours.zip"), "dir/sub/z.txt"],
                          capture_output=True, check=True).stdout == b"zzz\n"
    subprocess.run(["zip", "-qr", "theirs.zip", "dir"], cwd=tmp_path, check=True)
    sh._interp.namespace.write_bytes("/tmp/theirs.zip", (tmp_path / "theirs.zip").read_bytes())
    r = sh.exec("mkdir /u && cd /u && unzip -q /tmp/theirs.zip && cat dir/sub/z.txt dir/y.txt"
                " && unzip -p /tmp/theirs.zip dir/x.py && unzip -l /tmp/theirs.zip | tail -1")
    assert r.stdout.startswith(b"zzz\ny\nprint('x')\n"), r.stderr
    assert b"5 files" in r.stdout
    r = sh.exec("cd /u && unzip -q /tmp/theirs.zip; echo $?; unzip -qo /tmp/theirs.zip; echo $?")
    assert r.stdout == b"1\n0\n"


def test_zip_same_listing_as_real_unzip(tmp_path: Path) -> None:
    need("zip", "unzip")
    compare("zip -qr x.zip dir && unzip -Z1 x.zip 2>/dev/null | sort; unzip -p x.zip dir/y.txt",
            tmp_path)
