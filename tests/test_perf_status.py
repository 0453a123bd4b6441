"""The no-op `status` fast path (a stat fingerprint of packed integers, no paths) never hides a
change, writes nothing when nothing changed, and the faster checkout keeps its rules.

Each test makes the tree look settled (mtimes a minute old), lets `status` record the
fingerprint, changes the tree the way a user or a tool would, and checks what `status` says.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import git, run, write_tree

OLD = time.time() - 60


def _settle(top: Path) -> None:
    """Every file and directory under `top` (and `top`) a minute old: trusted by the fast path."""
    for d, _dirs, files in os.walk(top, topdown=False):
        for name in files:
            os.utime(os.path.join(d, name), (OLD, OLD))
        os.utime(d, (OLD, OLD))


@pytest.fixture
def tracked(repo: Path) -> Path:
    write_tree(repo, {f"data/d{i % 3}/f{i}.txt": f"file {i:03d}".encode() for i in range(30)})
    _settle(repo / "data")
    run(repo, "add", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    assert "up to date" in run(repo, "status").stdout  # records the fingerprint
    return repo


def _status(repo: Path) -> str:
    return run(repo, "status", check=False).stdout


def test_a_noop_status_writes_nothing(tracked: Path) -> None:
    state = tracked / ".dvlite" / "tmp" / "state.db"
    before = state.stat()
    tmp_before = sorted(p.name for p in state.parent.iterdir())
    for _ in range(2):
        assert "up to date" in _status(tracked)
    after = state.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert sorted(p.name for p in state.parent.iterdir()) == tmp_before  # no journal left


def test_same_size_edit_with_the_old_mtime_put_back_is_seen_by_its_inode(tracked: Path) -> None:
    # an editor that writes a new file and renames it over the old one, then an mtime restored
    path = tracked / "data/d1/f4.txt"
    (tracked / "data/d1/new.tmp").write_bytes(b"file XYZ")
    os.replace(tracked / "data/d1/new.tmp", path)
    _settle(tracked / "data")
    out = _status(tracked)
    assert "f4.txt" in out and "up to date" not in out


def test_in_place_edit_is_seen(tracked: Path) -> None:
    with open(tracked / "data/d2/f5.txt", "r+b") as f:
        f.write(b"FILE")
    assert "f5.txt" in _status(tracked)


def test_two_names_swapped_and_every_mtime_put_back_is_seen(tracked: Path) -> None:
    a, b = tracked / "data/d0/f0.txt", tracked / "data/d0/f3.txt"
    os.replace(a, tracked / "data/d0/swap")
    os.replace(b, a)
    os.replace(tracked / "data/d0/swap", b)
    _settle(tracked / "data")  # even the directory's mtime: only the inodes' order tells
    out = _status(tracked)
    assert "f0.txt" in out and "f3.txt" in out


@pytest.mark.parametrize("change, expect", [
    (lambda r: (r / "data/d0/f6.txt").unlink(), "f6.txt"),
    (lambda r: (r / "data/d1/extra.txt").write_bytes(b"new"), "extra.txt"),
    (lambda r: os.replace(r / "data/d2/f2.txt", r / "data/d0/f2.txt"), "f2.txt"),
    (lambda r: os.chmod(r / "data/d1/f1.txt", 0o755), "f1.txt"),
    (lambda r: (r / "data/d1/f7.txt").unlink() or (r / "data/d1/f7.txt").symlink_to("f1.txt"),
     "f7.txt"),
])
def test_changes_are_seen(tracked: Path, change, expect) -> None:
    change(tracked)
    out = _status(tracked)
    assert expect in out and "up to date" not in out
    # and once it is undone by `checkout --force`, the tree is clean again
    run(tracked, "checkout", "--force")
    assert "up to date" in _status(tracked)


def test_checkout_replaces_a_directory_where_a_file_goes(tracked: Path) -> None:
    target = tracked / "data/d1/f1.txt"
    target.unlink()
    (target / "inner").mkdir(parents=True)
    (target / "inner" / "x").write_bytes(b"user data")
    out = run(tracked, "checkout", check=False)
    assert out.returncode != 0 and target.is_dir()  # unsaved content: refused, nothing changed
    run(tracked, "checkout", "--force")
    assert target.read_bytes() == b"file 001"
    assert not list((tracked / ".dvlite" / "tmp" / "ws").iterdir())  # no temp file left
