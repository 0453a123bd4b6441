"""git integration after pull and merge, with real git and the hooks `dvlite install` writes:
post-merge (git merge, git pull), post-rewrite (git rebase, git pull --rebase, amend), their
chaining, and merge-driver attributes that never make a teammate's `git pull` fail."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import GIT_ENV, git, run, write_tree


def git_run(cwd, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}, stdin=subprocess.DEVNULL, check=False)


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message, "--no-verify")


def data_of(repo: Path) -> dict[str, bytes]:
    return {p.relative_to(repo / "data").as_posix(): p.read_bytes()
            for p in sorted((repo / "data").rglob("*")) if p.is_file()}


@pytest.fixture
def team(tmp_path: Path) -> tuple[Path, Path]:
    """Two clones (alice, bob) of one git origin and one dvlite remote, hooks installed in both,
    data/ with two files committed and pushed."""
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "origin.git")
    alice = tmp_path / "alice"
    alice.mkdir()
    git(alice, "init", "-q", "-b", "main")
    git(alice, "remote", "add", "origin", str(tmp_path / "origin.git"))
    run(alice, "init")
    run(alice, "remote", "add", "-d", "store", str(tmp_path / "store"))
    write_tree(alice, {"data/a.csv": b"a,1\n", "data/b.csv": b"b,1\n", "data/sub/c.csv": b"c,1\n"})
    run(alice, "add", "data")
    commit_all(alice, "base")
    run(alice, "push")
    git(alice, "push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), "bob")
    bob = tmp_path / "bob"
    run(bob, "pull")
    for who in (alice, bob):
        run(who, "install")
    return alice, bob


def test_install_writes_the_new_hooks_and_no_gitattributes(team):
    alice, _ = team
    hooks = alice / ".git" / "hooks"
    for name in ("post-merge", "post-rewrite"):
        assert os.access(hooks / name, os.X_OK), name
    assert not (alice / ".gitattributes").exists()
    attributes = (alice / ".git" / "info" / "attributes").read_text().splitlines()
    assert "*.dvl merge=dvlite" in attributes and "dvlite.lock merge=dvlite" in attributes
    assert git(alice, "check-attr", "merge", "--", "x/y.dvl").strip() == "x/y.dvl: merge: dvlite"
    assert git(alice, "status", "--porcelain") == ""  # nothing left in the work tree to commit
    run(alice, "install", "--uninstall")
    assert not (hooks / "post-merge").exists() and not (hooks / "post-rewrite").exists()
    info = alice / ".git" / "info" / "attributes"
    assert not info.exists() or "merge=dvlite" not in info.read_text()


def test_git_merge_of_a_directory_changed_on_both_branches_updates_the_data(team):
    alice, _ = team
    git(alice, "switch", "-q", "-c", "feature")
    (alice / "data" / "b.csv").write_bytes(b"b,2 from feature\n")
    run(alice, "add", "data")
    commit_all(alice, "feature changes b")
    git(alice, "switch", "-q", "main")  # post-checkout puts b,1 back
    assert (alice / "data" / "b.csv").read_bytes() == b"b,1\n"
    (alice / "data" / "a.csv").write_bytes(b"a,2 from main\n")
    (alice / "data" / "sub" / "c.csv").unlink()
    run(alice, "add", "data")
    commit_all(alice, "main changes a, deletes c")
    proc = git_run(alice, "merge", "--no-edit", "feature")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "data checked out" in proc.stdout + proc.stderr  # the post-merge hook ran
    assert data_of(alice) == {"a.csv": b"a,2 from main\n", "b.csv": b"b,2 from feature\n"}
    assert run(alice, "status").stdout.strip() == "Data and pointers are up to date."


def test_git_pull_brings_the_teammates_data(team):
    alice, bob = team
    (bob / "data" / "b.csv").write_bytes(b"b,2 from bob\n")
    (bob / "data" / "new.csv").write_bytes(b"new from bob\n")
    run(bob, "add", "data")
    commit_all(bob, "bob")
    proc = git_run(bob, "push", "-q", "origin", "main")  # pre-push sends the data
    assert proc.returncode == 0, proc.stderr
    (alice / "data" / "a.csv").write_bytes(b"a,2 from alice\n")
    run(alice, "add", "data")
    commit_all(alice, "alice")
    proc = git_run(alice, "-c", "pull.rebase=false", "pull", "--no-edit", "origin", "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = proc.stdout + proc.stderr
    assert "fetched 2 object(s)" in said and "data checked out" in said
    assert data_of(alice) == {"a.csv": b"a,2 from alice\n", "b.csv": b"b,2 from bob\n",
                              "new.csv": b"new from bob\n", "sub/c.csv": b"c,1\n"}
    assert run(alice, "status").stdout.strip() == "Data and pointers are up to date."


def test_git_pull_fast_forward_and_hooks_fetch_false(team):
    alice, bob = team
    (bob / "data" / "a.csv").write_bytes(b"a,3\n")
    run(bob, "add", "data")
    commit_all(bob, "bob")
    git(bob, "push", "-q", "origin", "main")
    run(alice, "config", "hooks.fetch", "false")
    proc = git_run(alice, "pull", "--ff-only", "origin", "main")
    assert proc.returncode == 0
    assert "not in the cache" in proc.stderr and "dvlite pull" in proc.stderr  # told, not fetched
    run(alice, "config", "--unset", "hooks.fetch")
    run(alice, "pull")
    assert (alice / "data" / "a.csv").read_bytes() == b"a,3\n"


def test_git_pull_rebase_updates_the_data(team):
    alice, bob = team
    (bob / "data" / "b.csv").write_bytes(b"b,2 from bob\n")
    run(bob, "add", "data")
    commit_all(bob, "bob")
    git(bob, "push", "-q", "origin", "main")
    (alice / "data" / "a.csv").write_bytes(b"a,2 from alice\n")
    run(alice, "add", "data")
    commit_all(alice, "alice")
    proc = git_run(alice, "pull", "--rebase", "origin", "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert data_of(alice) == {"a.csv": b"a,2 from alice\n", "b.csv": b"b,2 from bob\n",
                              "sub/c.csv": b"c,1\n"}
    assert run(alice, "status").stdout.strip() == "Data and pointers are up to date."


def test_amend_leaves_the_data_alone(team):
    alice, _ = team
    (alice / "data" / "a.csv").write_bytes(b"edited, not added\n")  # would block a checkout
    proc = git_run(alice, "commit", "--amend", "-q", "-m", "reworded", "--no-verify")
    assert proc.returncode == 0
    assert "dvlite" not in proc.stdout + proc.stderr
    assert (alice / "data" / "a.csv").read_bytes() == b"edited, not added\n"


CHAINED = b"""#!/bin/sh
echo "chained $(basename "$0") $*" >> "$(git rev-parse --git-dir)/chained.log"
cat >> "$(git rev-parse --git-dir)/chained.log"
"""


def test_existing_post_merge_and_post_rewrite_hooks_are_chained_and_restored(team):
    alice, bob = team
    run(alice, "install", "--uninstall")
    hooks = alice / ".git" / "hooks"
    for name, mode in (("post-merge", 0o755), ("post-rewrite", 0o750)):
        (hooks / name).write_bytes(CHAINED)
        os.chmod(hooks / name, mode)
    out = run(alice, "install").stdout
    assert "post-merge: installed; the existing hook is kept" in out
    (bob / "data" / "b.csv").write_bytes(b"b,9\n")
    run(bob, "add", "data")
    commit_all(bob, "bob")
    git(bob, "push", "-q", "origin", "main")
    (alice / "model.txt").write_text("alice's own file\n")
    commit_all(alice, "alice")
    proc = git_run(alice, "pull", "--rebase", "origin", "main")
    assert proc.returncode == 0, proc.stderr
    log = (alice / ".git" / "chained.log").read_text()
    assert "chained post-rewrite.dvlite-chained rebase" in log
    assert len(log.splitlines()[1].split()) >= 2  # it got git's `old new` lines on stdin
    assert (alice / "data" / "b.csv").read_bytes() == b"b,9\n"  # and dvlite's hook ran after it
    run(alice, "install", "--uninstall")
    for name, mode in (("post-merge", 0o755), ("post-rewrite", 0o750)):
        assert (hooks / name).read_bytes() == CHAINED and (hooks / name).stat().st_mode & 0o777 == mode


def test_install_before_gitattributes_is_committed_does_not_break_the_next_pull(team):
    """Bob ran `dvlite install` (nothing written to his work tree); Alice commits a
    .gitattributes of her own; Bob's pull must go through."""
    alice, bob = team
    assert not (bob / ".gitattributes").exists()
    (alice / ".gitattributes").write_text("*.csv text\n*.dvl merge=dvlite\n")
    commit_all(alice, "attributes")
    git(alice, "push", "-q", "origin", "main")
    proc = git_run(bob, "pull", "--ff-only", "origin", "main")
    assert proc.returncode == 0, proc.stderr
    assert (bob / ".gitattributes").read_text() == "*.csv text\n*.dvl merge=dvlite\n"
    assert git(bob, "check-attr", "merge", "--", "dvlite.lock").strip() == "dvlite.lock: merge: dvlite"


def test_uninstall_also_takes_lines_an_older_install_put_in_gitattributes(repo: Path):
    (repo / ".gitattributes").write_text("*.png binary\n*.dvl merge=dvlite\ndvlite.lock merge=dvlite\n")
    run(repo, "install")
    assert (repo / ".gitattributes").read_text().count("merge=dvlite") == 2  # left as it is
    out = run(repo, "install", "--uninstall").stdout
    assert (repo / ".gitattributes").read_text() == "*.png binary\n"
    assert "commit that" in out
