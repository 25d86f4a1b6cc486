"""Attacks through the shell's utilities: archive members that climb out of the target
directory, links that point outside it, and HTTP that tries to go around the policy."""

from __future__ import annotations

import io
import tarfile
import zipfile

from oanix import MemFs, Namespace
from oanix.cap.http import HttpFs
from oanix.shell import Shell


def _shell() -> tuple[Shell, Namespace]:
    ns = Namespace()
    ns.mount("/", MemFs())
    ns.makedirs("/work/in/deep")
    ns.write_bytes("/work/secret", b"do not overwrite\n")
    return Shell(ns, cwd="/work"), ns


def _files(ns: Namespace) -> list[str]:
    return sorted(f"{d.rstrip('/')}/{f}" for d, _, files in ns.walk("/") for f in files)


def test_tar_members_cannot_escape_the_target_directory() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in ("../../secret", "../escape.txt", "/abs.txt", "ok/../../../up.txt",
                     "fine.txt"):
            info = tarfile.TarInfo(name)
            info.size = 4
            tf.addfile(info, io.BytesIO(b"pwnd"))
        link = tarfile.TarInfo("link")  # a link to a file outside: never followed
        link.type, link.linkname = tarfile.SYMTYPE, "../../secret"
        tf.addfile(link)
        hard = tarfile.TarInfo("hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "/work/secret"
        tf.addfile(hard)
    sh, ns = _shell()
    ns.write_bytes("/work/evil.tar", buf.getvalue())
    for cmd in ("cd in/deep && tar xf /work/evil.tar", "tar xf evil.tar -C in/deep",
                "tar xf evil.tar -C in/deep --strip-components=1"):
        r = sh.exec(cmd)
        assert r.exit_code == 2, (cmd, r.stderr)
        assert ns.read_bytes("/work/secret") == b"do not overwrite\n"
    assert _files(ns) == ["/work/evil.tar", "/work/in/deep/abs.txt",
                          "/work/in/deep/fine.txt", "/work/secret"]


def test_zip_members_cannot_escape_the_target_directory() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../secret", "pwnd")
        zf.writestr("/abs.txt", "x")
        zf.writestr("a/../../../up.txt", "x")
        zf.writestr("fine.txt", "x")
    sh, ns = _shell()
    ns.write_bytes("/work/evil.zip", buf.getvalue())
    r = sh.exec("unzip -o evil.zip -d in/deep")
    assert r.exit_code == 1
    assert ns.read_bytes("/work/secret") == b"do not overwrite\n"
    assert _files(ns) == ["/work/evil.zip", "/work/in/deep/abs.txt",
                          "/work/in/deep/fine.txt", "/work/secret"]


def test_curl_cannot_reach_the_network_without_the_capability() -> None:
    """No HttpFs mounted: nothing is sent anywhere (curl 7), whatever the URL."""
    sh, _ = _shell()
    for url in ("http://127.0.0.1:1/", "https://example.com/", "file:///etc/passwd"):
        r = sh.exec(f"curl -sS {url}; echo $?; wget -q -O- {url}; echo $?")
        assert r.stdout == b"7\n4\n", (url, r.stderr)


def test_curl_requests_only_go_through_the_request_file() -> None:
    """With an HttpFs but no executor, a request stays pending: curl never connects
    itself, so a denied or unreachable host is never contacted by the shell."""
    sh, ns = _shell()
    http = HttpFs(default_timeout=0.05, max_timeout=0.05)
    ns.mount("/cap/http", http)
    r = sh.exec("curl -sS -m 0.05 http://127.0.0.1:9/x; echo $?")
    assert r.stdout == b"28\n"
    assert http.counts()["pending"] == 1  # accepted by the capability, performed by nobody
