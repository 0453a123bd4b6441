"""The git merge driver `dvlite install` registers: real `git merge` of branches that changed data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import GIT_ENV, git, run, write_tree

from dvlite.formats.manifest import Entry
from dvlite.gitside.merge import merge_entries

BASE = {"a.csv": b"a\n", "b.csv": b"b\n", "c.csv": b"c\n"}


def git_run(cwd, *args) -> subprocess.CompletedProcess:
    return subprocess.run(check=False, args=["git", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}, stdin=subprocess.DEVNULL)


def commit_data(repo: Path, change: dict[str, bytes | None], message: str) -> None:
    for rel, data in change.items():
        if data is None:
            (repo / "data" / rel).unlink()
        else:
            write_tree(repo / "data", {rel: data})
    run(repo, "add", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


@pytest.fixture
def branches(repo: Path) -> Path:
    """data/ at BASE on main, with the merge driver (and hooks) installed; returns the repo."""
    run(repo, "install")
    commit_data(repo, BASE, "base")
    return repo


def two_branches(repo: Path, ours: dict, theirs: dict) -> subprocess.CompletedProcess:
    """`theirs` committed on branch `other`, `ours` on main; then `git merge other` on main."""
    git(repo, "switch", "-q", "-c", "other")
    commit_data(repo, theirs, "theirs")
    git(repo, "switch", "-q", "main")
    commit_data(repo, ours, "ours")
    return git_run(repo, "merge", "--no-edit", "other")


def data_files(repo: Path) -> dict[str, bytes]:
    return {p.relative_to(repo / "data").as_posix(): p.read_bytes()
            for p in sorted((repo / "data").rglob("*")) if p.is_file()}


def test_changes_to_different_files_merge_into_the_union(branches: Path):
    repo = branches
    proc = two_branches(repo, {"ours-new.csv": b"x\n"},
                        {"theirs-new.csv": b"y\n", "c.csv": b"c changed\n", "a.csv": None})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "merged data.dvl file by file" in proc.stderr
    assert git(repo, "status", "--porcelain") == ""
    run(repo, "checkout")
    assert data_files(repo) == {"b.csv": b"b\n", "c.csv": b"c changed\n", "ours-new.csv": b"x\n",
                                "theirs-new.csv": b"y\n"}
    assert run(repo, "status").stdout.strip() == "Data and pointers are up to date."
    # the merge commit's pointer names a manifest in the cache: a fresh `dvlite add` agrees
    before = (repo / "data.dvl").read_bytes()
    run(repo, "add", "data")
    assert (repo / "data.dvl").read_bytes() == before


def test_same_file_changed_differently_is_a_conflict_naming_the_files(branches: Path):
    repo = branches
    proc = two_branches(repo, {"c.csv": b"ours\n", "b.csv": None, "ours-new.csv": b"x\n"},
                        {"c.csv": b"theirs\n", "b.csv": b"b edited\n", "theirs-new.csv": b"y\n"})
    assert proc.returncode != 0
    assert "data/c.csv" in proc.stderr and "data/b.csv" in proc.stderr
    assert "2 file(s) changed differently on both branches" in proc.stderr
    assert "CONFLICT" in proc.stdout
    assert git(repo, "ls-files", "-u", "data.dvl") != ""  # git marks it unmerged
    # what merged cleanly is in the pointer; the conflicting files keep our version
    run(repo, "checkout")
    assert data_files(repo) == {"a.csv": b"a\n", "c.csv": b"ours\n", "ours-new.csv": b"x\n",
                                "theirs-new.csv": b"y\n"}


def test_a_file_pointer_changed_on_both_sides_is_a_conflict(repo: Path):
    run(repo, "install")
    write_tree(repo, {"model.bin": b"base"})
    run(repo, "add", "model.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "switch", "-q", "-c", "other")
    (repo / "model.bin").write_bytes(b"theirs")
    run(repo, "add", "model.bin")
    git(repo, "commit", "-qam", "theirs")
    git(repo, "switch", "-q", "main")
    (repo / "model.bin").write_bytes(b"ours")
    run(repo, "add", "model.bin")
    git(repo, "commit", "-qam", "ours")
    ours = (repo / "model.bin.dvl").read_bytes()
    proc = git_run(repo, "merge", "--no-edit", "other")
    assert proc.returncode != 0
    assert "cannot merge model.bin.dvl: changed differently on both sides" in proc.stderr
    assert (repo / "model.bin.dvl").read_bytes() == ours  # a valid pointer: ours, as git does for binaries
    git(repo, "checkout", "--theirs", "model.bin.dvl")
    run(repo, "checkout")
    assert (repo / "model.bin").read_bytes() == b"theirs"


def lock_doc(stages: dict) -> str:
    return yaml.safe_dump({"schema": 1, "stages": stages}, sort_keys=True)


def stage(cmd: str, digest: str) -> dict:
    return {"cmd": cmd, "outs": [{"path": "out", "kind": "file", "hash": "xxh3-128", "digest": digest,
                                  "size": 1, "files": 1, "cache": True}]}


D = ["0" * 31 + str(i) for i in range(6)]


def test_dvlite_lock_merges_stage_by_stage_and_leaves_clashes_for_repro(repo: Path):
    run(repo, "install")
    base = {"prep": stage("prep", D[0]), "train": stage("train", D[0]), "eval": stage("eval", D[0])}
    (repo / "dvlite.lock").write_text(lock_doc(base))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "switch", "-q", "-c", "other")
    (repo / "dvlite.lock").write_text(lock_doc({**base, "prep": stage("prep", D[1]), "train": stage("train", D[2]),
                                                "report": stage("report", D[3])}))
    git(repo, "commit", "-qam", "theirs")
    git(repo, "switch", "-q", "main")
    (repo / "dvlite.lock").write_text(lock_doc({**base, "train": stage("train", D[4]), "eval": stage("eval", D[5])}))
    git(repo, "commit", "-qam", "ours")
    proc = git_run(repo, "merge", "--no-edit", "other")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "train" in proc.stderr and "dvlite repro" in proc.stderr
    merged = yaml.safe_load((repo / "dvlite.lock").read_text())
    digests = {name: s["outs"][0]["digest"] for name, s in merged["stages"].items()}
    assert digests == {"prep": D[1], "train": D[4], "eval": D[5], "report": D[3]}
    assert merged["schema"] == 1


def test_manifest_missing_here_is_fetched_from_the_default_remote(repo: Path, tmp_path: Path):
    """A teammate's branch: its manifest was never in this cache; the driver fetches it."""
    run(repo, "remote", "add", "-d", "storage", str(tmp_path / "storage"))
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "origin.git")
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    run(repo, "install")
    commit_data(repo, BASE, "base")
    assert git_run(repo, "push", "-q", "origin", "main").returncode == 0
    mate = tmp_path / "mate"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(mate))
    run(mate, "install")
    run(mate, "pull")
    git(mate, "switch", "-q", "-c", "topic")
    commit_data(mate, {"mate.csv": b"from a teammate\n"}, "mate")
    assert git_run(mate, "push", "-q", "origin", "topic").returncode == 0  # pre-push sends the data

    commit_data(repo, {"mine.csv": b"mine\n"}, "mine")
    git(repo, "fetch", "-q", "origin")
    proc = git_run(repo, "merge", "--no-edit", "origin/topic")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run(repo, "pull")
    assert data_files(repo) == {**BASE, "mine.csv": b"mine\n", "mate.csv": b"from a teammate\n"}


def test_merge_driver_without_a_cached_manifest_or_remote_keeps_ours_and_says_why(branches: Path):
    repo = branches
    git(repo, "switch", "-q", "-c", "other")
    commit_data(repo, {"t.csv": b"t\n"}, "theirs")
    theirs_manifest = (repo / "data.dvl").read_text().split("digest: ")[1].split()[0]
    git(repo, "switch", "-q", "main")
    commit_data(repo, {"o.csv": b"o\n"}, "ours")
    obj = next((repo / ".dvlite" / "cache").rglob(theirs_manifest[2:]))
    obj.chmod(0o644)
    obj.unlink()
    ours = (repo / "data.dvl").read_bytes()
    proc = git_run(repo, "merge", "--no-edit", "other")
    assert proc.returncode != 0
    assert theirs_manifest in proc.stderr and "not in the cache" in proc.stderr
    assert (repo / "data.dvl").read_bytes() == ours


def test_merge_entries_file_against_directory_keeps_ours():
    def e(path: str, digest: str = "1" * 32) -> Entry:
        return Entry(path, digest, 1, False)

    base: dict[str, Entry] = {}
    ours = {"x": e("x")}
    theirs = {"x/y": e("x/y"), "z": e("z")}
    merged, conflicts = merge_entries(base, ours, theirs)
    assert [m.path for m in merged] == ["x", "z"]
    assert conflicts == ["x", "x/y"]
