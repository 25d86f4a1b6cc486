import pytest

from oanix import MemFs, NoSpace
from oanix.testing import FileServiceTests


class TestMemFs(FileServiceTests):
    def make_service(self) -> MemFs:
        return MemFs()


def test_quota_bytes_is_enforced_and_released() -> None:
    fs = MemFs(max_bytes=10)
    fs.write_bytes("/a", b"12345")
    with pytest.raises(NoSpace) as exc:
        fs.write_bytes("/b", b"123456")
    assert exc.value.path == "/b"
    assert not fs.exists("/b")
    with fs.open("/a", "ab") as f, pytest.raises(NoSpace):
        f.write(b"123456")
    assert fs.read_bytes("/a") == b"12345"
    fs.remove("/a")
    assert fs.usage == (0, 0)
    fs.write_bytes("/b", b"1234567890")
    assert fs.usage == (10, 1)


def test_quota_files() -> None:
    fs = MemFs(max_files=2)
    fs.mkdir("/d")
    fs.write_bytes("/d/a", b"")
    with pytest.raises(NoSpace):
        fs.write_bytes("/d/b", b"")
    with pytest.raises(NoSpace):
        fs.mkdir("/e")
    fs.rmtree("/d")
    assert fs.usage == (0, 0)


def test_open_file_sees_writes_and_survives_remove() -> None:
    fs = MemFs()
    fs.write_bytes("/f", b"one")
    reader = fs.open("/f", "rb")
    fs.write_bytes("/f", b"two")
    assert reader.read() == b"two"
    fs.remove("/f")
    reader.seek(0)
    assert reader.read() == b"two"
    reader.close()
    assert not fs.exists("/f")


def test_rename_over_file_releases_quota() -> None:
    fs = MemFs(max_bytes=8)
    fs.write_bytes("/a", b"1234")
    fs.write_bytes("/b", b"5678")
    fs.rename("/a", "/b")
    assert fs.usage == (4, 1)
