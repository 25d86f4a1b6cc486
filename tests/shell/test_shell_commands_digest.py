"""Checksums and base64 against coreutils: same output and status, large inputs too."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shell_compare import FILES, compare, make_shell, need

CASES = [
    "sha256sum a.txt nums.txt; md5sum a.txt; sha1sum - < a.txt; sha512sum bin.dat",
    "sha224sum a.txt; sha384sum a.txt",
    "sha256sum missing a.txt; echo $?",
    "sha256sum --tag a.txt; md5sum -b nums.txt",
    "sha256sum a.txt nums.txt > s; sha256sum -c s; echo $?",
    "sha256sum a.txt > s; echo junk >> s; sha256sum -c s; echo $?",
    "sha256sum a.txt > s; echo '0000000000000000000000000000000000000000000000000000000000000000"
    "  nums.txt' >> s; sha256sum -c s; echo $?; sha256sum -c --quiet s; echo $?",
    "sha256sum a.txt > s; echo 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852"
    "b855  gone' >> s; sha256sum -c s; echo $?; sha256sum -c --ignore-missing s; echo $?",
    "sha256sum a.txt > s; sha256sum --status -c s; echo $?",
    "md5sum --tag a.txt | md5sum -c",
    "echo junk | sha256sum -c; echo $?",
    "sha1sum a.txt > s; sha1sum -c s; sha256sum -c s; echo $?",
    "base64 a.txt; base64 -w 0 nums.txt; echo; base64 -w 7 bin.dat | head -3",
    "base64 bin.dat | base64 -d | sha256sum",
    "printf '' | base64; printf a | base64; printf ab | base64; printf abc | base64",
    "printf 'YWJj\\nZA==' | base64 -d; echo \" $?\"",
    "printf 'YWJjZA' | base64 -d; echo \" $?\"",
    "printf 'YWJjZ' | base64 -d; echo \" $?\"",
    "printf 'YW*Jj' | base64 -d; echo \" $?\"; printf 'YW*Jj' | base64 -di; echo \" $?\"",
    "base64 --decode <<< 'aGVsbG8gd29ybGQK'",
    "printf 'YWJjZ*' | base64 -d; echo \" $?\"",
    "base64 missing; echo $?",
]


@pytest.mark.parametrize("cmd", CASES)
def test_same_as_coreutils(cmd: str, tmp_path: Path) -> None:
    need("sha256sum", "base64")
    compare(cmd, tmp_path)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300), width=st.integers(0, 80))
def test_base64_round_trip_and_python_agree(data: bytes, width: int) -> None:
    import base64

    sh = make_shell(Path("/nonexistent"), {})
    sh._interp.namespace.write_bytes("/work/d", data)
    enc = sh.exec(f"base64 -w {width} d")
    plain = base64.b64encode(data)
    if width:
        want = b"".join(plain[i:i + width] + b"\n" for i in range(0, len(plain), width))
    else:
        want = plain
    assert enc.stdout == want
    assert sh.exec("base64 -d", enc.stdout).stdout == data


def test_large_file_is_read_in_chunks(tmp_path: Path) -> None:
    """3 MB: more than one chunk, the chunk boundaries must not show in the result."""
    big = bytes(range(251)) * 12_000
    sh = make_shell(tmp_path, {"big": big})
    out = sh.exec("sha256sum big; base64 big | base64 -d | sha256sum")
    digest = hashlib.sha256(big).hexdigest()
    assert out.stdout.decode() == f"{digest}  big\n{digest}  -\n"
    assert FILES  # the default tree is untouched by this test
