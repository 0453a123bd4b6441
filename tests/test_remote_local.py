"""Remotes on a local directory: configuration commands, kills mid-transfer, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import xxhash

from conftest import DVLITE, GIT_ENV, git, run, tree_digests, write_tree
from remote_helpers import commit_all


def _objects_intact(root) -> int:
    count = 0
    for p in root.rglob("*"):
        if p.is_file() and not p.name.startswith(".dvlite-tmp-"):
            assert xxhash.xxh3_128_hexdigest(p.read_bytes()) == p.parent.name + p.name, p
            count += 1
    return count


def _many(repo, n=3000):
    files = {f"data/{i % 30}/{i}.bin": os.urandom(512 + i % 2048) for i in range(n)}
    write_tree(repo, files)
    return files


def _kill_when(cmd_cwd, args, ready) -> int:
    proc = subprocess.Popen([*DVLITE, *args], cwd=cmd_cwd, env={**os.environ, **GIT_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    return proc.wait()


def _packed_intact(packs) -> int:
    """Every visible index names a complete pack whose objects hash to their names."""
    from dvlite.formats.packs import PackIndex

    count = 0
    for idx in packs.glob("*.idx"):
        if idx.name.startswith(".dvlite-tmp-"):
            continue
        index = PackIndex.from_bytes(idx.read_bytes(), str(idx))
        pack = (packs / f"{index.pack}.pack").read_bytes()
        assert xxhash.xxh3_128_hexdigest(pack) == index.pack
        for digest, (offset, length) in index.entries.items():
            assert xxhash.xxh3_128_hexdigest(pack[offset:offset + length]) == digest
            count += 1
    return count


def test_push_killed_midway_resumes_and_leaves_no_bad_object(repo, tmp_path):
    files = {f"data/{i % 8}/{i}.bin": os.urandom(700_000) for i in range(160)}  # 4 packs
    write_tree(repo, files)
    run(repo, "add", "data")
    remote = tmp_path / "remote"
    run(repo, "remote", "add", "-d", "origin", str(remote))
    packs = remote / "packs"

    def one_pack_done() -> bool:
        return packs.exists() and any(p.suffix == ".idx" for p in packs.iterdir())

    code = _kill_when(repo, ["push", "-j", "1"], one_pack_done)
    assert code == -signal.SIGKILL, "push finished before it could be interrupted"
    arrived = _packed_intact(packs)
    assert 0 < arrived < len(files)
    result = json.loads(run(repo, "push", "--json").stdout)
    assert result["present"] == arrived
    assert result["uploaded"] == len(files) + 1 - arrived
    assert _packed_intact(packs) == len(files) + 1


def test_pull_killed_midway_resumes(repo, tmp_path):
    files = {f"data/{i % 8}/{i}.bin": os.urandom(700_000) for i in range(160)}  # 4 packs
    write_tree(repo, files)
    run(repo, "add", "data")
    run(repo, "remote", "add", "-d", "origin", str(tmp_path / "remote"))
    run(repo, "push")
    commit_all(repo, "data")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    packs = other / ".dvlite/cache/packs"

    def one_pack_stored() -> bool:
        return packs.exists() and any(p.suffix == ".idx" for p in packs.iterdir())

    code = _kill_when(other, ["pull", "-j", "1"], one_pack_stored)
    assert code == -signal.SIGKILL, "pull finished before it could be interrupted"
    have = _objects_intact(other / ".dvlite/cache/objects") + _packed_intact(packs)
    assert 1 < have < len(files) + 1  # the manifest and some packed files
    result = json.loads(run(other, "fetch", "--json").stdout)
    assert result["downloaded"] == len(files) + 1 - have
    run(other, "checkout")
    assert tree_digests(other / "data") == tree_digests(repo / "data")


def test_remote_commands_keep_secrets_out_of_git(repo):
    run(repo, "remote", "add", "-d", "store", "s3://bucket/path")
    run(repo, "remote", "modify", "store", "endpoint_url", "http://127.0.0.1:9")
    run(repo, "remote", "modify", "--local", "store", "secret", "s3cr3t")
    shared = (repo / ".dvlite/config").read_text()
    assert "s3cr3t" not in shared and "endpoint_url" in shared
    assert "s3cr3t" in (repo / ".dvlite/config.local").read_text()
    assert git(repo, "check-ignore", ".dvlite/config.local").strip()
    listing = json.loads(run(repo, "remote", "list", "--json").stdout)
    assert listing == [{"name": "store", "url": "s3://bucket/path", "default": True}]
    run(repo, "remote", "rename", "store", "archive")
    assert run(repo, "remote", "default").stdout.strip() == "archive"
    assert "s3cr3t" in (repo / ".dvlite/config.local").read_text()
    run(repo, "remote", "remove", "archive")
    assert "archive" not in (repo / ".dvlite/config").read_text()
    assert "s3cr3t" not in (repo / ".dvlite/config.local").read_text()
    assert run(repo, "remote", "default", check=False).returncode == 1


def test_unknown_remote_and_missing_default_are_one_line_errors(repo):
    write_tree(repo, {"a.txt": b"a"})
    run(repo, "add", "a.txt")
    out = run(repo, "push", check=False)
    assert out.returncode == 2 and "no remote given" in out.stderr and "Traceback" not in out.stderr
    out = run(repo, "push", "-r", "nope", check=False)
    assert out.returncode == 2 and "unknown remote 'nope'" in out.stderr


def test_backend_not_installed_names_the_extra(repo):
    write_tree(repo, {"a.txt": b"a"})
    run(repo, "add", "a.txt")
    run(repo, "remote", "add", "-d", "oci", "oci://bucket@namespace/path")
    out = run(repo, "push", check=False)
    assert out.returncode == 5
    assert "backend is not installed" in out.stderr and "ocifs" in out.stderr
    assert "Traceback" not in out.stderr


def test_remote_with_newer_layout_is_refused(repo, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "dvlite-remote.json").write_text('{"format": "dvlite-remote", "layout": 99}\n')
    write_tree(repo, {"a.txt": b"a"})
    run(repo, "add", "a.txt")
    run(repo, "remote", "add", "-d", "origin", str(remote))
    out = run(repo, "push", check=False)
    assert out.returncode == 5 and "layout 99" in out.stderr and "upgrade dvlite" in out.stderr
    assert not (remote / "objects").exists()


def test_layout_1_remote_of_loose_objects_still_reads_and_is_upgraded_on_push(repo, tmp_path):
    """A remote written before packs (layout 1: one file per object) keeps working."""
    import shutil

    files = {f"data/{i}.txt": f"old {i}\n".encode() for i in range(10)}  # few: loose in the cache
    write_tree(repo, files)
    run(repo, "add", "data")
    commit_all(repo, "data")
    remote = tmp_path / "remote"
    shutil.copytree(repo / ".dvlite/cache/objects", remote / "objects")
    (remote / "dvlite-remote.json").write_text('{"format": "dvlite-remote", "layout": 1}\n')
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    run(other, "remote", "add", "-d", "origin", str(remote))
    run(other, "pull")
    assert {k: v for k, v in tree_digests(other).items() if k.startswith("data/")} == {
        k: v for k, v in tree_digests(repo).items() if k.startswith("data/")}
    assert run(other, "push").stdout.strip() == "Everything is already on origin."
    write_tree(other, {"data/new.txt": b"new"})
    run(other, "add", "data")
    run(other, "push")
    assert json.loads((remote / "dvlite-remote.json").read_text())["layout"] == 2
    assert list((remote / "packs").glob("*.idx"))


def test_push_and_pull_with_nothing_to_do_say_one_line(repo, tmp_path):
    run(repo, "remote", "add", "-d", "origin", str(tmp_path / "remote"))
    assert run(repo, "push").stdout.strip() == "Everything is already on origin."
    assert run(repo, "pull").stdout.strip() == "Everything is up to date."


def test_relative_remote_path_is_relative_to_the_repo_root(repo, tmp_path):
    write_tree(repo, {"sub/deeper/a.txt": b"a"})
    run(repo, "add", "sub/deeper/a.txt")
    run(repo / "sub" / "deeper", "remote", "add", "-d", "origin", "../store")
    run(repo / "sub" / "deeper", "push")
    assert (repo.parent / "store" / "dvlite-remote.json").exists()
    assert not (repo / "sub" / "store").exists()


def test_pull_with_everything_cached_needs_no_remote(repo):
    write_tree(repo, {"a.txt": b"a"})
    run(repo, "add", "a.txt")
    (repo / "a.txt").unlink()
    out = run(repo, "pull")
    assert (repo / "a.txt").read_bytes() == b"a"
    assert "1 written" in out.stdout


def test_pushing_one_file_of_a_directory_is_not_an_error(repo, tmp_path):
    write_tree(repo, {"data/a.txt": b"a", "data/b.txt": b"b"})
    run(repo, "add", "data")
    run(repo, "remote", "add", "-d", "origin", str(tmp_path / "remote"))
    out = run(repo, "push", "data/a.txt")
    assert "pushed 1 object(s)" in out.stdout
    assert "manifest waits" in out.stderr
    full = json.loads(run(repo, "push", "--json").stdout)
    assert full["uploaded"] == 2  # b.txt, then the manifest once all its files are there


def test_remote_add_force_replaces_the_whole_remote(repo):
    run(repo, "remote", "add", "-d", "origin", "s3://a/b")
    run(repo, "remote", "modify", "--local", "origin", "secret", "0123")
    run(repo, "remote", "modify", "origin", "config_kwargs.retries.max_attempts", "1")
    from dvlite.remotes.config import remote_configs
    from dvlite.repo import Repo

    cfg = remote_configs(Repo(str(repo)).config)["origin"]
    assert cfg.options == {"secret": "0123", "config_kwargs": {"retries": {"max_attempts": 1}}}
    run(repo, "remote", "add", "--force", "origin", "s3://c/d")
    cfg = remote_configs(Repo(str(repo)).config)["origin"]
    assert (cfg.url, cfg.options) == ("s3://c/d", {})
    assert run(repo, "remote", "default").stdout.strip() == "origin"


def test_progress_bar_on_a_terminal(repo, tmp_path):
    import pty

    write_tree(repo, {f"data/{i}.bin": os.urandom(2000) for i in range(50)})
    run(repo, "add", "data")
    run(repo, "remote", "add", "-d", "origin", str(tmp_path / "remote"))
    pid, fd = pty.fork()
    if pid == 0:  # the child runs dvlite with a terminal on stdout and stderr
        os.chdir(repo)
        os.execve(DVLITE[0], [*DVLITE, "push", "-j", "4"], {**os.environ, **GIT_ENV})
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output.decode(errors="replace")
    assert b"pushed 51 object(s)" in output
