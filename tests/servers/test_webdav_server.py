"""The WebDAV test server (wsgidav) reached through fsspec/webdav4 only (no dvlite)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .base import ServerUnavailable
from .webdav import fsspec_options, serve

fsspec = pytest.importorskip("fsspec")


@pytest.fixture
def server(tmp_path):
    try:
        with serve(tmp_path) as srv:
            yield srv
    except ServerUnavailable as exc:
        pytest.skip(str(exc))


def _fs(options):
    fs = fsspec.filesystem("webdav", skip_instance_cache=True, **fsspec_options(options))
    fs.invalidate_cache()
    return fs


def test_webdav_server_roundtrip(server):
    from webdav4.client import HTTPError, ResourceAlreadyExists

    fs = _fs(server.options)
    url = server.url
    root = server.extra["root"]

    # the location exists and is empty
    assert fs.info(url)["type"] == "directory"
    assert fs.ls(url) == []
    assert fs.find(url) == []

    # pipe_file creates the missing parent collections (MKCOL one by one)
    fs.pipe_file(url + "/a/b", b"xyz12")
    assert fs.cat_file(url + "/a/b") == b"xyz12"
    info = fs.info(url + "/a/b")
    assert info["type"] == "file" and info["size"] == 5
    assert info["name"] == "store/a/b"  # names: relative to base_url, no protocol, no "/"
    assert fs.info(url + "/a")["type"] == "directory"
    assert fs.find(url) == ["store/a/b"]
    assert fs.ls(url, detail=False) == ["store/a"]
    assert fs.ls(url + "/a", detail=False) == ["store/a/b"]
    assert fs.cat_file(url + "/a/b", start=1, end=3) == b"yz"
    assert fs.cat_file(url + "/a/b", start=-2) == b"12"
    assert (root / "store" / "a" / "b").read_bytes() == b"xyz12"

    # no listing cache in webdav4: an out-of-band write shows at once
    (root / "store" / "a" / "disk").write_bytes(b"d")
    assert sorted(fs.ls(url + "/a", detail=False)) == ["store/a/b", "store/a/disk"]
    fs.rm_file(url + "/a/disk")

    # put_file also creates parents; pipe_file overwrites
    local = root.parent / "local.bin"
    local.write_bytes(b"local")
    fs.put_file(str(local), url + "/p/q/local")
    assert fs.cat_file(url + "/p/q/local") == b"local"
    fs.pipe_file(url + "/p/q/local", b"again")
    assert fs.cat_file(url + "/p/q/local") == b"again"

    # fs.open(..., "wb") does NOT create parents: 409 on close (the upload happens there;
    # a failed close leaves the spooled file open, and its __del__ would retry the upload)
    f = fs.open(url + "/nodir/f", "wb")
    f.write(b"1")
    with pytest.raises(HTTPError) as exc_info:
        f.close()
    f.discard()
    assert exc_info.value.status_code == 409

    # mv of a file = COPY (Overwrite: F) + DELETE, not a MOVE
    fs.mv(url + "/a/b", url + "/a/b2")
    assert fs.find(url + "/a") == ["store/a/b2"]
    fs.pipe_file(url + "/a/c", b"c")
    with pytest.raises(ResourceAlreadyExists):  # onto an existing file: refused (412)
        fs.mv(url + "/a/b2", url + "/a/c")
    assert fs.cat_file(url + "/a/c") == b"c"
    # a real server-side MOVE (rename) that replaces the target: the client call
    fs.client.move("store/a/b2", "store/a/c", overwrite=True)
    assert fs.find(url + "/a") == ["store/a/c"]
    assert fs.cat_file(url + "/a/c") == b"xyz12"

    # rm_file
    fs.rm_file(url + "/a/c")
    assert not fs.exists(url + "/a/c")
    # beware: rm_file / rm(recursive=False) on a collection DELETEs its whole tree
    fs.pipe_file(url + "/t/u/v", b"v")
    fs.rm(url + "/t")
    assert not fs.exists(url + "/t")

    # missing paths
    for call in (fs.info, fs.cat_file, fs.ls, fs.rm_file):
        with pytest.raises(FileNotFoundError):
            call(url + "/missing")

    # wrong credentials: webdav4.client.HTTPError "received 401 (Not Authorized)"
    bad = _fs(server.bad_options)
    for call in (
        lambda: bad.info(url),
        lambda: bad.ls(url),
        lambda: bad.pipe_file(url + "/z", b"1"),
    ):
        with pytest.raises(HTTPError) as exc_info:
            call()
        assert exc_info.value.status_code == 401
        assert str(exc_info.value) == "received 401 (Not Authorized)"
    assert bad.exists(url) is False  # fsspec's exists() swallows the 401

    # 8 threads on one instance: parents created concurrently, renames racing
    n = 8
    barrier = threading.Barrier(n)

    def job(i):
        for k in range(3):
            barrier.wait(timeout=30)
            path = f"{url}/conc{k}/x/y/f{i}"
            fs.pipe_file(path, b"%d-%d" % (i, k))
            assert fs.cat_file(path) == b"%d-%d" % (i, k)
            fs.info(path)
            fs.ls(f"{url}/conc{k}/x/y")
        fs.pipe_file(f"{url}/race/tmp{i}", b"v%d" % i)
        barrier.wait(timeout=30)
        try:
            fs.client.move(f"store/race/tmp{i}", "store/race/final", overwrite=True)
        except HTTPError as exc:
            # wsgidav's overwriting MOVE is delete-then-rename: a racer can recreate the target
            # in between and the move fails with 500; the backend then checks the final name
            assert exc.status_code == 500
            return False
        return True

    with ThreadPoolExecutor(n) as pool:
        moved = [fut.result() for fut in [pool.submit(job, i) for i in range(n)]]
    for k in range(3):
        assert len(fs.find(f"{url}/conc{k}")) == n
    assert any(moved)
    left = sorted(fs.ls(url + "/race", detail=False))
    assert left[0] == "store/race/final" and len(left) == 1 + moved.count(False)
    assert fs.cat_file(url + "/race/final") in {b"v%d" % i for i in range(n)}


def test_webdav_server_stopped(tmp_path):
    httpx = pytest.importorskip("httpx")
    try:
        with serve(tmp_path) as srv:
            fs = _fs(srv.options)
            fs.pipe_file(srv.url + "/f", b"1")  # a pooled keep-alive connection exists
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    start = time.monotonic()
    with pytest.raises(httpx.ConnectError):  # "[Errno 111] Connection refused"
        fs.info(srv.url + "/f")
    with pytest.raises(httpx.ConnectError):
        _fs(srv.options).cat_file(srv.url + "/f")
    assert fs.exists(srv.url + "/f") is False  # exists() swallows it too
    assert time.monotonic() - start < 5
