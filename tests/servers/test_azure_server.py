"""The Azurite fixture works through fsspec/adlfs alone (no dvlite)."""

from __future__ import annotations

import contextlib
import time

import pytest

fsspec = pytest.importorskip("fsspec")
pytest.importorskip("adlfs")

from .azure import fast_fail, serve
from .base import ServerUnavailable


def _start(stack: contextlib.ExitStack, tmp_path):
    try:
        return stack.enter_context(serve(tmp_path))
    except ServerUnavailable as e:  # pragma: no cover - only where the software is missing
        pytest.skip(str(e))


def _fs(server, options=None):
    protocol = server.url.split("://", 1)[0]
    return fsspec.filesystem(protocol, skip_instance_cache=True, **(options or server.options))


def test_azure_server_roundtrip(tmp_path):
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    with contextlib.ExitStack() as stack:
        server = _start(stack, tmp_path)
        assert server.url.startswith("az://")
        assert all(isinstance(v, (str, int, bool)) for v in server.options.values())
        fs = _fs(server)
        root = server.url
        bare = fs._strip_protocol(root)  # "dvlite-test/store"

        assert fs.find(root) == []
        fs.pipe_file(root + "/a/b", b"xyz")
        assert fs.cat_file(root + "/a/b") == b"xyz"
        assert fs.cat_file(root + "/a/b", start=1, end=3) == b"yz"
        info = fs.info(root + "/a/b")
        assert info["type"] == "file" and info["size"] == 3
        fs.invalidate_cache()
        assert fs.find(root) == [bare + "/a/b"]
        assert fs.ls(root, detail=False) == [bare + "/a"]
        assert fs.info(root + "/a")["type"] == "directory"  # prefix seen as a directory
        assert fs.ls(root + "/a", detail=False) == [bare + "/a/b"]

        # mv = server-side copy + delete (not atomic)
        fs.mv(root + "/a/b", root + "/a/c")
        fs.invalidate_cache()
        assert fs.find(root) == [bare + "/a/c"]
        assert fs.cat_file(root + "/a/c") == b"xyz"

        fs.rm_file(root + "/a/c")
        fs.invalidate_cache()
        assert fs.find(root) == []

        with pytest.raises(FileNotFoundError):
            fs.info(root + "/missing")
        with pytest.raises(FileNotFoundError):
            fs.cat_file(root + "/missing")

        # wrong account key: 403 AuthorizationFailure, for reads, listings and writes alike
        assert server.bad_options is not None
        bad = _fs(server, server.bad_options)
        for op in (
            lambda: bad.info(root + "/x"),
            lambda: bad.find(root),
            lambda: bad.pipe_file(root + "/x", b"1"),
        ):
            with pytest.raises(HttpResponseError) as excinfo:
                op()
            assert excinfo.value.status_code == 403
            assert "authenticate" in str(excinfo.value)

    # server stopped: connection refused. adlfs' default Azure SDK retries take ~80 s and no
    # storage option bounds them; with retries off it fails at once.
    fs = _fs(server)
    fast_fail(fs)
    t0 = time.monotonic()
    with pytest.raises(ServiceRequestError):
        fs.info(server.url + "/a/b")
    assert time.monotonic() - t0 < 10

