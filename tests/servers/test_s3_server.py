"""The S3 test server, exercised through fsspec/s3fs only (no dvlite)."""

from __future__ import annotations

import copy
import time

import pytest

from .base import ServerUnavailable


@pytest.fixture
def s3_server(tmp_path):
    from . import s3

    try:
        with s3.serve(tmp_path) as server:
            yield server
    except ServerUnavailable as e:
        pytest.skip(str(e))


def _fs(options, **more):
    import fsspec

    return fsspec.filesystem("s3", skip_instance_cache=True, **options, **more)


def test_s3_server_roundtrip(s3_server):
    server = s3_server
    assert server.name == "s3" and server.url.startswith("s3://")
    assert all(isinstance(v, (str, int, bool)) for v in server.options.values())
    fs = _fs(server.options)
    url = server.url
    bare = url.removeprefix("s3://")

    assert fs.find(url) == []  # empty to start with
    fs.pipe_file(url + "/a/b", b"xyz1")
    assert fs.cat_file(url + "/a/b") == b"xyz1"
    assert fs.cat_file(url + "/a/b", start=1, end=3) == b"yz"
    info = fs.info(url + "/a/b")
    assert info["type"] == "file" and info["size"] == 4 and info["name"] == bare + "/a/b"
    assert fs.find(url) == [bare + "/a/b"]  # names come back without "s3://"
    # "directories" are key prefixes: there is one only while a key lies under it
    assert fs.ls(url, detail=False) == [bare + "/a"]
    assert fs.info(url + "/a")["type"] == "directory"

    fs.mv(url + "/a/b", url + "/c/d")  # copy + delete: not atomic
    fs.invalidate_cache()
    assert fs.find(url) == [bare + "/c/d"]
    assert fs.cat_file(url + "/c/d") == b"xyz1"

    with pytest.raises(FileNotFoundError):
        fs.info(url + "/missing")
    with pytest.raises(FileNotFoundError):
        fs.cat_file(url + "/missing")

    fs.rm_file(url + "/c/d")
    fs.invalidate_cache()
    assert fs.find(url) == []
    assert not fs.exists(url + "/c")  # the "directory" went with its last key


def test_s3_server_rejects_bad_credentials(s3_server):
    assert s3_server.bad_options is not None
    bad = _fs(s3_server.bad_options)
    url = s3_server.url
    _fs(s3_server.options).pipe_file(url + "/f", b"1")
    for op in (
        lambda: bad.cat_file(url + "/f"),
        lambda: bad.info(url + "/f"),
        lambda: bad.ls(url),
        lambda: bad.pipe_file(url + "/g", b"2"),
    ):
        with pytest.raises(PermissionError):  # "Forbidden" or "The request signature ..."
            op()
    assert _fs(s3_server.options).find(url) == [url.removeprefix("s3://") + "/f"]


def test_s3_server_each_serve_is_empty_and_stops(tmp_path):
    from . import s3

    try:
        with s3.serve(tmp_path) as first:
            _fs(first.options).pipe_file(first.url + "/x", b"1")
        with s3.serve(tmp_path) as second:
            assert second.url != first.url
            fs = _fs(second.options)
            assert fs.find(second.url) == []
            assert fs.ls("") == [second.extra["bucket"]]  # the first server's bucket is gone
    except ServerUnavailable as e:
        pytest.skip(str(e))

    # Stopped: connection refused. With the retry bound from extra it fails fast.
    fs = _fs(second.options, config_kwargs=copy.deepcopy(second.extra["config_kwargs"]))
    fs.connect()  # build the botocore client first: slow under load, and not what we time
    start = time.monotonic()
    with pytest.raises(Exception) as exc:
        fs.cat_file(second.url + "/x")
    assert time.monotonic() - start < 3  # ~0.1 s; without config_kwargs ~6-15 s (5 attempts)
    import botocore.exceptions

    assert isinstance(exc.value, botocore.exceptions.EndpointConnectionError)
    assert "Could not connect to the endpoint URL" in str(exc.value)
