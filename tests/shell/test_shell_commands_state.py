"""which/command/type, env, the directory stack and getopts against bash."""

from __future__ import annotations

from pathlib import Path

import pytest
from shell_compare import compare, make_shell

CASES = [
    "command -v ls sort cd; command -v nope_zz; echo $?", "type ls cd if; echo $?",
    "type -t ls cd if nope_zz; echo $?", "type -P ls; type -p cd; echo $?",
    "which sort; which cd nope_zz; echo $?", "command -V cd ls",
    "f() { :; }; type -t f; command -v f",
    "/usr/bin/env echo via env", "/bin/sh -c 'echo via sh $0' zz", "/bin/bash -c 'echo $#' a b",
    "/usr/bin/printf '%s\\n' x", "$(command -v sort) nums.txt",
    "env -i A=1 B=2 env", "env -u HOME printenv HOME; echo $?", "env A=1 sh -c 'echo $A'",
    "env -S 'echo a b'", "env -- echo dash", "env -C dir pwd | sed \"s|^$PWD|.|\"",
    "printenv NOPE_ZZ; echo $?", "X=1 printenv X", "env nope_zz_cmd; echo $?",
    "pushd dir; pushd sub; dirs; dirs -v; dirs -p; popd; popd; popd; echo $?",
    "pushd dir >/dev/null; pushd /tmp >/dev/null; pushd; pwd | sed \"s|^$HOME|~|\"; dirs -c; dirs",
    "pushd dir >/dev/null && pushd sub >/dev/null && popd +1 && dirs && pushd +1 && dirs",
    "cd dir; cd - >/dev/null; [ \"$PWD\" = \"$HOME\" ] && echo home; cd - >/dev/null;"
    " basename $PWD",
    "pushd nope_zz; echo $?",
    "f() { while getopts 'ab:c' o; do echo \"$o ${OPTARG-}\"; done; shift $((OPTIND-1));"
    " echo \"rest $*\"; }; f -a -b x -ca -bfoo y z",
    "f() { while getopts ':ab:' o; do echo \"$o ${OPTARG-}\"; done; }; f -a -x -b",
    "f() { while getopts 'ab:' o; do echo \"$o\"; done; echo $OPTIND; }; f -z -b 2>/dev/null",
    "f() { while getopts 'a' o; do echo $o; done; echo $OPTIND; }; f -a -- -a x",
    "OPTIND=1; getopts 'xy:' o -y val extra; echo \"$o $OPTARG $OPTIND\"",
    "getopts 'a' o x; echo $? $o $OPTIND",
]


@pytest.mark.parametrize("cmd", CASES)
def test_same_as_bash(cmd: str, tmp_path: Path) -> None:
    compare(cmd, tmp_path)


def test_shebangs_and_standard_paths(tmp_path: Path) -> None:
    sh = make_shell(tmp_path, {
        "s.sh": b"#!/bin/bash\necho \"bash script $1\"\n",
        "e.sh": b"#!/usr/bin/env bash\necho env script\n",
        "k.sh": b"#!/usr/bin/env -S bash -e\nfalse\necho not reached\n"})
    r = sh.exec("./s.sh one; sh s.sh two; bash -c './e.sh'; ./k.sh; echo $?")
    assert r.stdout == b"bash script one\nbash script two\nenv script\n1\n", r.stderr
    assert sh.exec("/usr/bin/nope_zz; echo $?").stdout == b"127\n"
    assert sh.exec("/opt/bin/ls; echo $?").stdout == b"127\n"
