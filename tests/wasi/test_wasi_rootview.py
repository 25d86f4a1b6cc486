"""The guest's root put back after a run: RootLayout.repair on a real directory, against
random sequences of what a guest can do with a writable root."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oanix.wasi.rootview import RootLayout, plan_root, top_level

MEMBERS = {"data": "/data", "tmp": "/tmp", "x/a": "/x/a"}


def _layout(host: str) -> RootLayout:
    layout = plan_root(host, [("/" + rel, ns) for rel, ns in MEMBERS.items()], ["/ro"])
    assert layout is not None
    return layout


def _build(host: str) -> tuple[RootLayout, dict[str, int]]:
    """The layout, built, and each member's inode, held open as the staging holds it (so
    a removed member's number cannot come back as a new directory's)."""
    layout = _layout(host)
    layout.build()
    inodes = {}
    for rel in MEMBERS:
        os.makedirs(os.path.join(host, rel))
        Path(host, rel, "own.txt").write_text(rel)
        fd = os.open(os.path.join(host, rel), os.O_RDONLY | os.O_DIRECTORY)
        _held.append(fd)
        inodes[rel] = os.fstat(fd).st_ino
    return layout, inodes


_held: list[int] = []


@pytest.fixture(autouse=True)
def _release() -> Iterator[None]:
    yield
    while _held:
        os.close(_held.pop())


def _tree(host: str) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(host):
        for name in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, name), host))
    return out


def test_plan_root() -> None:
    layout = _layout("/r")
    assert layout.intermediates == ("x",)
    assert layout.placeholders == frozenset({"ro"})
    assert layout.scaffold == ("ro", "x")
    read_only = plan_root("/r", [], ["/ro"])
    assert read_only is not None and not read_only.writable and layout.writable
    assert plan_root("/r", [], []) is None
    assert top_level(["/a", "/a/b", "/c"]) == ["/a", "/c"]


def test_a_clean_root_needs_nothing() -> None:
    with tempfile.TemporaryDirectory() as host:
        layout, inodes = _build(host)
        before = _tree(host)
        assert layout.repair(inodes) == ([], set())
        assert _tree(host) == before


def test_swapped_members_and_a_member_moved_into_a_placeholder() -> None:
    with tempfile.TemporaryDirectory() as host:
        layout, inodes = _build(host)
        os.rename(os.path.join(host, "data"), os.path.join(host, "swap"))
        os.rename(os.path.join(host, "tmp"), os.path.join(host, "data"))
        os.rename(os.path.join(host, "swap"), os.path.join(host, "tmp"))
        os.rename(os.path.join(host, "x/a"), os.path.join(host, "ro/a"))
        refused, touched = layout.repair(inodes)
        assert touched == {"data", "tmp", "x/a"}
        assert sorted(p for p, _ in refused) == ["/data", "/tmp", "/x/a"]
        for rel in MEMBERS:  # every member back in place, with what it held
            assert os.stat(os.path.join(host, rel)).st_ino == inodes[rel]
            assert Path(host, rel, "own.txt").read_text() == rel
        assert os.listdir(os.path.join(host, "ro")) == []


_names = st.sampled_from(["data", "tmp", "x", "x/a", "ro", "j", "j/k", "ro/j", "data/j"])
_ops = st.lists(st.one_of(
    st.tuples(st.just("write"), _names, st.just("")),
    st.tuples(st.just("mkdir"), _names, st.just("")),
    st.tuples(st.just("mv"), _names, _names),
    st.tuples(st.just("rmtree"), _names, st.just("")),
    st.tuples(st.just("symlink"), _names, st.just("")),
), max_size=8)


@settings(max_examples=150, deadline=None)
@given(ops=_ops)
def test_repair_against_any_guest(ops: list[tuple[str, str, str]]) -> None:
    """Whatever the guest did: afterwards the root holds exactly the members, the
    intermediates and empty placeholders; a member directory found anywhere (inside
    another member too) is back in place with what it held; one that is gone is there
    again, empty; and every member touched is reported."""
    with tempfile.TemporaryDirectory() as host:
        layout, inodes = _build(host)
        try:
            _act(host, ops)
            _check(host, layout, inodes)
        finally:
            while _held:
                os.close(_held.pop())


def _act(host: str, ops: list[tuple[str, str, str]]) -> None:
    """What a guest may do through a writable root (each step may fail, as it would)."""
    for op, a, b in ops:
        pa, pb = os.path.join(host, a), os.path.join(host, b)
        try:
            if op == "write":
                Path(pa).write_text("x")
            elif op == "mkdir":
                os.mkdir(pa)
            elif op == "mv":
                os.rename(pa, pb)
            elif op == "rmtree":
                shutil.rmtree(pa)
            else:
                os.symlink("/", pa)
        except OSError:
            pass


def _check(host: str, layout: RootLayout, inodes: dict[str, int]) -> None:
    # Where each member directory is now, and what it holds besides other members.
    member_inodes = set(inodes.values())
    survivors = {}
    for dirpath, dirnames, _ in os.walk(host):
        for name in dirnames:
            inside = os.path.join(dirpath, name)
            ino = os.lstat(inside).st_ino
            for rel, want in inodes.items():
                if ino == want:
                    survivors[rel] = {n for n in os.listdir(inside) if os.lstat(
                        os.path.join(inside, n)).st_ino not in member_inodes}
    refused, touched = layout.repair(inodes)
    top = {p for p in _tree(host) if not any(p.startswith(m + "/") for m in MEMBERS)}
    assert top == {*MEMBERS, "x", "ro"}
    assert os.listdir(os.path.join(host, "ro")) == []
    refused_paths = {p for p, _ in refused}
    for rel, ns_path in MEMBERS.items():
        place = os.path.join(host, rel)
        assert os.path.isdir(place) and not os.path.islink(place)
        if rel in survivors:
            assert os.lstat(place).st_ino == inodes[rel]
            assert set(os.listdir(place)) == survivors[rel]
        else:
            assert os.listdir(place) == [] and rel in touched
        assert (rel in touched) == (ns_path in refused_paths)


def test_links_the_guest_planted_are_never_followed() -> None:
    """A guest that moves a scaffold directory away and puts a link in its place gets the
    link removed: nothing outside the root is read through it, moved or deleted."""
    with tempfile.TemporaryDirectory() as host, tempfile.TemporaryDirectory() as outside:
        layout, inodes = _build(host)
        try:
            os.makedirs(os.path.join(outside, "a"))
            Path(outside, "a", "precious").write_text("keep")
            Path(outside, "precious").write_text("keep")
            os.rename(os.path.join(host, "x"), os.path.join(host, "x-moved"))
            os.symlink(outside, os.path.join(host, "x"))  # x/a would lead outside
            os.rmdir(os.path.join(host, "ro"))
            os.symlink(outside, os.path.join(host, "ro"))
            refused, touched = layout.repair(inodes)
            assert Path(outside, "a", "precious").read_text() == "keep"
            assert Path(outside, "precious").read_text() == "keep"
            assert not os.path.islink(os.path.join(host, "x"))
            assert os.lstat(os.path.join(host, "x/a")).st_ino == inodes["x/a"]
            assert Path(host, "x/a/own.txt").read_text() == "x/a"
            assert {"/x", "/ro", "/x-moved"} <= {p for p, _ in refused}
            assert touched == {"x/a"}
        finally:
            while _held:
                os.close(_held.pop())
