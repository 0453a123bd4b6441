"""Link types: what checkout puts in the workspace, and that editing it never touches the cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import git, run, tree_digests, write_tree

FILES = {
    "data/a.bin": os.urandom(20_000),
    "data/sub/b.txt": b"bee\n" * 100,
    "model.bin": os.urandom(5_000),
}


def commit(root: Path, msg: str = "data") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", msg)


def object_path(repo: Path, hexdigest: str) -> Path:
    return repo / ".dvlite" / "cache" / "objects" / hexdigest[:2] / hexdigest[2:]


def objects_by_path(repo: Path) -> dict[str, Path]:
    """Workspace path -> the cache object its pointer (or dir manifest) names."""
    out = {}
    for ptr in ("data.dvl", "model.bin.dvl"):
        doc = yaml.safe_load((repo / ptr).read_text())
        data = ptr[: -len(".dvl")]
        if doc["kind"] == "file":
            out[data] = object_path(repo, doc["digest"])
        else:
            manifest = json.loads(object_path(repo, doc["digest"]).read_bytes())
            for rel, digest, _size, _x in manifest["entries"]:
                out[f"{data}/{rel}"] = object_path(repo, digest)
    return out


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def assert_cache_intact(repo: Path) -> None:
    proc = run(repo, "fsck", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


def setup_data(repo: Path, cache_type: str | None) -> dict[str, Path]:
    if cache_type:
        run(repo, "config", "cache.type", cache_type)
    write_tree(repo, FILES)
    run(repo, "add", "data", "model.bin")
    commit(repo)
    shutil.rmtree(repo / "data")
    (repo / "model.bin").unlink()
    run(repo, "checkout")
    for rel, data in FILES.items():
        assert (repo / rel).read_bytes() == data, rel
    assert "up to date" in run(repo, "status").stdout
    return objects_by_path(repo)


# --- hardlink --------------------------------------------------------------------------

def test_hardlink_checkout_shares_inodes_read_only(repo):
    objects = setup_data(repo, "hardlink")
    assert set(objects) == set(FILES)
    for rel, obj in objects.items():
        ws = os.stat(repo / rel)
        assert ws.st_ino == os.stat(obj).st_ino, rel
        assert ws.st_nlink >= 2
        assert stat.S_IMODE(ws.st_mode) & 0o222 == 0, (rel, oct(ws.st_mode))


def test_relink_turns_added_files_into_hardlinks(repo):
    run(repo, "config", "cache.type", "hardlink")
    write_tree(repo, {"big.bin": b"z" * 10_000})
    run(repo, "add", "big.bin")
    doc = yaml.safe_load((repo / "big.bin.dvl").read_text())
    obj = object_path(repo, doc["digest"])
    assert os.stat(repo / "big.bin").st_ino != os.stat(obj).st_ino  # add leaves the file as is
    assert "0 written" in run(repo, "checkout").stdout  # already right: nothing to do
    assert "1 written" in run(repo, "checkout", "--relink").stdout
    assert os.stat(repo / "big.bin").st_ino == os.stat(obj).st_ino
    assert (repo / "big.bin").read_bytes() == b"z" * 10_000


def test_hardlink_unprotect_gives_private_writable_copy(repo):
    objects = setup_data(repo, "hardlink")
    before = {rel: sha(obj) for rel, obj in objects.items()}
    target = repo / "data" / "a.bin"
    proc = run(repo, "unprotect", "data/a.bin")
    assert "1 file(s) made writable" in proc.stdout
    st = os.stat(target)
    assert st.st_ino != os.stat(objects["data/a.bin"]).st_ino
    assert st.st_nlink == 1
    assert st.st_mode & stat.S_IWUSR
    assert target.read_bytes() == FILES["data/a.bin"]
    assert "up to date" in run(repo, "status").stdout  # same bytes: not a change
    # the other files are still linked
    assert os.stat(repo / "data" / "sub" / "b.txt").st_ino == os.stat(objects["data/sub/b.txt"]).st_ino
    # edit it in place: the cache object keeps its bytes
    with open(target, "r+b") as f:
        f.write(b"EDITED")
    assert {rel: sha(obj) for rel, obj in objects.items()} == before
    assert_cache_intact(repo)
    out = run(repo, "status").stdout
    assert "data: modified" in out and "a.bin" in out
    # and checkout --force brings the original back, linked again
    run(repo, "checkout", "--force")
    assert target.read_bytes() == FILES["data/a.bin"]
    assert os.stat(target).st_ino == os.stat(objects["data/a.bin"]).st_ino


def test_unprotect_a_whole_directory_and_a_file_pointer(repo):
    objects = setup_data(repo, "hardlink")
    proc = run(repo, "unprotect", "data", "model.bin")
    assert "3 file(s) made writable" in proc.stdout
    for rel, obj in objects.items():
        st = os.stat(repo / rel)
        assert st.st_ino != os.stat(obj).st_ino and st.st_mode & stat.S_IWUSR, rel
        assert (repo / rel).read_bytes() == FILES[rel]
    (repo / "model.bin").write_bytes(b"retrained")
    assert_cache_intact(repo)
    assert "model.bin: modified" in run(repo, "status").stdout
    # a second unprotect has nothing to do
    assert "0 file(s) made writable" in run(repo, "unprotect", "data").stdout


def test_executable_in_linked_dir_is_a_copy_that_keeps_its_bit(repo):
    """A shared read-only inode cannot be executable; such files are copied instead."""
    for kind in ("hardlink", "symlink"):
        run(repo, "config", "cache.type", kind)
        write_tree(repo, {f"{kind}/run.sh": b"#!/bin/sh\necho ok\n", f"{kind}/plain.txt": b"p"})
        (repo / kind / "run.sh").chmod(0o755)
        run(repo, "add", kind)
        commit(repo, kind)
        shutil.rmtree(repo / kind)
        run(repo, "checkout")
        script = repo / kind / "run.sh"
        assert not script.is_symlink() and os.stat(script).st_nlink == 1, kind
        assert os.access(script, os.X_OK), kind
        assert subprocess.run([str(script)], capture_output=True, check=True).stdout == b"ok\n"
        plain = repo / kind / "plain.txt"
        assert plain.is_symlink() if kind == "symlink" else os.stat(plain).st_nlink == 2
        assert "up to date" in run(repo, "status").stdout, kind


# --- symlink ---------------------------------------------------------------------------

def test_symlink_checkout_points_into_cache_and_unprotect_replaces_it(repo):
    objects = setup_data(repo, "symlink")
    for rel, obj in objects.items():
        p = repo / rel
        assert p.is_symlink(), rel
        assert os.path.realpath(p) == os.path.realpath(obj), rel
    before = {rel: sha(obj) for rel, obj in objects.items()}
    run(repo, "unprotect", "model.bin", "data/sub/b.txt")
    for rel in ("model.bin", "data/sub/b.txt"):
        p = repo / rel
        assert not p.is_symlink() and p.is_file(), rel
        assert os.stat(p).st_mode & stat.S_IWUSR
        assert p.read_bytes() == FILES[rel]
    assert (repo / "data" / "a.bin").is_symlink()
    assert "up to date" in run(repo, "status").stdout
    (repo / "model.bin").write_bytes(b"new weights")
    with open(repo / "data" / "sub" / "b.txt", "ab") as f:
        f.write(b"more")
    assert {rel: sha(obj) for rel, obj in objects.items()} == before
    assert_cache_intact(repo)
    out = run(repo, "status").stdout
    assert "model.bin: modified" in out and "data: modified" in out


# --- copy (the default on ext4: reflink falls back to copy) -------------------------------

def test_default_copy_gives_independent_files(repo):
    assert run(repo, "config", "cache.type").stdout.strip() == "reflink,copy"
    objects = setup_data(repo, None)
    before = {rel: sha(obj) for rel, obj in objects.items()}
    for rel, obj in objects.items():
        st = os.stat(repo / rel)
        assert not (repo / rel).is_symlink()
        assert st.st_ino != os.stat(obj).st_ino and st.st_nlink == 1, rel
        assert st.st_mode & stat.S_IWUSR, rel
    for rel in objects:
        with open(repo / rel, "r+b") as f:
            f.write(b"scribble")
    assert {rel: sha(obj) for rel, obj in objects.items()} == before
    assert_cache_intact(repo)
    assert "0 file(s) made writable" in run(repo, "unprotect", "data").stdout


def test_cache_on_another_filesystem_falls_back_to_copy(repo, tmp_path):
    """cache.dir on tmpfs: hardlinks cannot cross devices; `hardlink,copy` copies instead."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is not a separate filesystem here")
    cache = shm / f"dvlite-test-{os.getpid()}-{tmp_path.name}"
    try:
        run(repo, "config", "cache.dir", str(cache))
        doc = json.loads(run(repo, "doctor", "--json").stdout)
        assert doc["cache"] == str(cache)
        assert doc["link_types"]["hardlink"] is False  # probed from the cache to the work tree
        assert doc["link_types"]["copy"] is True
        run(repo, "config", "cache.type", "hardlink")
        write_tree(repo, {"d/x.bin": b"x" * 3000, "d/y.bin": b"y"})
        run(repo, "add", "d")
        assert any(p.is_file() for p in (cache / "objects").rglob("*"))
        shutil.rmtree(repo / "d")
        proc = run(repo, "checkout", check=False)  # hardlink only: a clear failure
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert "error:" in proc.stderr
        run(repo, "config", "cache.type", "hardlink,copy")
        run(repo, "checkout")
        assert tree_digests(repo / "d") == {
            "x.bin": hashlib.sha256(b"x" * 3000).hexdigest(),
            "y.bin": hashlib.sha256(b"y").hexdigest(),
        }
        assert os.stat(repo / "d" / "x.bin").st_nlink == 1
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def test_doctor_reports_link_types_here(repo):
    doc = json.loads(run(repo, "doctor", "--json").stdout)
    assert doc["link_types"]["hardlink"] is True
    assert doc["link_types"]["symlink"] is True
    assert doc["link_types"]["copy"] is True
    # no probe files left behind
    leftovers = [p for p in (repo / ".dvlite").rglob("*probe*")]
    assert leftovers == []


# --- reflink on a loop-mounted XFS image ------------------------------------------------

def _sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def reflink_mount(tmp_path_factory):
    """A 300 MB XFS (or btrfs) image, loop-mounted; skipped with the reason when impossible."""
    if os.geteuid() != 0:
        pytest.skip("reflink test needs root to loop-mount a filesystem image")
    mkfs = next(
        ([tool, *opts] for tool, opts in (("mkfs.xfs", ["-q", "-m", "reflink=1"]),
                                          ("mkfs.btrfs", ["-q"]))
         if shutil.which(tool)),
        None,
    )
    if mkfs is None:
        pytest.skip("neither mkfs.xfs (apt: xfsprogs) nor mkfs.btrfs (apt: btrfs-progs) installed")
    base = tmp_path_factory.mktemp("reflinkfs")
    image = base / "fs.img"
    mnt = base / "mnt"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(300 << 20)
    made = _sh(*mkfs, str(image))
    if made.returncode != 0:
        image.unlink()
        pytest.skip(f"{mkfs[0]} failed: {made.stderr.strip()}")
    mounted = _sh("mount", "-o", "loop", str(image), str(mnt))
    if mounted.returncode != 0:
        image.unlink()
        pytest.skip(f"cannot loop-mount a filesystem image here: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        _sh("umount", str(mnt))
        if _sh("mountpoint", "-q", str(mnt)).returncode == 0:
            _sh("umount", "-l", str(mnt))
        image.unlink(missing_ok=True)


def _extents(path: Path) -> list[tuple[int, str]] | None:
    """(physical offset, flags) per extent, from `filefrag -v` (e2fsprogs); None if unavailable."""
    if not shutil.which("filefrag"):
        return None
    proc = _sh("filefrag", "-v", str(path))
    if proc.returncode != 0:
        return None
    out = []
    for line in proc.stdout.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[0].strip().isdigit():
            physical = int(parts[2].split("..")[0].strip())
            out.append((physical, parts[-1].strip()))
    return out


def test_reflink_on_loop_mounted_filesystem(reflink_mount, request):
    root = reflink_mount / f"repo-{request.node.name}-{os.getpid()}"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    run(root, "init")
    run(root, "config", "cache.type", "reflink")
    doc = json.loads(run(root, "doctor", "--json").stdout)
    assert doc["link_types"]["reflink"] is True, doc["link_types"]
    assert "reflink" in run(root, "doctor").stdout.split("link types that work here:")[1]
    payload = os.urandom(1 << 20)
    write_tree(root, {"big.bin": payload, "d/small.txt": b"small"})
    run(root, "add", "big.bin", "d")
    commit(root)
    (root / "big.bin").unlink()
    shutil.rmtree(root / "d")
    proc = run(root, "checkout")  # reflink only: would fail if reflink did not work
    assert "2 written" in proc.stdout
    assert (root / "big.bin").read_bytes() == payload
    assert (root / "d" / "small.txt").read_bytes() == b"small"
    digest = yaml.safe_load((root / "big.bin.dvl").read_text())["digest"]
    obj = object_path(root, digest)
    ws = os.stat(root / "big.bin")
    assert ws.st_ino != os.stat(obj).st_ino and ws.st_nlink == 1  # its own inode...
    assert ws.st_mode & stat.S_IWUSR
    ext_ws, ext_obj = _extents(root / "big.bin"), _extents(obj)
    if ext_ws is not None and ext_obj is not None:  # ...sharing the object's extents
        assert [p for p, _ in ext_ws] == [p for p, _ in ext_obj]
        assert all("shared" in flags for _, flags in ext_ws), ext_ws
    assert "up to date" in run(root, "status").stdout
    # writing to the clone leaves the object alone (copy-on-write)
    before = sha(obj)
    with open(root / "big.bin", "r+b") as f:
        f.write(b"overwritten start")
    assert sha(obj) == before
    assert_cache_intact(root)
    assert "big.bin: modified" in run(root, "status").stdout
    assert "0 file(s) made writable" in run(root, "unprotect", "big.bin").stdout
