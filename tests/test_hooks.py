"""git hooks installed by `dvlite install`: real git checkout/switch/commit/push with the hooks running."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GIT_ENV, git, run, tree_digests, write_tree

V1 = {"data/a.csv": b"a,1\n", "data/b.csv": b"b,1\n", "data/sub/c.csv": b"c,1\n", "model.bin": b"M1" * 500}
V2 = {"data/a.csv": b"a,2 changed\n", "data/sub/c.csv": b"c,1\n", "data/new.csv": b"new\n",
      "model.bin": b"M2" * 700}


def git_run(cwd, *args, env=None) -> subprocess.CompletedProcess:
    """git with its exit code and output (hooks print to stderr)."""
    return subprocess.run(check=False, args=["git", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV, **(env or {})}, stdin=subprocess.DEVNULL)


def digests_of(files: dict[str, bytes]) -> dict[str, str]:
    import hashlib

    return {k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())}


def workspace(repo: Path) -> dict[str, str]:
    """sha256 of the tracked data (data/ and model.bin) as on disk."""
    found = {f"data/{k}": v for k, v in tree_digests(repo / "data").items()} if (repo / "data").exists() else {}
    found = {k: v for k, v in found.items() if not k.endswith(".gitignore")}
    if (repo / "model.bin").exists():
        found["model.bin"] = digests_of({"x": (repo / "model.bin").read_bytes()})["x"]
    return found


def set_version(repo: Path, files: dict[str, bytes]) -> None:
    if (repo / "data").exists():
        shutil.rmtree(repo / "data")
    write_tree(repo, files)


def commit_version(repo: Path, files: dict[str, bytes], message: str) -> str:
    set_version(repo, files)
    run(repo, "add", "data", "model.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def _build_project(root: Path) -> None:
    """root/repo: a dvlite repo with a local-directory remote (root/storage), a bare git origin
    (root/origin.git), the hooks installed, main at V1 and branch `feature` at V2 (main checked out)."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    run(repo, "init")
    run(repo, "remote", "add", "-d", "storage", "../storage")  # relative to the repo root
    git(root, "init", "-q", "--bare", "-b", "main", "origin.git")
    git(repo, "remote", "add", "origin", str(root / "origin.git"))
    run(repo, "install")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "dvlite, remote, hooks")
    commit_version(repo, V1, "v1")
    git(repo, "switch", "-q", "-c", "feature")
    commit_version(repo, V2, "v2")
    git(repo, "switch", "-q", "main")


@pytest.fixture(scope="module")
def project_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hooks-template")
    _build_project(root)
    return root


@pytest.fixture
def project(project_template: Path, tmp_path: Path) -> Path:
    """A private copy of the template project (building one per test costs seconds)."""
    root = tmp_path / "w"
    shutil.copytree(project_template, root, symlinks=True)
    repo = root / "repo"
    git(repo, "remote", "set-url", "origin", str(root / "origin.git"))
    return repo


# --- install ---------------------------------------------------------------------------------------

def test_install_writes_executable_hooks_and_driver_and_is_idempotent(repo: Path):
    out = run(repo, "install").stdout
    assert "post-checkout: installed" in out
    hooks = repo / ".git" / "hooks"
    before = {n: (hooks / n).read_bytes() for n in ("post-checkout", "pre-commit", "pre-push")}
    for name, script in before.items():
        assert os.access(hooks / name, os.X_OK)
        assert sys.executable.encode() in script  # the interpreter that installed them
    assert git(repo, "config", "merge.dvlite.driver").startswith(sys.executable)
    assert "merge-driver %O %A %B %P" in git(repo, "config", "merge.dvlite.driver")
    assert not (repo / ".gitattributes").exists()  # nothing in the work tree (issue 16)
    attributes = (repo / ".git" / "info" / "attributes").read_text()
    assert attributes.splitlines() == ["*.dvl merge=dvlite", "dvlite.lock merge=dvlite"]
    assert git(repo, "check-attr", "merge", "--", "x/y.dvl", "sub/dvlite.lock").splitlines() == [
        "x/y.dvl: merge: dvlite", "sub/dvlite.lock: merge: dvlite"]

    again = run(repo, "install").stdout
    assert "already installed" in again
    assert {n: (hooks / n).read_bytes() for n in before} == before
    assert (repo / ".git" / "info" / "attributes").read_text() == attributes
    assert sorted(p.name for p in hooks.iterdir() if not p.name.endswith(".sample")) == sorted(
        [*before, "post-merge", "post-rewrite"])

    run(repo, "install", "--uninstall")
    assert not any((hooks / n).exists() for n in before)
    assert not (repo / ".git" / "info" / "attributes").exists()
    assert git(repo, "config", "--get", "merge.dvlite.driver", check=False) == ""


def test_install_honours_core_hooks_path_and_keeps_other_attributes(repo: Path):
    git(repo, "config", "core.hooksPath", "githooks")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "attributes").write_text("*.png binary")  # no trailing newline
    run(repo, "install")
    assert (repo / "githooks" / "post-checkout").is_file()
    assert not (repo / ".git" / "hooks" / "post-checkout").exists()
    info = repo / ".git" / "info" / "attributes"
    assert info.read_text() == "*.png binary\n*.dvl merge=dvlite\ndvlite.lock merge=dvlite\n"
    run(repo, "install", "--uninstall")
    assert not (repo / "githooks" / "post-checkout").exists()
    assert info.read_text() == "*.png binary\n"


def test_linked_worktrees_share_the_hooks(project: Path):
    wt = project.parent / "wt"
    proc = git_run(project, "worktree", "add", wt, "feature")
    assert proc.returncode == 0, proc.stderr
    # the hook ran in the new worktree: its pointers are there, its (own) cache is still empty
    assert "not in the cache" in proc.stderr and "dvlite pull" in proc.stderr
    out = run(wt, "install").stdout
    assert f"hooks directory: {project / '.git' / 'hooks'}" in out
    assert "already installed" in out


def test_install_outside_git_history_is_refused(tmp_path: Path):
    root = tmp_path / "plain"
    root.mkdir()
    run(root, "init", "--no-scm")
    proc = run(root, "install", check=False)
    assert proc.returncode == 2
    assert "needs git" in proc.stderr


# --- post-checkout ---------------------------------------------------------------------------------

def test_checkout_and_switch_restore_the_data_of_the_new_head(project: Path):
    assert workspace(project) == digests_of(V1)
    proc = git_run(project, "checkout", "feature")
    assert proc.returncode == 0, proc.stderr
    assert workspace(project) == digests_of(V2)
    assert "dvlite: data checked out" in proc.stderr + proc.stdout
    proc = git_run(project, "switch", "main")
    assert proc.returncode == 0, proc.stderr
    assert workspace(project) == digests_of(V1)
    assert run(project, "status").stdout.strip() == "Data and pointers are up to date."
    # a new branch at the same commit: nothing to do, nothing said
    proc = git_run(project, "switch", "-c", "topic")
    assert proc.returncode == 0 and "dvlite" not in proc.stdout + proc.stderr


def test_file_checkout_leaves_the_data_alone(project: Path):
    proc = git_run(project, "checkout", "feature", "--", "data.dvl")  # flag 0
    assert proc.returncode == 0, proc.stderr
    assert workspace(project) == digests_of(V1)
    assert "modified" in run(project, "status").stdout


@pytest.mark.parametrize("operation", ["merge", "rebase"])
def test_post_checkout_does_nothing_while_a_merge_or_rebase_is_in_progress(project: Path, operation: str):
    # both branches change notes.txt: the merge / rebase stops on that conflict
    (project / "notes.txt").write_text("main\n")
    git(project, "add", "notes.txt")
    git(project, "commit", "-qm", "notes on main")
    git(project, "switch", "-q", "feature")
    (project / "notes.txt").write_text("feature\n")
    git(project, "add", "notes.txt")
    git(project, "commit", "-qm", "notes on feature")
    assert workspace(project) == digests_of(V2)
    if operation == "merge":
        assert git_run(project, "merge", "main").returncode != 0
    else:
        assert git_run(project, "rebase", "main").returncode != 0
    # the pointers now name V1 (rebase: HEAD is main's tip); the data is whatever it was
    set_version(project, V2)
    hook = project / ".git" / "hooks" / "post-checkout"
    proc = subprocess.run(check=False, args=[str(hook), "0" * 40, git(project, "rev-parse", "HEAD").strip(), "1"],
                          cwd=project, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert proc.returncode == 0, proc.stderr
    assert workspace(project) == digests_of(V2)  # untouched


def test_hooks_do_nothing_without_dvlite_dir(project: Path):
    shutil.rmtree(project / ".dvlite")
    for args in (["switch", "-q", "feature"], ["commit", "-q", "--allow-empty", "-m", "x"],
                 ["push", "-q", "origin", "feature"]):
        proc = git_run(project, *args)
        assert proc.returncode == 0, proc.stderr
        assert "dvlite" not in proc.stderr + proc.stdout


def test_post_checkout_refuses_to_overwrite_unrecorded_changes(project: Path):
    (project / "data" / "a.csv").write_bytes(b"edited but not added\n")
    proc = git_run(project, "switch", "feature")
    assert proc.returncode == 1  # git switch exits with the hook's status
    assert "data/a.csv" in proc.stderr and "not checked out" in proc.stderr
    assert (project / "data" / "a.csv").read_bytes() == b"edited but not added\n"


def test_post_checkout_reports_data_missing_from_the_cache(project: Path):
    shutil.rmtree(project / ".dvlite" / "cache")  # e.g. a fresh clone: pointers, no data yet
    shutil.rmtree(project / "data")
    (project / "model.bin").unlink()
    proc = git_run(project, "switch", "feature")
    assert proc.returncode == 0  # the checkout of the commits worked; the hint says what to do
    assert "not in the cache" in proc.stderr and "dvlite pull" in proc.stderr


# --- pre-commit ------------------------------------------------------------------------------------

def test_pre_commit_warns_then_strict_refuses(project: Path):
    (project / "data" / "b.csv").write_bytes(b"b,edited\n")
    (project / "code.py").write_text("print(1)\n")
    git(project, "add", "code.py")
    proc = git_run(project, "commit", "-m", "code")
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "data/" in proc.stderr and "modified: b.csv" in proc.stderr

    run(project, "config", "hooks.strict", "true")
    (project / "code.py").write_text("print(2)\n")
    git(project, "add", "code.py")
    proc = git_run(project, "commit", "-m", "code 2")
    assert proc.returncode != 0
    assert "modified: b.csv" in proc.stderr and "refused" in proc.stderr
    assert git(project, "log", "-1", "--format=%s").strip() == "code"

    run(project, "add", "data")
    git(project, "add", "data.dvl")
    proc = git_run(project, "commit", "-m", "code 2 with data")
    assert proc.returncode == 0, proc.stderr
    assert "dvlite" not in proc.stderr


def test_pre_commit_trusts_the_stat_cache(project: Path):
    """A file whose inode, size and mtime are unchanged is not re-hashed (so an in-place edit that
    keeps them is not seen): the hook costs a stat per file, not a read."""
    old = 1_600_000_000_000_000_000
    (project / "model.bin").write_bytes(b"Z" * 1000)
    os.utime(project / "model.bin", ns=(old, old))
    run(project, "add", "model.bin")
    run(project, "status")  # remembers the stat of the added file
    with open(project / "model.bin", "r+b") as f:
        f.write(b"Y" * 1000)
    os.utime(project / "model.bin", ns=(old, old))
    git(project, "add", "model.bin.dvl")
    proc = git_run(project, "commit", "-m", "model")
    assert proc.returncode == 0 and "model.bin" not in proc.stderr
    # any real stat change is seen
    os.utime(project / "model.bin", ns=(old + 10**9, old + 10**9))
    proc = git_run(project, "commit", "--allow-empty", "-m", "again")
    assert "model.bin" in proc.stderr and "warning" in proc.stderr


# --- pre-push --------------------------------------------------------------------------------------

def clone_and_pull(project: Path, dest: Path, rev: str) -> dict[str, str]:
    if not dest.exists():
        git(dest.parent, "clone", "-q", str(project.parent / "origin.git"), str(dest))
    git(dest, "checkout", "-q", rev)
    run(dest, "pull")
    return workspace(dest)


def test_pre_push_pushes_the_data_of_every_pushed_commit(project: Path, tmp_path: Path):
    v1 = git(project, "rev-parse", "main").strip()
    proc = git_run(project, "push", "origin", "main", "feature")
    assert proc.returncode == 0, proc.stderr
    assert "dvlite: pushed" in proc.stderr + proc.stdout
    assert clone_and_pull(project, project.parent / "clone", "feature") == digests_of(V2)
    assert clone_and_pull(project, project.parent / "clone", v1) == digests_of(V1)
    # nothing new: the hook says so and still lets the push through
    proc = git_run(project, "push", "origin", "main")
    assert proc.returncode == 0


def test_pre_push_sends_only_what_the_pushed_commits_name(project: Path):
    V3 = {**V2, "data/v3-only.csv": b"not committed\n"}
    set_version(project, V3)
    run(project, "add", "data")  # recorded in the cache, not committed
    proc = git_run(project, "push", "origin", "main")
    assert proc.returncode == 0, proc.stderr
    cloud = json.loads(run(project, "status", "--cloud", "--json", check=False).stdout)
    states = {p["path"]: p["state"] for p in cloud["paths"]}
    assert states["data"] == "missing on remote"  # the uncommitted version stayed here
    assert states["model.bin"] == "in sync"
    git(project, "checkout", "-q", "--", ".")  # back to main's pointers
    run(project, "checkout", "-f")
    cloud = json.loads(run(project, "status", "--cloud", "--json").stdout)
    assert {p["state"] for p in cloud["paths"]} == {"in sync"}
    assert git_run(project, "switch", "feature").returncode == 0  # not pushed: its data is not there
    cloud = json.loads(run(project, "status", "--cloud", "--json", check=False).stdout)
    assert {p["state"] for p in cloud["paths"]} == {"missing on remote"}


def test_pre_push_without_a_dvlite_remote_fails_clearly(repo: Path, tmp_path: Path):
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "origin.git")
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    run(repo, "install")
    commit_version(repo, V1, "v1")
    proc = git_run(repo, "push", "origin", "main")
    assert proc.returncode != 0
    assert "no default remote" in proc.stderr and "--no-verify" in proc.stderr
    assert git(tmp_path / "origin.git", "branch", "--list") == ""  # the commits did not go
    assert git_run(repo, "push", "--no-verify", "origin", "main").returncode == 0


# --- chaining and the interpreter ----------------------------------------------------------------

CHAINED_POST_CHECKOUT = b'#!/bin/sh\necho "$@" >> "$(git rev-parse --show-toplevel)/../post-checkout.log"\n'
CHAINED_PRE_COMMIT = b'#!/bin/sh\n[ ! -e "$(git rev-parse --show-toplevel)/../FAIL" ] || { echo veto >&2; exit 3; }\n'
CHAINED_PRE_PUSH = b'#!/bin/sh\ncat > "$(git rev-parse --show-toplevel)/../pre-push.stdin"\n'


def test_existing_hooks_are_chained_and_restored_exactly(project: Path, tmp_path: Path):
    repo = project
    tmp_path = project.parent
    run(repo, "install", "--uninstall")
    hooks = repo / ".git" / "hooks"
    originals = {"post-checkout": (CHAINED_POST_CHECKOUT, 0o750), "pre-commit": (CHAINED_PRE_COMMIT, 0o755),
                 "pre-push": (CHAINED_PRE_PUSH, 0o700)}
    for name, (body, mode) in originals.items():
        (hooks / name).write_bytes(body)
        os.chmod(hooks / name, mode)
    out = run(repo, "install").stdout
    assert "kept as post-checkout.dvlite-chained and runs first" in out
    assert "already installed" in run(repo, "install").stdout  # idempotent: no double chaining
    assert not (hooks / "post-checkout.dvlite-chained.dvlite-chained").exists()
    assert git(repo, "status", "--porcelain") == ""  # .gitattributes as committed
    git(repo, "switch", "-q", "feature")  # the chained post-checkout logs; dvlite restores V2

    # post-checkout: the old hook ran with git's arguments, and dvlite restored the data
    proc = git_run(repo, "switch", "main")
    assert proc.returncode == 0, proc.stderr
    assert workspace(repo) == digests_of(V1)
    assert (tmp_path / "post-checkout.log").read_text().split()[-1] == "1"

    # pre-commit: the old hook's failure fails the commit
    (tmp_path / "FAIL").touch()
    proc = git_run(repo, "commit", "--allow-empty", "-m", "vetoed")
    assert proc.returncode != 0 and "veto" in proc.stderr
    (tmp_path / "FAIL").unlink()
    assert git_run(repo, "commit", "--allow-empty", "-m", "ok").returncode == 0

    # pre-push: the old hook got git's ref lines on stdin, and dvlite pushed the data
    proc = git_run(repo, "push", "origin", "main")
    assert proc.returncode == 0, proc.stderr
    main_sha = git(repo, "rev-parse", "main").strip()
    assert (tmp_path / "pre-push.stdin").read_text() == f"refs/heads/main {main_sha} refs/heads/main {'0' * 40}\n"
    assert "dvlite: pushed" in proc.stderr + proc.stdout

    run(repo, "install", "--uninstall")
    for name, (body, mode) in originals.items():
        assert (hooks / name).read_bytes() == body
        assert stat.S_IMODE((hooks / name).stat().st_mode) == mode
        assert not (hooks / f"{name}.dvlite-chained").exists()


def test_install_refuses_when_a_foreign_hook_and_a_chained_one_both_exist(repo: Path):
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-commit").write_bytes(b"#!/bin/sh\nexit 0\n")
    run(repo, "install")
    (hooks / "pre-commit").write_bytes(b"#!/bin/sh\necho someone else\n")  # replaced dvlite's hook
    proc = run(repo, "install", check=False)
    assert proc.returncode == 2 and "pre-commit.dvlite-chained" in proc.stderr
    assert (hooks / "pre-commit").read_bytes() == b"#!/bin/sh\necho someone else\n"


def test_hook_fails_clearly_when_its_interpreter_is_gone(repo: Path, tmp_path: Path):
    # a throwaway environment that shares this venv's packages, used to install the hooks
    venv = Path(sys.prefix)
    other = tmp_path / "env"
    (other / "bin").mkdir(parents=True)
    (other / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    shutil.copy(venv / "pyvenv.cfg", other / "pyvenv.cfg")
    (other / "lib").symlink_to(venv / "lib")
    proc = subprocess.run(check=False, args=[str(other / "bin" / "python"), "-m", "dvlite", "install"], cwd=repo,
                          capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert proc.returncode == 0, proc.stderr
    assert str(other / "bin" / "python") in (repo / ".git" / "hooks" / "pre-commit").read_text()
    assert git_run(repo, "commit", "--allow-empty", "-m", "works").returncode == 0
    shutil.rmtree(other)
    proc = git_run(repo, "commit", "--allow-empty", "-m", "fails")
    assert proc.returncode == 1
    assert "hook cannot run" in proc.stderr and str(other / "bin" / "python") in proc.stderr
    assert "dvlite install" in proc.stderr


def test_hooks_serve_a_dvlite_root_below_the_git_top(tmp_path: Path):
    top = tmp_path / "mono"
    top.mkdir()
    git(top, "init", "-q", "-b", "main")
    sub = top / "ml"
    sub.mkdir()
    run(sub, "init")
    run(sub, "install")
    assert "--root ml" in (top / ".git" / "hooks" / "post-checkout").read_text()
    git(top, "add", "-A")
    git(top, "commit", "-qm", "init")
    commit_version(sub, V1, "v1")
    git(top, "switch", "-q", "-c", "feature")
    commit_version(sub, V2, "v2")
    proc = git_run(top, "switch", "main")
    assert proc.returncode == 0, proc.stderr
    assert workspace(sub) == digests_of(V1)


# --- the pre-commit framework ----------------------------------------------------------------------

def test_pre_commit_framework_hooks(project: Path, tmp_path: Path):
    """`.pre-commit-hooks.yaml` of this repository, used through the real `pre-commit` package."""
    run(project, "install", "--uninstall")
    hooks_repo = tmp_path / "dvlite-hooks"
    hooks_repo.mkdir()
    shutil.copy(Path(__file__).parents[1] / ".pre-commit-hooks.yaml", hooks_repo / ".pre-commit-hooks.yaml")
    git(hooks_repo, "init", "-q", "-b", "main")
    git(hooks_repo, "add", "-A")
    git(hooks_repo, "commit", "-qm", "hooks")
    rev = git(hooks_repo, "rev-parse", "HEAD").strip()
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hooks_repo}\n  rev: {rev}\n  hooks:\n"
        "  - id: dvlite-pre-commit\n  - id: dvlite-pre-push\n  - id: dvlite-post-checkout\n"
    )
    git(project, "add", "-A")
    git(project, "commit", "-qm", "pre-commit config")
    git(project, "switch", "-q", "feature")  # feature needs the config too (no hooks run here)
    git(project, "cherry-pick", "main")
    git(project, "switch", "-q", "main")
    run(project, "checkout")
    env = {"PRE_COMMIT_HOME": str(tmp_path / "pc-home"),
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    proc = subprocess.run(check=False, args=[sys.executable, "-m", "pre_commit", "install", "--hook-type", "pre-commit",
                           "--hook-type", "pre-push", "--hook-type", "post-checkout"],
                          cwd=project, capture_output=True, text=True, env={**os.environ, **GIT_ENV, **env})
    assert proc.returncode == 0, proc.stdout + proc.stderr

    proc = git_run(project, "switch", "feature", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert workspace(project) == digests_of(V2)

    (project / "data" / "a.csv").write_bytes(b"edited\n")
    proc = git_run(project, "commit", "--allow-empty", "-m", "x", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "modified: a.csv" in proc.stdout + proc.stderr
    # pre-commit stashes unstaged edits of tracked files (.dvlite/config) while hooks run
    run(project, "config", "--local", "hooks.strict", "true")
    proc = git_run(project, "commit", "--allow-empty", "-m", "y", env=env)
    assert proc.returncode != 0 and "modified: a.csv" in proc.stdout + proc.stderr
    run(project, "checkout", "-f", "data")

    proc = git_run(project, "push", "origin", "feature", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert clone_and_pull(project, project.parent / "clone", "feature") == digests_of(V2)
