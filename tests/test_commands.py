"""Every command through the real CLI: what a user sees, and what ends up on disk."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import git, run, tree_digests, write_tree

import dvlite


def commit(root: Path, msg: str = "data") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", msg)


def no_git_env(tmp_path: Path) -> dict:
    # Make sure git never finds a repository above tmp_path (e.g. if /tmp were inside one).
    return {"GIT_CEILING_DIRECTORIES": str(tmp_path)}


def ignore_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def assert_one_line_error(proc, *needles: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, proc.stderr)


# --- init -----------------------------------------------------------------------------

def test_init_creates_config_and_gitignore_and_prints_git_hint(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    proc = run(root, "init")
    d = root / ".dvlite"
    assert (d / "config").is_file()
    assert (d / "config.local").is_file()
    assert {"/config.local", "/cache/", "/tmp/"} <= set(ignore_lines(d / ".gitignore"))
    assert "git add .dvlite/config .dvlite/.gitignore" in proc.stdout
    # What the hint says to add is exactly what git sees as new; local state stays ignored.
    untracked = git(root, "status", "--porcelain", "--untracked-files=all").split("\n")
    assert sorted(x for x in untracked if x) == ["?? .dvlite/.gitignore", "?? .dvlite/config"]


def test_init_outside_git_refuses_with_exit_2(tmp_path):
    root = tmp_path / "plain"
    root.mkdir()
    proc = run(root, "init", check=False, env=no_git_env(tmp_path))
    assert proc.returncode == 2
    assert_one_line_error(proc, "git")
    assert "--no-scm" in proc.stderr
    assert not (root / ".dvlite").exists()


def test_init_no_scm_works_outside_git(tmp_path):
    root = tmp_path / "plain"
    root.mkdir()
    env = no_git_env(tmp_path)
    proc = run(root, "init", "--no-scm", env=env)
    assert "git add" not in proc.stdout
    write_tree(root, {"data/a.bin": b"a" * 100, "data/b/c.bin": b"c"})
    run(root, "add", "data", env=env)
    assert (root / "data.dvl").is_file()
    before = tree_digests(root / "data")
    (root / "data" / "a.bin").unlink()
    assert "data: modified" in run(root, "status", env=env).stdout
    run(root, "checkout", env=env)
    assert tree_digests(root / "data") == before
    assert "up to date" in run(root, "status", env=env).stdout


def test_reinit_refuses_without_force_and_keeps_cache_with_force(repo):
    write_tree(repo, {"model.bin": b"weights" * 50})
    run(repo, "add", "model.bin")
    proc = run(repo, "init", check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, "already exists")
    assert "--force" in proc.stderr
    run(repo, "config", "core.remote", "shared-store")
    run(repo, "config", "--local", "core.lock_timeout", "4")
    (repo / ".dvlite" / ".gitignore").unlink()
    run(repo, "init", "--force")
    assert (repo / ".dvlite" / ".gitignore").is_file()  # repaired
    assert run(repo, "config", "core.remote").stdout.strip() == "shared-store"  # settings kept
    assert run(repo, "config", "core.lock_timeout").stdout.strip() == "4"
    (repo / "model.bin").unlink()
    run(repo, "checkout")
    assert (repo / "model.bin").read_bytes() == b"weights" * 50


def test_init_in_subdirectory_of_git_repo(tmp_path):
    """Monorepo: .dvlite/ lives in repo/sub; everything is relative to sub."""
    top = tmp_path / "mono"
    sub = top / "sub"
    sub.mkdir(parents=True)
    git(top, "init", "-q", "-b", "main")
    write_tree(top, {"README": b"top\n"})
    commit(top, "init")
    run(sub, "init")
    assert (sub / ".dvlite" / "config").is_file()
    assert not (top / ".dvlite").exists()
    write_tree(sub, {"data/x.csv": b"1,2\n", "data/deep/y.csv": b"3,4\n"})
    proc = run(sub, "add", "data")
    assert "git add data.dvl .gitignore" in proc.stdout
    assert ignore_lines(sub / ".gitignore") == ["/data"]
    assert not (top / ".gitignore").exists()
    commit(top)
    # git sees the pointer, not the data
    assert "sub/data/x.csv" not in git(top, "ls-files")
    assert "sub/data.dvl" in git(top, "ls-files")
    deeper = sub / "data" / "deep"
    assert "up to date" in run(deeper, "status").stdout
    (sub / "data" / "x.csv").write_bytes(b"changed\n")
    out = run(deeper, "status").stdout
    assert "data: modified" in out and "x.csv" in out
    run(deeper, "checkout", "--force")
    assert (sub / "data" / "x.csv").read_bytes() == b"1,2\n"
    # a target given relative to the deeper directory
    (deeper / "y.csv").unlink()
    run(deeper, "checkout", "y.csv")
    assert (deeper / "y.csv").read_bytes() == b"3,4\n"


# --- add ----------------------------------------------------------------------------

def test_add_file_dir_and_quoted_glob(repo):
    write_tree(repo, {
        "single.bin": b"s",
        "images/a.png": b"png-a", "images/sub/b.png": b"png-b",
        "data/one.csv": b"1", "data/two.csv": b"2", "data/notes.txt": b"n",
    })
    proc = run(repo, "add", "single.bin", "images", "data/*.csv")
    out = proc.stdout
    for p in ("single.bin", "images", "data/one.csv", "data/two.csv"):
        assert f"added: {p}" in out
        assert (repo / (p + ".dvl")).is_file()
    assert not (repo / "data" / "notes.txt.dvl").exists()  # the glob did not match it
    assert "images (2 files" in out
    assert ignore_lines(repo / ".gitignore") == ["/single.bin", "/images"]
    assert ignore_lines(repo / "data" / ".gitignore") == ["/one.csv", "/two.csv"]
    hint = out.split("git add", 1)[1]
    for p in ("single.bin.dvl", "images.dvl", "data/one.csv.dvl", "data/two.csv.dvl",
              ".gitignore", "data/.gitignore"):
        assert p in hint
    # git now ignores the data and sees the pointers
    commit(repo)
    files = git(repo, "ls-files").split()
    assert "data/notes.txt" in files and "images.dvl" in files
    assert "images/a.png" not in files and "single.bin" not in files


def test_add_glob_matching_nothing_is_an_error(repo):
    proc = run(repo, "add", "nothing/*.csv", check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, "nothing/*.csv")


def test_pointer_contents(repo):
    write_tree(repo, {"f.bin": b"x" * 1234, "d/a": b"aa", "d/b/c": b"ccc"})
    run(repo, "add", "f.bin", "d")
    f = yaml.safe_load((repo / "f.bin.dvl").read_text())
    d = yaml.safe_load((repo / "d.dvl").read_text())
    assert f["version"] == 1 and d["version"] == 1
    assert f["kind"] == "file" and d["kind"] == "dir"
    assert f["hash"] == d["hash"] == "xxh3-128"
    for p in (f, d):
        assert isinstance(p["digest"], str) and len(p["digest"]) == 32
        int(p["digest"], 16)
    assert f["size"] == 1234
    assert d["size"] == 5 and d["files"] == 2
    assert f["digest"] != d["digest"]


def test_readd_changed_path_updates_pointer_and_gitignore_once(repo):
    write_tree(repo, {"data/a.txt": b"v1", "model.bin": b"m1"})
    run(repo, "add", "data", "model.bin")
    ptr_dir = (repo / "data.dvl").read_bytes()
    ptr_file = (repo / "model.bin.dvl").read_bytes()
    # unchanged re-add: same pointer, said so, nothing to git add
    proc = run(repo, "add", "data", "model.bin")
    assert "unchanged: data" in proc.stdout and "unchanged: model.bin" in proc.stdout
    assert "git add" not in proc.stdout
    assert (repo / "data.dvl").read_bytes() == ptr_dir
    write_tree(repo, {"data/a.txt": b"v2", "data/new.txt": b"n", "model.bin": b"m2-longer"})
    proc = run(repo, "add", "data", "model.bin")
    assert "added: data (2 files" in proc.stdout and "added: model.bin" in proc.stdout
    assert (repo / "data.dvl").read_bytes() != ptr_dir
    assert (repo / "model.bin.dvl").read_bytes() != ptr_file
    assert yaml.safe_load((repo / "data.dvl").read_text())["files"] == 2
    assert yaml.safe_load((repo / "model.bin.dvl").read_text())["size"] == len(b"m2-longer")
    assert ignore_lines(repo / ".gitignore") == ["/data", "/model.bin"]
    # and the new version is what checkout restores
    (repo / "model.bin").unlink()
    run(repo, "checkout")
    assert (repo / "model.bin").read_bytes() == b"m2-longer"


def test_cache_objects_are_read_only(repo):
    write_tree(repo, {"d/a": b"a", "d/b": b"b" * 5_000_000, "f": b"f"})  # small and streamed
    run(repo, "add", "d", "f")
    objects = [p for p in (repo / ".dvlite" / "cache" / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 4  # 3 files + 1 manifest
    for p in objects:
        assert stat.S_IMODE(p.stat().st_mode) & 0o222 == 0, (p, oct(p.stat().st_mode))


def test_executable_bit_survives_checkout_in_a_dir(repo):
    write_tree(repo, {"tools/run.sh": b"#!/bin/sh\necho hi\n", "tools/data.txt": b"plain"})
    (repo / "tools" / "run.sh").chmod(0o755)
    run(repo, "add", "tools")
    commit(repo)
    run(repo, "checkout")  # no-op
    (repo / "tools" / "run.sh").unlink()
    (repo / "tools" / "data.txt").unlink()
    run(repo, "checkout")
    assert os.stat(repo / "tools" / "run.sh").st_mode & stat.S_IXUSR
    assert not os.stat(repo / "tools" / "data.txt").st_mode & stat.S_IXUSR
    assert (repo / "tools" / "run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    # losing the bit is a change status reports
    (repo / "tools" / "run.sh").chmod(0o644)
    out = run(repo, "status").stdout
    assert "tools: modified" in out and "run.sh" in out
    run(repo, "checkout", "--force")
    assert os.stat(repo / "tools" / "run.sh").st_mode & stat.S_IXUSR


# --- status -------------------------------------------------------------------------

def test_status_lists_added_modified_deleted_inside_dir(repo):
    write_tree(repo, {"data/keep": b"k", "data/mod": b"m", "data/gone": b"g"})
    run(repo, "add", "data")
    commit(repo)
    assert run(repo, "status").stdout.strip() == "Data and pointers are up to date."
    (repo / "data" / "mod").write_bytes(b"M")  # same size: found by hashing
    (repo / "data" / "gone").unlink()
    write_tree(repo, {"data/sub/extra": b"e"})
    lines = run(repo, "status").stdout.splitlines()
    assert lines[0] == "data: modified"
    text = "\n".join(lines)
    assert "added: 1" in text and "modified: 1" in text and "deleted: 1" in text
    assert lines.index("    added: 1") < lines.index("        sub/extra")
    assert "        mod" in lines and "        gone" in lines
    assert not any("keep" in ln for ln in lines)


def test_status_flags_deleted_and_new(repo):
    write_tree(repo, {"a.bin": b"a"})
    run(repo, "add", "a.bin")
    commit(repo)
    write_tree(repo, {"b.bin": b"b"})
    run(repo, "add", "b.bin")
    (repo / "a.bin").unlink()
    out = run(repo, "status").stdout
    assert "a.bin: deleted" in out
    assert "b.bin: new" in out


def test_status_caps_long_listings(repo):
    write_tree(repo, {f"data/f{i:02d}": b"x" for i in range(15)})
    run(repo, "add", "data")
    for i in range(15):
        (repo / "data" / f"f{i:02d}").write_bytes(b"changed")
    out = run(repo, "status").stdout
    assert "modified: 15" in out
    assert "... and 5 more" in out
    assert sum(1 for ln in out.splitlines() if ln.strip().startswith("f")) == 10


def test_status_quiet_exit_codes(repo):
    write_tree(repo, {"data/a": b"a"})
    run(repo, "add", "data")
    commit(repo)
    clean = run(repo, "status", "--quiet", check=False)
    assert clean.returncode == 0 and clean.stdout == ""
    (repo / "data" / "a").write_bytes(b"changed")
    dirty = run(repo, "status", "-q", check=False)
    assert dirty.returncode == 1 and dirty.stdout == ""


def test_status_json(repo):
    write_tree(repo, {"data/a": b"a", "data/b": b"b", "f.bin": b"f"})
    run(repo, "add", "data", "f.bin")
    commit(repo)
    doc = json.loads(run(repo, "status", "--json").stdout)
    assert doc["clean"] is True
    assert {p["path"] for p in doc["paths"]} == {"data", "f.bin"}
    (repo / "data" / "a").unlink()
    doc = json.loads(run(repo, "status", "--json").stdout)
    assert doc["clean"] is False
    data = next(p for p in doc["paths"] if p["path"] == "data")
    assert data["kind"] == "dir" and "modified" in data["flags"]
    assert data["changes"] == [{"kind": "deleted", "path": "a"}]
    f = next(p for p in doc["paths"] if p["path"] == "f.bin")
    assert f["flags"] == []


def test_status_with_nothing_tracked(repo):
    assert "No tracked data" in run(repo, "status").stdout


# --- checkout -----------------------------------------------------------------------

def test_checkout_refuses_to_overwrite_unsaved_change(repo):
    write_tree(repo, {"data/a.txt": b"original", "data/b.txt": b"bee", "m.bin": b"model"})
    run(repo, "add", "data", "m.bin")
    commit(repo)
    (repo / "data" / "a.txt").write_bytes(b"precious edit")
    (repo / "m.bin").write_bytes(b"also precious")
    (repo / "data" / "b.txt").unlink()  # would be restored, but nothing may happen
    proc = run(repo, "checkout", check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "error:" in proc.stderr and "not in the cache" in proc.stderr
    listed = proc.stdout + proc.stderr
    assert "data/a.txt" in listed and "m.bin" in listed
    assert (repo / "data" / "a.txt").read_bytes() == b"precious edit"
    assert (repo / "m.bin").read_bytes() == b"also precious"
    assert not (repo / "data" / "b.txt").exists()
    # --force discards the edits
    run(repo, "checkout", "--force")
    assert (repo / "data" / "a.txt").read_bytes() == b"original"
    assert (repo / "data" / "b.txt").read_bytes() == b"bee"
    assert (repo / "m.bin").read_bytes() == b"model"
    assert "up to date" in run(repo, "status").stdout


def test_checkout_refuses_to_delete_unsaved_new_file(repo):
    write_tree(repo, {"data/a.txt": b"a"})
    run(repo, "add", "data")
    write_tree(repo, {"data/new.txt": b"not saved anywhere"})
    proc = run(repo, "checkout", check=False)
    assert proc.returncode == 1
    assert "data/new.txt" in proc.stdout + proc.stderr
    assert (repo / "data" / "new.txt").read_bytes() == b"not saved anywhere"


def test_checkout_overwrites_change_that_is_in_the_cache(repo):
    """Switching versions: the workspace holds v2 (saved), the pointer says v1."""
    write_tree(repo, {"m.bin": b"v1"})
    run(repo, "add", "m.bin")
    commit(repo, "v1")
    write_tree(repo, {"m.bin": b"v2 bytes"})
    run(repo, "add", "m.bin")
    commit(repo, "v2")
    git(repo, "checkout", "-q", "HEAD~1")
    proc = run(repo, "checkout")
    assert "1 written" in proc.stdout
    assert (repo / "m.bin").read_bytes() == b"v1"
    git(repo, "checkout", "-q", "main")
    run(repo, "checkout")
    assert (repo / "m.bin").read_bytes() == b"v2 bytes"


def test_checkout_removes_files_the_manifest_no_longer_has(repo):
    write_tree(repo, {"data/a": b"a"})
    run(repo, "add", "data")
    commit(repo, "v1")
    write_tree(repo, {"data/b": b"b", "data/sub/c": b"c"})
    run(repo, "add", "data")
    commit(repo, "v2")
    git(repo, "checkout", "-q", "HEAD~1")
    proc = run(repo, "checkout")
    assert "2 removed" in proc.stdout
    assert tree_digests(repo / "data").keys() == {"a"}
    assert not (repo / "data" / "sub").exists()  # emptied directory pruned
    git(repo, "checkout", "-q", "main")
    run(repo, "checkout")
    assert tree_digests(repo / "data").keys() == {"a", "b", "sub/c"}


def test_checkout_restores_deleted_file_and_dir(repo):
    write_tree(repo, {"f.bin": b"f" * 10, "d/x": b"x", "d/y/z": b"z"})
    run(repo, "add", "f.bin", "d")
    commit(repo)
    before = tree_digests(repo / "d")
    (repo / "f.bin").unlink()
    shutil.rmtree(repo / "d")
    proc = run(repo, "checkout")
    assert "3 written, 0 removed, 0 unchanged" in proc.stdout
    assert tree_digests(repo / "d") == before
    assert (repo / "f.bin").read_bytes() == b"f" * 10
    proc = run(repo, "checkout")
    assert "0 written, 0 removed, 3 unchanged" in proc.stdout


def test_checkout_target_limited_to_one_path(repo):
    write_tree(repo, {"a.bin": b"a", "b.bin": b"b", "d/x": b"x", "d/y": b"y", "d/sub/z": b"z"})
    run(repo, "add", "a.bin", "b.bin", "d")
    commit(repo)
    for p in ("a.bin", "b.bin", "d/x", "d/y", "d/sub/z"):
        (repo / p).unlink()
    run(repo, "checkout", "a.bin.dvl")  # the pointer names the same target
    assert (repo / "a.bin").exists() and not (repo / "b.bin").exists()
    run(repo, "checkout", "d/x")  # one file inside a tracked dir
    assert (repo / "d" / "x").read_bytes() == b"x"
    assert not (repo / "d" / "y").exists() and not (repo / "d" / "sub" / "z").exists()
    (repo / "d" / "y").write_bytes(b"unsaved")  # outside the target: left alone
    run(repo, "checkout", "d/sub")  # a directory inside a tracked dir
    assert (repo / "d" / "sub" / "z").read_bytes() == b"z"
    assert (repo / "d" / "y").read_bytes() == b"unsaved"
    assert not (repo / "b.bin").exists()
    proc = run(repo, "checkout", "nope.bin", check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, "nope.bin")


def test_checkout_json(repo):
    write_tree(repo, {"a.bin": b"a"})
    run(repo, "add", "a.bin")
    (repo / "a.bin").unlink()
    doc = json.loads(run(repo, "checkout", "--json").stdout)
    assert doc["written"] == ["a.bin"] and doc["missing"] == [] and doc["corrupt"] == []


# --- remove, move -------------------------------------------------------------------

def test_remove_keeps_data_and_drops_pointer_and_ignore_line(repo):
    write_tree(repo, {"data/a": b"a", "keep.bin": b"k"})
    run(repo, "add", "data", "keep.bin")
    commit(repo)
    proc = run(repo, "remove", "data.dvl")
    assert "stopped tracking data" in proc.stdout
    assert "git add data.dvl .gitignore" in proc.stdout
    assert not (repo / "data.dvl").exists()
    assert (repo / "data" / "a").read_bytes() == b"a"
    assert ignore_lines(repo / ".gitignore") == ["/keep.bin"]
    out = run(repo, "status").stdout
    assert "up to date" in out
    assert "data" not in run(repo, "status", "--json").stdout
    # removing by data path works too; an untracked path is refused
    run(repo, "remove", "keep.bin")
    assert not (repo / "keep.bin.dvl").exists() and (repo / "keep.bin").exists()
    proc = run(repo, "remove", "keep.bin", check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, "keep.bin")


def test_move_moves_data_pointer_and_ignore_lines(repo):
    write_tree(repo, {"raw/data.csv": b"a,b\n", "raw/other.csv": b"o"})
    run(repo, "add", "raw/data.csv", "raw/other.csv")
    commit(repo)
    proc = run(repo, "move", "raw/data.csv", "clean/data2.csv")
    assert "moved raw/data.csv -> clean/data2.csv" in proc.stdout
    assert not (repo / "raw" / "data.csv").exists()
    assert not (repo / "raw" / "data.csv.dvl").exists()
    assert (repo / "clean" / "data2.csv").read_bytes() == b"a,b\n"
    assert (repo / "clean" / "data2.csv.dvl").is_file()
    assert ignore_lines(repo / "raw" / ".gitignore") == ["/other.csv"]
    assert ignore_lines(repo / "clean" / ".gitignore") == ["/data2.csv"]
    commit(repo, "moved")
    assert "up to date" in run(repo, "status").stdout
    (repo / "clean" / "data2.csv").unlink()
    run(repo, "checkout")
    assert (repo / "clean" / "data2.csv").read_bytes() == b"a,b\n"


def test_move_dir_into_existing_directory(repo):
    write_tree(repo, {"d/a": b"a", "dest/readme": b"r"})
    run(repo, "add", "d")
    run(repo, "move", "d", "dest")
    assert (repo / "dest" / "d" / "a").read_bytes() == b"a"
    assert (repo / "dest" / "d.dvl").is_file()
    assert ignore_lines(repo / "dest" / ".gitignore") == ["/d"]
    assert "/d" not in ignore_lines(repo / ".gitignore")


def test_move_refuses_to_overwrite(repo):
    write_tree(repo, {"a.bin": b"a", "b.bin": b"b"})
    run(repo, "add", "a.bin")
    proc = run(repo, "move", "a.bin", "b.bin", check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, "b.bin")
    assert (repo / "a.bin").read_bytes() == b"a" and (repo / "b.bin").read_bytes() == b"b"
    assert (repo / "a.bin.dvl").exists() and not (repo / "b.bin.dvl").exists()


# --- config -------------------------------------------------------------------------

def test_config_set_get_list_local_unset(repo):
    run(repo, "config", "core.remote", "origin")
    assert run(repo, "config", "core.remote").stdout.strip() == "origin"
    assert "remote = origin" in (repo / ".dvlite" / "config").read_text()
    run(repo, "config", "--local", "core.lock_timeout", "3")
    assert "lock_timeout = 3" in (repo / ".dvlite" / "config.local").read_text()
    assert "lock_timeout" not in (repo / ".dvlite" / "config").read_text()
    listing = run(repo, "config", "--list").stdout.splitlines()
    assert "core.remote=origin" in listing and "core.lock_timeout=3" in listing
    local_only = run(repo, "config", "--list", "--local").stdout.splitlines()
    assert local_only == ["core.lock_timeout=3"]
    # local overrides shared
    run(repo, "config", "core.lock_timeout", "7")
    assert run(repo, "config", "core.lock_timeout").stdout.strip() == "3"
    run(repo, "config", "--local", "--unset", "core.lock_timeout")
    assert run(repo, "config", "core.lock_timeout").stdout.strip() == "7"
    run(repo, "config", "--unset", "core.remote")
    proc = run(repo, "config", "core.remote", check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    proc = run(repo, "config", "--unset", "core.remote", check=False)
    assert proc.returncode != 0
    assert_one_line_error(proc, "core.remote")


def test_config_named_section(repo):
    run(repo, "config", "remote.store.url", "/tmp/somewhere")
    assert '[remote "store"]' in (repo / ".dvlite" / "config").read_text()
    assert run(repo, "config", "remote.store.url").stdout.strip() == "/tmp/somewhere"


def test_config_rejects_unknown_cache_type_and_bad_key(repo):
    before = (repo / ".dvlite" / "config").read_bytes()
    proc = run(repo, "config", "cache.type", "teleport", check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, "teleport")
    assert "hint:" in proc.stderr and "reflink" in proc.stderr
    assert (repo / ".dvlite" / "config").read_bytes() == before
    proc = run(repo, "config", "nodot", "x", check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, "nodot")


def test_config_cache_type_takes_effect(repo):
    run(repo, "config", "cache.type", "hardlink,copy")
    assert run(repo, "config", "cache.type").stdout.strip() == "hardlink,copy"
    write_tree(repo, {"a.bin": b"a" * 10})
    run(repo, "add", "a.bin")
    (repo / "a.bin").unlink()
    run(repo, "checkout")
    assert os.stat(repo / "a.bin").st_nlink == 2


# --- doctor, version, help ------------------------------------------------------------

def test_doctor_human_and_json(repo):
    out = run(repo, "doctor").stdout
    assert f"dvlite {dvlite.__version__}" in out
    assert "git: " in out and "not found" not in out.split("git: ")[1].splitlines()[0]
    assert "link types that work here:" in out and "copy" in out
    assert str(repo) in out
    doc = json.loads(run(repo, "doctor", "--json").stdout)
    for key in ("dvlite", "python", "platform", "git", "packages", "backends", "repo", "cache",
                "link_types", "cache.type"):
        assert key in doc, key
    assert doc["dvlite"] == dvlite.__version__
    assert doc["repo"] == str(repo)
    assert set(doc["link_types"]) == {"reflink", "hardlink", "symlink", "copy"}
    assert doc["link_types"]["copy"] is True and doc["link_types"]["hardlink"] is True


def test_doctor_outside_a_repo(tmp_path):
    proc = run(tmp_path, "doctor", env=no_git_env(tmp_path))
    assert "repository: none here" in proc.stdout
    assert json.loads(run(tmp_path, "doctor", "--json").stdout)["repo"] is None


def test_version(tmp_path):
    proc = run(tmp_path, "--version")
    assert proc.stdout.strip() == f"dvlite {dvlite.__version__}"


def _command_names(modules=None) -> list[str]:
    from dvlite.cli.app import build_app

    app = build_app() if modules is None else build_app(modules)
    names = []
    for c in app.registered_commands:
        names.append(c.name or c.callback.__name__.replace("_", "-"))
    for g in app.registered_groups:
        names.append(g.name)
    return sorted(names)


def test_the_command_table_names_what_each_cli_module_registers():
    # a run imports only the module the table names for its command: a command missing from
    # the table still runs (through the whole application), one under the wrong module would not
    from dvlite.cli.app import COMMANDS

    for module, names in COMMANDS.items():
        assert _command_names((module,)) == sorted(names), module


@pytest.mark.parametrize("argv", [["status", "--help"], ["exp", "show", "--help"],
                                  ["check-ignore", "--help"]])
def test_a_run_imports_only_the_cli_module_of_its_command(tmp_path, argv):
    code = ("import sys; from dvlite.cli import app; sys.argv = ['dvlite', *sys.argv[1:]]\n"
            "try:\n    app.main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('dvlite.cli.')), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, capture_output=True,
                          text=True)
    loaded = proc.stderr.strip().splitlines()[-1]
    assert "Usage: dvlite " + argv[0] in proc.stdout
    from dvlite.cli.app import MODULE_OF

    others = [f"dvlite.cli.{m}" for m in set(MODULE_OF.values()) - {MODULE_OF[argv[0]]}]
    assert f"'dvlite.cli.{MODULE_OF[argv[0]]}'" in loaded
    assert not [m for m in others if f"'{m}'" in loaded], loaded


def test_every_command_is_listed_in_help(tmp_path):
    out = run(tmp_path, "--help").stdout
    for name in _command_names():
        assert name in out, name


def test_help_for_every_command():
    # In-process (one subprocess per command would cost seconds); the CLI's own parser either way.
    from typer.testing import CliRunner

    from dvlite.cli.app import build_app

    app = build_app()
    runner = CliRunner()
    for command in _command_names():
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage:" in result.output and command in result.output, command


def test_help_in_a_subprocess(tmp_path):
    proc = run(tmp_path, "add", "--help")
    assert "Usage: dvlite add" in proc.stdout and "glob" in proc.stdout
