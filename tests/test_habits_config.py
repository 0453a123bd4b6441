"""Config scopes through the real CLI (system < global < project < local, --show-origin, the
XDG location), a remote defined globally used by two repositories, `cache dir`, and the
group-shared cache's modes (as root: a second user writes into a cache the first one made)."""

from __future__ import annotations

import grp
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import git, run, write_tree


@pytest.fixture
def scopes(tmp_path: Path) -> dict:
    """An environment whose global and system files live in tmp_path (XDG_CONFIG_HOME, and
    DVLITE_CONFIG_SYSTEM as git's GIT_CONFIG_SYSTEM)."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home"),
            "DVLITE_CONFIG_GLOBAL": "",  # empty: the XDG location (conftest may point it away)
            "DVLITE_CONFIG_SYSTEM": str(tmp_path / "etc" / "dvlite" / "config")}


def test_precedence_is_system_global_project_local(repo: Path, scopes: dict, tmp_path: Path):
    for scope, value in (("--system", "1"), ("--global", "2"), ("--project", "3"), ("--local", "4")):
        run(repo, "config", scope, "core.lock_timeout", value, env=scopes, check=True)
    assert (tmp_path / "xdg" / "dvlite" / "config").read_text().count("lock_timeout = 2") == 1
    assert "lock_timeout = 1" in (tmp_path / "etc" / "dvlite" / "config").read_text()
    expected = ["4", "3", "2", "1"]
    for scope in ("--local", "--project", "--global", None):
        assert run(repo, "config", "core.lock_timeout", env=scopes, check=True).stdout.strip() == expected[0]
        if scope:
            run(repo, "config", scope, "--unset", "core.lock_timeout", env=scopes, check=True)
            expected.pop(0)
    assert run(repo, "config", "--system", "core.lock_timeout", env=scopes, check=False).stdout.strip() == "1"


def test_list_show_origin_names_each_file(repo: Path, scopes: dict, tmp_path: Path):
    run(repo, "config", "--global", "core.remote", "team", env=scopes, check=True)
    run(repo, "config", "--local", "hooks.strict", "true", env=scopes, check=True)
    out = run(repo, "config", "--list", "--show-origin", env=scopes, check=True).stdout.splitlines()
    assert f"file:{tmp_path / 'xdg' / 'dvlite' / 'config'}\tcore.remote=team" in out
    assert "file:.dvlite/config.local\thooks.strict=true" in out
    assert "file:.dvlite/config\tcache.type=reflink,copy" in out
    listed = json.loads(run(repo, "config", "--list", "--json", env=scopes, check=True).stdout)
    assert {"key": "core.remote", "value": "team", "scope": "global",
            "path": str(tmp_path / "xdg" / "dvlite" / "config")} in listed
    only_global = run(repo, "config", "--global", "--list", env=scopes, check=True).stdout
    assert only_global == "core.remote=team\n"


def test_without_xdg_the_global_file_is_under_home(repo: Path, scopes: dict, tmp_path: Path):
    env = {**scopes, "XDG_CONFIG_HOME": ""}
    run(repo, "config", "--global", "core.remote", "x", env=env, check=True)
    assert (tmp_path / "home" / ".config" / "dvlite" / "config").is_file()


def test_global_and_system_work_outside_a_repository(tmp_path: Path, scopes: dict):
    outside = tmp_path / "nowhere"
    outside.mkdir()
    run(outside, "config", "--global", "core.lock_timeout", "9", env=scopes, check=True)
    assert run(outside, "config", "--global", "core.lock_timeout", env=scopes, check=True).stdout == "9\n"
    assert run(outside, "config", "--global", "-l", env=scopes, check=True).stdout == "core.lock_timeout=9\n"
    for scope in ("--local", None):  # a repository's files need a repository
        proc = run(outside, "config", *([scope] if scope else []), "core.lock_timeout", env=scopes, check=False)
        assert proc.returncode == 2 and "not a dvlite repository" in proc.stderr


def test_two_scope_flags_are_refused(repo: Path, scopes: dict):
    proc = run(repo, "config", "--global", "--local", "core.remote", "x", env=scopes, check=False)
    assert proc.returncode == 2 and "--global, --local" in proc.stderr


def test_a_remote_defined_globally_serves_every_repository(tmp_path: Path, scopes: dict):
    store = tmp_path / "team-store"
    run(tmp_path, "config", "--global", "remote.team.url", str(store), env=scopes, check=True)
    run(tmp_path, "config", "--global", "core.remote", "team", env=scopes, check=True)
    for name in ("one", "two"):
        root = tmp_path / name
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        run(root, "init", env=scopes, check=True)
        write_tree(root, {f"{name}.bin": name.encode() * 100})
        run(root, "add", f"{name}.bin", env=scopes, check=True)
        git(root, "add", "-A")
        git(root, "commit", "-qm", name)
        assert "team" in run(root, "remote", "list", env=scopes, check=True).stdout
        assert "pushed" in run(root, "push", env=scopes, check=True).stdout
        # the clone knows no remote from git: the global one brings the data
        clone = tmp_path / f"{name}-clone"
        git(tmp_path, "clone", "-q", str(root), str(clone))
        run(clone, "pull", env=scopes, check=True)
        assert (clone / f"{name}.bin").read_bytes() == name.encode() * 100
    assert "remote" not in (tmp_path / "one" / ".dvlite" / "config").read_text()
    (tmp_path / "one-clone" / "one.bin").unlink()
    shutil.rmtree(tmp_path / "one-clone" / ".dvlite" / "cache")
    without = run(tmp_path / "one-clone", "pull", env={**scopes, "XDG_CONFIG_HOME": str(tmp_path / "empty")}, check=False)
    assert without.returncode == 2 and "no remote" in without.stderr  # it came from the global file


def test_cache_dir_shows_and_sets_relative_to_the_config_file(repo: Path, scopes: dict, tmp_path: Path):
    shown = run(repo, "cache", "dir", env=scopes, check=True).stdout.strip()
    assert shown == str(repo / ".dvlite" / "cache")
    sub = repo / "sub"
    sub.mkdir()
    run(sub, "cache", "dir", "../../shared-cache", env=scopes, check=True)  # from sub/
    assert "dir = ../../shared-cache" in (repo / ".dvlite" / "config").read_text()
    assert run(repo, "cache", "dir", env=scopes, check=False).stdout.strip() == str(tmp_path / "shared-cache")
    write_tree(repo, {"f.bin": b"payload" * 10})
    run(repo, "add", "f.bin", env=scopes, check=True)
    assert list((tmp_path / "shared-cache").rglob("*")), "the object went to the configured cache"
    run(sub, "cache", "dir", "--global", "../gcache", env=scopes, check=True)  # typed from sub/
    stored = (tmp_path / "xdg" / "dvlite" / "config").read_text()
    assert f"dir = {os.path.relpath(repo / 'gcache', tmp_path / 'xdg' / 'dvlite')}" in stored
    listed = json.loads(run(repo, "cache", "dir", "--json", env=scopes, check=True).stdout)
    assert listed["scope"] == "project"  # the project's setting wins
    run(repo, "cache", "dir", "--unset", env=scopes, check=True)
    assert run(repo, "cache", "dir", env=scopes, check=False).stdout.strip() == str(repo / "gcache")
    (tmp_path / "xdg" / "dvlite" / "config").write_text("[cache]\ndir = elsewhere\n")
    assert run(repo, "cache", "dir", env=scopes, check=False).stdout.strip() == str(tmp_path / "xdg" / "dvlite" / "elsewhere")


def test_bad_cache_shared_value_is_refused(repo: Path, scopes: dict):
    proc = run(repo, "config", "cache.shared", "world", env=scopes, check=False)
    assert proc.returncode == 2 and "expected group" in proc.stderr
    run(repo, "config", "cache.shared", "group", env=scopes, check=True)


# --- cache.shared = group --------------------------------------------------------------------

def _other_user() -> tuple[int, int]:
    """A uid that is not ours and a group to share with (root runs the suite on CI)."""
    try:
        group = grp.getgrnam("users").gr_gid
    except KeyError:
        group = 100
    return 65534, group


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")


def _reachable(path: Path) -> None:
    """Let other users walk down to `path` (pytest's temp root is private to its user)."""
    for p in (path, *path.parents):
        if p != Path("/"):
            os.chmod(p, os.stat(p).st_mode | 0o005)


def _write_as(uid: int, gid: int, path: Path) -> subprocess.CompletedProcess:
    """Create `path` as another user who is a member of group `gid` (a plain shell: this
    Python may live where that user cannot reach it)."""
    return subprocess.run(["/bin/sh", "-c", 'echo "from another member" > "$1"', "sh", str(path)],
                          user=uid, group=gid, extra_groups=[gid], capture_output=True, text=True,
                          cwd="/", check=False)


@needs_root
def test_share_with_group_lets_another_member_write(repo: Path, tmp_path: Path):
    from dvlite.storage import shared

    write_tree(repo, {"data/a.bin": b"a" * 5000, "data/b.bin": b"b" * 3000})
    run(repo, "add", "data")
    cache = repo / ".dvlite" / "cache"
    uid, gid = _other_user()
    _reachable(cache)
    os.chown(cache, -1, gid)
    fan = next(p for p in (cache / "objects").iterdir() if p.is_dir())
    assert _write_as(uid, gid, fan / "new-object").returncode != 0  # before: only its owner writes

    changed = shared.share_with_group(str(cache))
    assert changed > 0 and shared.is_shared(str(cache))
    for path in [cache, *cache.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            assert mode & stat.S_ISGID and mode & stat.S_IWGRP, path
            assert path.stat().st_gid == gid, path
        else:
            assert mode & stat.S_IRGRP, path
    assert _write_as(uid, gid, fan / "new-object").returncode == 0
    old = os.umask(0o022)
    try:
        shared.use_group_umask()
        (cache / "objects" / "zz").mkdir()  # as dvlite makes a new fan-out directory
    finally:
        os.umask(old)
    made = (cache / "objects" / "zz").stat()
    assert made.st_mode & stat.S_ISGID and made.st_mode & stat.S_IWGRP and made.st_gid == gid
    assert _write_as(uid, gid, cache / "objects" / "zz" / "obj").returncode == 0
    assert shared.share_with_group(str(cache)) == 0  # done once: nothing more to change


def test_group_umask_keeps_others_bits():
    from dvlite.storage.shared import group_umask

    assert group_umask(0o022) == 0o002
    assert group_umask(0o077) == 0o007
    assert group_umask(0o002) == 0o002


# --- once storage/cache.py applies cache.shared --------------------------------------------------

def _cache_wired() -> bool:
    import inspect

    from dvlite.storage.cache import Cache

    return "shared" in inspect.signature(Cache.__init__).parameters


@needs_root
@pytest.mark.skipif(not _cache_wired(), reason="storage/cache.py does not apply cache.shared yet")
def test_two_repositories_share_one_group_cache(tmp_path: Path, scopes: dict):
    """Two projects on one cache with cache.shared = group: every directory the cache gets is
    setgid and group-writable, so another member of the group can add objects anywhere."""
    uid, gid = _other_user()
    cache = tmp_path / "team-cache"
    cache.mkdir()
    os.chown(cache, -1, gid)
    _reachable(cache)
    for name in ("one", "two"):
        root = tmp_path / name
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        run(root, "init", env=scopes, check=True)
        run(root, "config", "cache.dir", str(cache), env=scopes, check=True)
        run(root, "config", "cache.shared", "group", env=scopes, check=True)
        write_tree(root, {f"data/{i}.bin": f"{name}{i}".encode() * 3000 for i in range(20)})
        run(root, "add", "data", env=scopes, check=True)
    dirs = [p for p in [cache, *cache.rglob("*")] if p.is_dir()]
    assert len(dirs) > 3
    for d in dirs:
        mode = d.stat().st_mode
        assert mode & stat.S_ISGID and mode & stat.S_IWGRP and d.stat().st_gid == gid, d
        assert _write_as(uid, gid, d / "by-a-teammate").returncode == 0, d
