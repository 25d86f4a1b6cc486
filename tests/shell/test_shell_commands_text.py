"""paste, seq, date and file against coreutils/file: same output and status."""

from __future__ import annotations

from pathlib import Path

import pytest
from shell_compare import FILES, compare, make_shell, need

TEXT_FILES = {
    **FILES,
    "p1": b"a\nb\nc\n",
    "p2": b"1\n2\n",
    "empty": b"",
    "crlf": b"a\r\nb\r\n",
    "utf8": "h\u00e9llo\n".encode(),
    "j.json": b'{"a": 1}\n',
}

CASES = [
    "paste p1 p2", "paste -d, p1 p2 p1", "paste -s p1", "paste -s -d: p1 p2",
    "paste -d ',;' p1 p2 p1", "paste - - < a.txt", "paste -d '\\n' p1 p2",
    "paste -sd+ nums.txt | tr -d '\\n'; echo", "paste p1 missing; echo $?",
    "printf 'x\\ny\\n' | paste p1 -", "paste -s nonl.txt", "paste empty p1",
    "seq 5", "seq 3 7", "seq 1 2 10", "seq 10 -3 1", "seq 5 1; echo $?", "seq 0",
    "seq 1 0.5 3", "seq 1 3.5", "seq 0.1 0.1 0.5", "seq 1 0.25 2.0", "seq -w 8 11",
    "seq -w -2 1", "seq -s, 5", "seq -s '' 3", "seq -f '%03g' 3", "seq -f 'x%.2fy' 1 0.5 2",
    "seq -f %e 2", "seq 1e2 1e2 3e2", "seq -w 1 0.5 10", "seq 1.5", "seq -5 -1",
    "seq -3 -1 -6", "seq a; echo $?", "seq 1 0 3; echo $?", "seq; echo $?",
    "seq -s ' ' 1 100000 | wc -c", "seq -s , 4096 | tail -c 12", "seq -s , 4097 | tail -c 12",
    "seq 8193 | tail -2", "seq -w 0.5 0.5 10 | tail -1", "seq -w 998 1001",
    "date -u -d @0", "date -u -d @1700000000 -R", "date -u -d @1700000000 -Iseconds",
    "date -u -d @1700000000 -I", "date -u -d '@1700000000.5' '+%s %N'",
    "date -u -d @1700000000 '+%Y-%m-%d %H:%M:%S %j %u %w %a %A %b %B %p %y %C %D %T'",
    "date -u -d @1700000000 '+%-d %-m %_H %e %q %:z %z %Z %%'",
    "date -u -d '2024-02-29 13:45:00' +%s", "date -u -d '2024-02-29' '+%F %T'",
    "date -u -d '2024-01-01T10:00:00Z' -Iseconds", "date -u -d '2024-01-01 +3 days' +%F",
    "date -u -d '2024-03-10 2 days ago' +%F",
    "date -u -d '2024-03-10 10:00 90 minutes' +%T",
    "date -u -d '2024-03-10 12:00:00 +0200' '+%F %T'", "date -u -d '2023-05-05 1 year' +%F",
    "date -u -d '2024-03-10 1 week ago' +%F", "date -u -d 'garbage words'; echo $?",
    "date -u +%Y", "date -u -d yesterday +%F", "date -u -d tomorrow +%F",
    "date -u --date='2020-06-01 next week' +%F", "TZ=UTC date -d @86400 '+%F %T %Z'",
    "file empty p1 dir crlf nonl.txt", "file -b p1", "file --mime-type p1 j.json",
    "file -i p1 utf8", "file missing; echo $?",
]


@pytest.mark.parametrize("cmd", CASES)
def test_same_as_real_tools(cmd: str, tmp_path: Path) -> None:
    need("paste", "seq", "date", "file")
    compare(cmd, tmp_path, TEXT_FILES)


def test_file_names_common_types(tmp_path: Path) -> None:
    import gzip
    import io
    import tarfile
    import zipfile

    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("x", "y")
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        tf.addfile(tarfile.TarInfo("e"))
    files = {"g.gz": gzip.compress(b"x"), "z.zip": zbuf.getvalue(), "t.tar": tbuf.getvalue(),
             "i.png": b"\x89PNG\r\n\x1a\n0000", "m.wasm": b"\0asm\1\0\0\0",
             "s.sh": b"#!/bin/bash\necho\n", "p.py": b"#!/usr/bin/env python3\nprint(1)\n",
             "x.pdf": b"%PDF-1.4\n", "h.html": b"<html><body></body></html>\n",
             "x.xml": b'<?xml version="1.0"?>\n<a/>\n', "j.json": b'{"a": [1, 2]}\n'}
    sh = make_shell(tmp_path, files)
    out = sh.exec("file -b " + " ".join(files)).stdout_text.splitlines()
    assert out == ["gzip compressed data", "Zip archive data", "POSIX tar archive (GNU)",
                   "PNG image data", "WebAssembly (wasm) binary module version 0x1 (MVP)",
                   "Bourne-Again shell script, ASCII text executable",
                   "Python script, ASCII text executable", "PDF document, version 1.4",
                   "HTML document, ASCII text", "XML 1.0 document, ASCII text",
                   "JSON text data"]
