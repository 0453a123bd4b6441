"""The read-only HTTP test server, exercised through fsspec's HTTPFileSystem only (no dvlite)."""

from __future__ import annotations

import pathlib
import time

import pytest

from .base import ServerUnavailable


@pytest.fixture
def http_server(tmp_path):
    from . import http

    try:
        with http.serve(tmp_path) as server:
            yield server
    except ServerUnavailable as e:
        pytest.skip(str(e))


def _fs(options):
    import fsspec

    return fsspec.filesystem("http", skip_instance_cache=True, **options)


def test_http_server_reads(http_server):
    server = http_server
    url = server.url
    assert server.name == "http" and url.startswith("http://127.0.0.1:") and url.endswith("/store")
    assert server.bad_options is None
    root = pathlib.Path(server.extra["root"])
    fs = _fs(server.options)
    assert fs.ls(url) == []  # empty to start with (an empty HTML listing)

    # Filled locally, read over HTTP (the server is read-only).
    (root / "a").mkdir()
    (root / "a" / "b").write_bytes(b"xyz1")
    (root / "c").write_bytes(b"hello")
    fs.invalidate_cache()  # fsspec caches listings
    assert fs.cat_file(url + "/a/b") == b"xyz1"
    assert fs.cat_file(url + "/a/b", start=1, end=3) == b"yz"
    assert fs.cat_file(url + "/c", start=3) == b"lo"
    with fs.open(url + "/c", "rb") as f:  # ranged block reads
        f.seek(1)
        assert f.read(2) == b"el"
    info = fs.info(url + "/a/b")
    assert info["type"] == "file" and info["size"] == 4 and info["name"] == url + "/a/b"

    # Listings are scraped from http.server's HTML index pages: full URLs, directories with a
    # trailing "/" and type "directory", and no sizes.
    assert fs.ls(url, detail=False) == [url + "/a/", url + "/c"]
    assert {e["name"]: (e["type"], e["size"]) for e in fs.ls(url)} == {
        url + "/a/": ("directory", None),
        url + "/c": ("file", None),
    }
    assert fs.find(url) == [url + "/a/b", url + "/c"]
    # A directory's info is the HTML page's: type "file", mimetype text/html.
    assert fs.info(url + "/a")["mimetype"] == "text/html"

    with pytest.raises(FileNotFoundError):
        fs.info(url + "/missing")
    with pytest.raises(FileNotFoundError):
        fs.cat_file(url + "/missing")
    with pytest.raises(FileNotFoundError):
        fs.ls(url + "/missing")
    assert not fs.exists(url + "/missing")

    # Read-only: writes are refused by the server, rm/mv are not implemented by fsspec.
    import aiohttp

    with pytest.raises(aiohttp.ClientResponseError) as exc:
        fs.pipe_file(url + "/new", b"x")
    assert exc.value.status == 501
    with pytest.raises(NotImplementedError):
        fs.rm_file(url + "/c")
    with pytest.raises(NotImplementedError):
        fs.mv(url + "/c", url + "/d")


def test_http_server_stopped(tmp_path):
    from . import http

    try:
        with http.serve(tmp_path) as server:
            pathlib.Path(server.extra["root"], "f").write_bytes(b"1")
            assert _fs(server.options).cat_file(server.url + "/f") == b"1"
    except ServerUnavailable as e:
        pytest.skip(str(e))
    assert not (tmp_path / "www").exists()  # cleaned up

    import aiohttp

    fs = _fs(server.options)
    start = time.monotonic()
    with pytest.raises(aiohttp.ClientConnectorError):  # connection refused, at once
        fs.cat_file(server.url + "/f")
    # fs.info turns *any* failure into FileNotFoundError; the cause is kept in __cause__.
    with pytest.raises(FileNotFoundError) as exc:
        fs.info(server.url + "/f")
    assert isinstance(exc.value.__cause__, aiohttp.ClientConnectorError)
    assert time.monotonic() - start < 3
