"""The fake-gcs-server fixture works through fsspec/gcsfs alone (no dvlite)."""

from __future__ import annotations

import contextlib
import time
import types

import pytest

fsspec = pytest.importorskip("fsspec")
pytest.importorskip("gcsfs")

from .base import ServerUnavailable
from .gcs import serve


def _start(stack: contextlib.ExitStack, tmp_path):
    try:
        return stack.enter_context(serve(tmp_path))
    except ServerUnavailable as e:  # pragma: no cover - only where the software is missing
        pytest.skip(str(e))


def _fs(server, options=None):
    protocol = server.url.split("://", 1)[0]
    return fsspec.filesystem(protocol, skip_instance_cache=True, **(options or server.options))


def test_gcs_server_roundtrip(tmp_path):
    with contextlib.ExitStack() as stack:
        server = _start(stack, tmp_path)
        assert server.url.startswith("gs://")
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

        # mv = copy + delete on GCS (not atomic)
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

        # fake-gcs-server does not check credentials at all
        assert server.bad_options is None

    # server stopped: connection refused. gcsfs retries 6 times with exponential sleeps
    # (about 33 s in all, not configurable); skip the sleeps here, see the slow test below.
    import aiohttp
    import gcsfs.retry

    async def no_sleep(_delay):
        return None

    fs = _fs(server)
    orig = gcsfs.retry.asyncio
    gcsfs.retry.asyncio = types.SimpleNamespace(sleep=no_sleep)
    try:
        t0 = time.monotonic()
        with pytest.raises(aiohttp.ClientConnectorError):
            fs.info(server.url + "/a/b")
        assert time.monotonic() - t0 < 10
    finally:
        gcsfs.retry.asyncio = orig

