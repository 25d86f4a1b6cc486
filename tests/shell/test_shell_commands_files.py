"""stat, du, ln, mktemp, realpath/readlink, tee and cmp against coreutils."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from shell_compare import compare, make_shell, need

CASES = [
    "stat -c '%n %s %F %a %A %U %G %h' a.txt dir nonl.txt", "stat -c %s bin.dat",
    "stat --printf '%n:%s\\n' a.txt nums.txt", "stat missing; echo $?",
    "touch e; stat -c '%F' e", "stat -c '%%%n%%' a.txt",
    "ln a.txt h.txt && cat h.txt && ln a.txt h.txt; echo $?", "ln -f nums.txt h && cat h",
    "ln a.txt dir && cat dir/a.txt", "ln missing x; echo $?", "ln dir d2; echo $?",
    "realpath a.txt dir/../dir/sub | sed \"s|^$PWD|.|\"",
    "realpath -m nope/../x/y | sed \"s|^$PWD|.|\"", "realpath nope/x; echo $?",
    "realpath -e nope; echo $?", "realpath --relative-to=dir/sub a.txt",
    "readlink -f ./dir/./sub/../y.txt | sed \"s|^$PWD|.|\"", "readlink -f nope/x; echo $?",
    "readlink a.txt; echo $?", "readlink -m /a/b/../c", "realpath -s . | sed \"s|^$PWD|.|\"",
    "cd dir && realpath ../a.txt | sed \"s|^$OLDPWD|.|\"",
    "echo hi | tee t1 t2 && cat t1 t2", "printf 'a\\nb' | tee -a a.txt > /dev/null; cat a.txt",
    "seq 3 | tee /dev/null", "echo x | tee dir/none/f; echo $?",
    "cmp a.txt a.txt; echo $?", "cmp a.txt nums.txt > /dev/null; echo $?",
    "cmp -s a.txt nums.txt; echo $?",
    "cmp missing a.txt; echo $?",
    "mktemp -u | grep -c '^/tmp/tmp\\.[A-Za-z0-9]\\{10\\}$'",
    "f=$(mktemp x.XXXX) && test -f \"$f\" && echo ok ${#f}", "mktemp x.XX; echo $?",
    "d=$(mktemp -d) && test -d \"$d\" && echo dir", "TMPDIR=/work mktemp -t y.XXX | cut -c1-8",
    "mktemp -p dir z.XXXXX | cut -c1-6", "mktemp --suffix=.txt q.XXXX | grep -c '\\.txt$'",
    "du -b a.txt nums.txt", "du -ab dir | sort", "du -sb dir", "du -sk dir", "du -a dir | sort",
    "du -s dir a.txt", "du -c -b a.txt nums.txt", "du -h -s dir", "du -d 1 -b dir | sort",
    "du missing; echo $?",
]


def _ext4_like(tmp: Path) -> bool:
    d = tmp / "probe"
    d.mkdir()
    (d / "f").write_bytes(b"x")
    out = subprocess.run(["du", "-ab", str(d)], capture_output=True, text=True).stdout
    blocks = subprocess.run(["du", "-a", str(d)], capture_output=True, text=True).stdout
    return out.split()[-2] == "4097" and blocks.split()[0] == "4"


@pytest.mark.parametrize("cmd", CASES)
def test_same_as_coreutils(cmd: str, tmp_path: Path) -> None:
    need("stat", "du", "realpath", "readlink", "mktemp", "cmp")
    if cmd.startswith("du") and not _ext4_like(tmp_path):
        pytest.skip("the host file system's directory sizes/blocks are not ext4's (4096)")
    compare(cmd, tmp_path)


def test_symbolic_link_refused_clearly(tmp_path: Path) -> None:
    sh = make_shell(tmp_path)
    r = sh.exec("ln -s a.txt s")
    assert r.exit_code == 1
    assert b"symbolic links are not supported" in r.stderr
    assert not sh._interp.namespace.exists("/work/s")


def test_df_reports_the_mount_points(tmp_path: Path) -> None:
    sh = make_shell(tmp_path)
    r = sh.exec("df -h /work | tail -1 | awk '{print $1, $NF}'; df /work > /dev/null; echo $?")
    assert r.stdout == b"oanix /\n0\n"
    assert sh.exec("df nope").exit_code == 1


def test_tee_streams_large_input(tmp_path: Path) -> None:
    sh = make_shell(tmp_path, {})
    data = b"".join(b"line %d\n" % i for i in range(200_000))
    r = sh.exec("tee big | wc -c; wc -c < big", data)
    assert r.stdout.split() == [str(len(data)).encode()] * 2
