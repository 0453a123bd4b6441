"""Corrupt cache objects (git t1060-style) and check checkout, fsck and fsck --repair.

Every way an object can go bad is tried: a flipped byte, truncated to nothing,
truncated to half, replaced by another object's bytes, deleted. A corrupt object
must never reach the workspace; the paths that use it are named; exit code 4.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import xxhash
import yaml
from conftest import git, run, write_tree

TMP_MARK = ".dvlite-tmp-"
MODES = ("flip", "zero", "half", "other", "delete")


def xxh(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def obj(repo: Path, digest: str) -> Path:
    return repo / ".dvlite" / "cache" / "objects" / digest[:2] / digest[2:]


def pointer_digest(repo: Path, pointer: str) -> str:
    return yaml.safe_load((repo / pointer).read_bytes())["digest"]


def corrupt(path: Path, mode: str, other: bytes) -> None:
    """Damage a read-only cache object in place, as bit rot or a stray tool would."""
    assert path.is_file(), path
    if mode == "delete":
        path.unlink()
        return
    data = path.read_bytes()
    assert len(data) >= 2
    mid = len(data) // 2
    new = {
        "flip": lambda: data[:mid] + bytes([data[mid] ^ 0x20]) + data[mid + 1:],
        "zero": lambda: b"",
        "half": lambda: data[: len(data) // 2],
        "other": lambda: other,
    }[mode]()
    assert new != data
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:  # same inode, like damage on disk
        f.truncate(0)
        f.write(new)
    os.chmod(path, 0o444)


def problem_sections(stderr: str) -> dict[str, dict[str, str]]:
    """checkout's stderr -> {"corrupt": {path: digest}, "missing": {path: digest}}."""
    out: dict[str, dict[str, str]] = {"corrupt": {}, "missing": {}}
    current = None
    for line in stderr.splitlines():
        if line.startswith("error:"):
            current = (
                "corrupt" if "corrupt in the cache" in line
                else "missing" if "not in the cache" in line
                else None
            )
        elif line.startswith("    ") and current:
            path, _, digest = line.strip().rpartition(" (")
            out[current][path] = digest.rstrip(")")
    return out


def fsck_reports(stderr: str) -> dict[str, dict[str, str]]:
    """fsck's stderr -> {"corrupt": {digest: "used by ..."}, "missing": {...}}."""
    out: dict[str, dict[str, str]] = {"corrupt": {}, "missing": {}}
    for line in stderr.splitlines():
        for label, found in out.items():
            prefix = f"error: {label}: "
            if line.startswith(prefix):
                digest, _, users = line[len(prefix):].partition(" used by ")
                found[digest] = users
    return out


def workspace_files(repo: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo).as_posix()
        if rel.split("/")[0] in (".git", ".dvlite") or rel.endswith((".dvl", ".gitignore")):
            continue
        if p.is_file():
            out[rel] = p.read_bytes()
    return out


def remove_data(repo: Path, paths) -> None:
    for rel in paths:
        p = repo / rel
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def commit_all(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")


# --- file objects: of file pointers and of files inside a directory ----------------------

def test_corrupt_file_objects_are_never_checked_out_and_fsck_repair_add_heals(repo):
    files: dict[str, bytes] = {}
    for mode in (*MODES, "ok"):
        files[f"f_{mode}.bin"] = f"file pointer {mode}\n".encode() * 200
    dir_paths = {
        "flip": "data/flip.txt", "zero": "data/sub/zero.txt", "half": "data/sub/half.txt",
        "other": "data/other.txt", "delete": "data/deep/x/delete.txt",
    }
    for mode, rel in dir_paths.items():
        files[rel] = f"inside a directory: {mode}\n".encode() * 50
    files["data/ok1.txt"] = b"intact one\n" * 30
    files["data/sub/ok2.txt"] = b"intact two\n" * 30
    write_tree(repo, files)
    assert len({xxh(d) for d in files.values()}) == len(files)  # one object per file
    file_pointers = [f"f_{m}.bin" for m in (*MODES, "ok")]
    run(repo, "add", "data", *file_pointers)
    commit_all(repo)
    assert run(repo, "fsck").returncode == 0

    other = files["f_ok.bin"]  # a valid object's bytes, under the wrong name
    bad: dict[str, tuple[str, str]] = {}  # path -> (mode, digest)
    for mode in MODES:
        for rel in (f"f_{mode}.bin", dir_paths[mode]):
            digest = xxh(files[rel])
            corrupt(obj(repo, digest), mode, other)
            bad[rel] = (mode, digest)
    intact = {rel: data for rel, data in files.items() if rel not in bad}

    # checkout after deleting the workspace copies: the intact files come back, the bad never.
    remove_data(repo, ["data", *file_pointers])
    co = run(repo, "checkout", check=False)
    assert co.returncode == 4, co.stdout + co.stderr
    assert "Traceback" not in co.stderr
    assert co.stdout.startswith(f"{len(intact)} written"), co.stdout
    reported = problem_sections(co.stderr)
    corrupt_paths = {rel: d for rel, (m, d) in bad.items() if m != "delete"}
    missing_paths = {rel: d for rel, (m, d) in bad.items() if m == "delete"}
    assert reported["corrupt"] == corrupt_paths, co.stderr
    assert reported["missing"] == missing_paths, co.stderr
    assert workspace_files(repo) == intact  # nothing written from a bad object, under any name
    assert not [p for p in repo.rglob(f"{TMP_MARK}*") if ".dvlite" not in p.parts]

    # fsck names each corrupt and missing digest with the path that uses it.
    fsck = run(repo, "fsck", check=False)
    assert fsck.returncode == 4, fsck.stdout + fsck.stderr
    n_objects = len(files) + 1 - 2  # + the manifest, - the two deleted
    assert f"Checked {n_objects} object(s)." in fsck.stdout
    assert "No problems found." not in fsck.stdout
    found = fsck_reports(fsck.stderr)
    assert found["corrupt"] == {d: rel for rel, (m, d) in bad.items() if m != "delete"}, fsck.stderr
    assert found["missing"] == {d: rel for rel, (m, d) in bad.items() if m == "delete"}, fsck.stderr

    # --repair moves the corrupt objects aside, keeps the intact ones.
    rep = run(repo, "fsck", "--repair", check=False)
    assert rep.returncode == 4, rep.stdout + rep.stderr
    quarantine = repo / ".dvlite" / "cache" / "corrupt"
    for rel, (mode, digest) in bad.items():
        assert not obj(repo, digest).exists(), rel
        assert (quarantine / digest).exists() == (mode != "delete"), rel
    for rel, data in intact.items():
        assert obj(repo, xxh(data)).read_bytes() == data
    after = fsck_reports(run(repo, "fsck", check=False).stderr)
    assert after["corrupt"] == {}
    assert after["missing"] == {d: rel for rel, (m, d) in bad.items()}

    # Re-adding the intact originals heals the cache.
    write_tree(repo, {rel: files[rel] for rel in bad})
    run(repo, "add", "data", *file_pointers)
    healed = run(repo, "fsck", check=False)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert healed.stdout.strip().endswith("No problems found.")
    remove_data(repo, ["data", *file_pointers])
    run(repo, "checkout")
    assert workspace_files(repo) == files
    assert run(repo, "status").stdout.strip() == "Data and pointers are up to date."


# --- the directory manifest -------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_corrupt_manifest_blocks_only_its_directory(repo, mode):
    files = {
        "data/a.txt": b"alpha\n" * 10, "data/sub/b.txt": b"beta\n" * 10, "data/c.txt": b"gamma\n",
        "model.bin": b"\x00model\xff" * 500,
        "small/x.txt": b"another directory\n",  # its manifest is a valid manifest for "other"
    }
    write_tree(repo, files)
    run(repo, "add", "data", "model.bin", "small")
    commit_all(repo)
    manifest = pointer_digest(repo, "data.dvl")
    other = obj(repo, pointer_digest(repo, "small.dvl")).read_bytes()
    corrupt(obj(repo, manifest), mode, other)

    remove_data(repo, ["data", "model.bin", "small"])
    co = run(repo, "checkout", check=False)
    assert co.returncode == 4, co.stdout + co.stderr
    assert "Traceback" not in co.stderr
    kind = "missing" if mode == "delete" else "corrupt"
    assert problem_sections(co.stderr)[kind] == {"data": manifest}, co.stderr
    ws = workspace_files(repo)
    assert ws == {k: v for k, v in files.items() if not k.startswith("data/")}  # the rest restored
    # not even the other manifest's file under data/ when its bytes were substituted
    assert not (repo / "data").exists() or not any((repo / "data").rglob("*"))

    fsck = run(repo, "fsck", check=False)
    assert fsck.returncode == 4, fsck.stdout + fsck.stderr
    assert fsck_reports(fsck.stderr)[kind] == {manifest: "data"}, fsck.stderr

    rep = run(repo, "fsck", "--repair", check=False)
    assert rep.returncode == 4
    assert (repo / ".dvlite" / "cache" / "corrupt" / manifest).exists() == (mode != "delete")
    assert not obj(repo, manifest).exists()

    write_tree(repo, {k: v for k, v in files.items() if k.startswith("data/")})
    run(repo, "add", "data")
    assert pointer_digest(repo, "data.dvl") == manifest  # same data, same manifest
    healed = run(repo, "fsck", check=False)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert "No problems found." in healed.stdout
    remove_data(repo, ["data", "model.bin", "small"])
    run(repo, "checkout")
    assert workspace_files(repo) == files


def test_fsck_on_a_clean_cache(repo):
    write_tree(repo, {"data/a": b"a", "data/b/c": b"c" * 5000, "m.bin": b"m" * 100})
    run(repo, "add", "data", "m.bin")
    fsck = run(repo, "fsck", check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert fsck.stdout.splitlines() == ["Checked 4 object(s).", "No problems found."]
    assert fsck.stderr == ""
    assert not (repo / ".dvlite" / "cache" / "corrupt").exists()
    rep = run(repo, "fsck", "--repair", check=False)
    assert rep.returncode == 0 and "No problems found." in rep.stdout
    assert not (repo / ".dvlite" / "cache" / "corrupt").exists()
