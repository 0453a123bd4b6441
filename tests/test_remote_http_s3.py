"""Read-only HTTP remotes, unreachable servers, and the two-user story on S3."""

from __future__ import annotations

import random
import socket

import pytest

from conftest import git, run, tree_digests, write_tree
from remote_helpers import clone, commit_all, configure, fresh_location, serve


def test_http_remote_pulls_and_refuses_push(repo, tmp_path):
    with serve("http", tmp_path / "http") as http:
        write_tree(repo, {"data/a.csv": b"a,b\n1,2\n", "data/b.csv": b"x\n", "model.bin": b"m" * 5000})
        run(repo, "add", "data", "model.bin")
        run(repo, "remote", "add", "disk", http.extra["root"])
        run(repo, "push", "-r", "disk")
        run(repo, "remote", "add", "-d", "web", http.url)
        commit_all(repo, "data")
        other = tmp_path / "other"
        git(tmp_path, "clone", "-q", str(repo), str(other))
        run(other, "pull")
        assert tree_digests(other / "data") == tree_digests(repo / "data")
        assert (other / "model.bin").read_bytes() == b"m" * 5000
        assert "in sync" in run(other, "status", "--cloud").stdout
        out = run(other, "push", check=False)
        assert out.returncode == 5
        assert "read-only" in out.stderr and "Traceback" not in out.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_one_line_and_changes_nothing(repo, tmp_path):
    port = _closed_port()
    write_tree(repo, {"a.txt": b"a"})
    run(repo, "add", "a.txt")
    run(repo, "remote", "add", "-d", "origin", f"webdav://store")
    run(repo, "remote", "modify", "origin", "base_url", f"http://127.0.0.1:{port}")
    before = (repo / ".dvlite/config").read_text()
    import shutil

    shutil.rmtree(repo / ".dvlite/cache")  # so pull has something to ask the server for
    (repo / "a.txt").unlink()
    for args in (["pull"], ["status", "--cloud"]):
        out = run(repo, *args, check=False)
        assert out.returncode == 5, (args, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert lines[0].startswith("error: remote 'origin'") and "cannot reach" in lines[0]
        assert "Traceback" not in out.stderr
    assert (repo / ".dvlite/config").read_text() == before
    assert not (repo / "a.txt").exists()


def test_unreachable_s3_endpoint_fails_fast_with_bounded_retries(repo, tmp_path):
    port = _closed_port()
    write_tree(repo, {"a.txt": b"a"})
    run(repo, "add", "a.txt")
    run(repo, "remote", "add", "-d", "origin", "s3://bucket/store")
    for key, value in {"endpoint_url": f"http://127.0.0.1:{port}", "key": "k", "secret": "s",
                       "config_kwargs.retries.max_attempts": "1"}.items():
        run(repo, "remote", "modify", "--local", "origin", key, value)
    import time

    started = time.monotonic()
    out = run(repo, "push", check=False)
    assert out.returncode == 5 and "cannot reach" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - started < 6  # botocore's default retries take 10 s or more


def _story_data(step: int, rnd: random.Random) -> dict[str, bytes]:
    files = {f"data/part{i}.csv": f"step {step} row {i}\n".encode() * rnd.randint(1, 50) for i in range(20)}
    files["model.bin"] = rnd.randbytes(50_000)
    return files


def test_story_user_a_pushes_three_commits_user_b_pulls_each(repo, tmp_path):
    with serve("s3", tmp_path / "s3") as s3:
        remote = fresh_location(s3)
        configure(repo, remote)
        rnd = random.Random(7)
        commits = []
        for step in range(3):
            files = _story_data(step, rnd)
            if step:
                (repo / "data" / "part0.csv").unlink(missing_ok=True)
                files.pop("data/part0.csv")
            write_tree(repo, files)
            run(repo, "add", "data", "model.bin")
            sha = commit_all(repo, f"step {step}")
            run(repo, "push")
            commits.append((sha, tree_digests(repo / "data"), tree_digests(repo)["model.bin"]))
        b = clone(repo, tmp_path / "user-b", remote)
        run(b, "pull")
        assert tree_digests(b / "data") == commits[-1][1]
        for sha, data_digests, model_digest in reversed(commits):
            git(b, "checkout", "-q", sha)
            run(b, "pull")
            assert tree_digests(b / "data") == data_digests
            assert tree_digests(b)["model.bin"] == model_digest
            assert run(b, "status", "-q").returncode == 0
