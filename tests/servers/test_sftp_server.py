"""The SFTP test server (OpenSSH sshd) reached through fsspec only (no dvlite).

Backend: sshfs (asyncssh), which owns the "sftp" and "ssh" protocols once installed. A smaller
test covers fsspec's built-in paramiko backend for comparison.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .base import ServerUnavailable
from .sftp import serve

fsspec = pytest.importorskip("fsspec")


@pytest.fixture
def server(tmp_path):
    try:
        with serve(tmp_path) as srv:
            yield srv
    except ServerUnavailable as exc:
        pytest.skip(str(exc))


def _fs(options):
    fs = fsspec.filesystem("sftp", skip_instance_cache=True, **options)
    fs.invalidate_cache()
    return fs


def test_sftp_server_roundtrip(server):
    import sshfs

    assert fsspec.get_filesystem_class("sftp") is sshfs.SSHFileSystem
    assert fsspec.get_filesystem_class("ssh") is sshfs.SSHFileSystem
    assert all(isinstance(v, (str, int, bool)) for v in server.options.values())

    # url_to_fs takes host/port from the URL; the options repeat them without conflict
    fs, root = fsspec.core.url_to_fs(server.url, skip_instance_cache=True, **server.options)
    assert type(fs) is sshfs.SSHFileSystem
    store = server.extra["store"]
    assert root == store.as_posix() == fs._strip_protocol(server.url)
    # sshfs's pipe_file/cat_file/ls/mv/rm_file do NOT strip "sftp://host:port" (only info/find
    # and friends do): always use the bare path url_to_fs returns.

    # the location exists and is empty
    assert fs.info(root)["type"] == "directory"
    assert fs.ls(root) == []
    assert fs.find(server.url) == []

    # pipe_file creates missing parents (it runs makedirs(parent, exist_ok=True) each time)
    fs.pipe_file(root + "/a/b", b"xyz12")
    assert fs.cat_file(root + "/a/b") == b"xyz12"
    info = fs.info(root + "/a/b")
    assert info["type"] == "file" and info["size"] == 5
    assert info["name"] == root + "/a/b"  # absolute server path, no protocol
    assert fs.info(root + "/a")["name"] == root + "/a/"  # quirk: directories get a trailing /
    assert fs.info(root + "/a")["type"] == "directory"
    assert fs.find(server.url) == [root + "/a/b"]
    assert fs.ls(root, detail=False) == [root + "/a"]
    assert fs.ls(root + "/a", detail=False) == [root + "/a/b"]
    assert (store / "a" / "b").read_bytes() == b"xyz12"

    # ranged reads through a file object work (see the xfail test for cat_file(start, end))
    with fs.open(root + "/a/b", "rb") as f:
        f.seek(1)
        assert f.read(2) == b"yz"

    # no listing cache in sshfs: an out-of-band write shows at once
    (store / "a" / "disk").write_bytes(b"d")
    assert sorted(fs.ls(root + "/a", detail=False)) == [root + "/a/b", root + "/a/disk"]

    # mv is SFTP posix-rename@openssh.com = rename(2): atomic, replaces an existing target
    fs.pipe_file(root + "/a/c", b"new")
    fs.mv(root + "/a/c", root + "/a/b")
    assert fs.cat_file(root + "/a/b") == b"new"
    assert not fs.exists(root + "/a/c")
    with pytest.raises(FileNotFoundError):
        fs.mv(root + "/a/missing", root + "/a/x")
    with pytest.raises(FileNotFoundError):  # mv does not create the target's parents
        fs.mv(root + "/a/b", root + "/nodir/b")

    # missing paths -> FileNotFoundError
    with pytest.raises(FileNotFoundError):
        fs.info(root + "/nope")
    with pytest.raises(FileNotFoundError):
        fs.cat_file(root + "/nope")
    with pytest.raises(FileNotFoundError):
        fs.rm_file(root + "/nope")
    assert not fs.exists(root + "/nope")

    fs.rm_file(root + "/a/b")
    fs.rm_file(root + "/a/disk")
    assert fs.ls(root + "/a") == []
    fs.rm(root + "/a", recursive=True)
    assert fs.find(root) == []

    # put_file / get_file
    local = server.extra["root"].parent / "local"
    local.write_bytes(b"local data")
    fs.put_file(str(local), root + "/p/q")
    assert fs.cat_file(root + "/p/q") == b"local data"
    fs.get_file(root + "/p/q", str(local) + ".back")
    assert (local.parent / "local.back").read_bytes() == b"local data"


@pytest.mark.xfail(
    strict=False,
    reason="sshfs 2026.8.0 _cat_file ignores start/end and returns the whole file",
)
def test_sftp_ranged_cat_file(server):
    fs, root = fsspec.core.url_to_fs(server.url, skip_instance_cache=True, **server.options)
    fs.pipe_file(root + "/r", b"xyz12")
    assert fs.cat_file(root + "/r", start=1, end=3) == b"yz"


def test_sftp_threads_share_one_instance(server):
    """dvlite's pattern: one filesystem instance used by a pool of 8 threads."""
    fs, root = fsspec.core.url_to_fs(server.url, skip_instance_cache=True, **server.options)

    def work(i):
        for j in range(10):
            path = f"{root}/t/{i}/{j}"
            fs.pipe_file(path, f"{i}-{j}".encode())
            assert fs.cat_file(path) == f"{i}-{j}".encode()
        return i

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(work, range(8))) == list(range(8))
    assert len(fs.find(root + "/t")) == 80


def test_sftp_errors(server):
    root = server.extra["store"].as_posix()

    # wrong (unauthorized) key: rejected when the filesystem is created
    with pytest.raises(PermissionError, match="Permission denied for user"):
        _fs(server.bad_options)

    live = _fs(server.options)
    live.ls(root)

    # server stopped: a new connection is refused at once (ConnectionRefusedError, an OSError)
    server.extra["stop"]()
    start = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        _fs(server.options)
    assert time.monotonic() - start < 5

    # an instance connected before the stop: asyncssh's SFTPNoConnection (not an OSError)
    import asyncssh

    with pytest.raises(asyncssh.sftp.SFTPNoConnection):
        live.ls(root)

    # a port that accepts but never speaks SSH: connect_timeout bounds the wait
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        options = {**server.options, "port": silent.getsockname()[1], "connect_timeout": 1}
        start = time.monotonic()
        with pytest.raises(fsspec.exceptions.FSTimeoutError):  # a TimeoutError, empty message
            _fs(options)
        assert time.monotonic() - start < 5
