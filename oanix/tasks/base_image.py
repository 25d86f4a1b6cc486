"""What a task image's base gives before its Dockerfile runs: the files programs read.

A task's ``FROM ubuntu:24.04`` or ``FROM python:3.12-slim`` is not pulled (there is no
Docker); the image tree starts empty but for these: ``/etc/os-release`` (Ubuntu for an
``ubuntu`` base, else Debian 12, the base of the official ``python`` images), the root
user in ``/etc/passwd`` and ``/etc/group``, ``/etc/hostname``, ``/etc/hosts``, and the
usual directories. Agents read them to learn where they are (``cat /etc/os-release``,
``getent``-like lookups in ``/etc/passwd``).
"""

from __future__ import annotations

import re

from ..fs.mem import MemFs

__all__ = ["seed_base"]

_DEBIAN = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
           'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
           'HOME_URL="https://www.debian.org/"\n')
_UBUNTU_CODENAMES = {"20.04": "focal", "22.04": "jammy", "24.04": "noble", "24.10": "oracular",
                     "25.04": "plucky"}
_FILES = {
    "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
    "/etc/group": "root:x:0:\n",
    "/etc/hostname": "oanix\n",
    "/etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
}
_DIRS = ("/etc", "/root", "/tmp", "/usr/local/bin", "/var/tmp")


def seed_base(tree: MemFs, base: str | None) -> None:
    """Put the base's files into ``tree`` (an empty image tree)."""
    for d in _DIRS:
        tree.makedirs(d, exist_ok=True)
    for path, text in _FILES.items():
        tree.write_text(path, text)
    tree.write_text("/etc/os-release", _os_release(base or ""))


def _os_release(base: str) -> str:
    """``/etc/os-release`` for image reference ``base`` (``ubuntu:24.04``, ``python:3.12``)."""
    name = base.rsplit("/", 1)[-1]
    m = re.fullmatch(r"ubuntu(?::(\S+?))?(?:@\S+)?", name)
    if m is None:
        return _DEBIAN
    tag = re.match(r"\d+\.\d+", m.group(1) or "")
    version = tag.group(0) if tag else "24.04"  # latest, noble, rolling...
    codename = _UBUNTU_CODENAMES.get(version, "")
    return (f'PRETTY_NAME="Ubuntu {version}"\nNAME="Ubuntu"\nVERSION_ID="{version}"\n'
            f'VERSION="{version}"\nVERSION_CODENAME={codename}\nID=ubuntu\nID_LIKE=debian\n'
            'HOME_URL="https://www.ubuntu.com/"\n')
