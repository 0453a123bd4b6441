"""One Storage contract, every place that holds objects: the local cache and each real remote
backend (local directory, S3 on moto, SFTP on openssh, Azure on azurite, GCS on
fake-gcs-server, WebDAV on wsgidav), all driven through the same interface."""

from __future__ import annotations

import os

import pytest

from dvlite.errors import UnsafePathError
from dvlite.fsutil import TMP_MARK
from dvlite.remotes.backend import Remote
from dvlite.remotes.config import RemoteConfig
from dvlite.storage.base import Storage
from dvlite.storage.cache import Cache
from dvlite.storage.layout import object_key, pack_key, run_key
from remote_helpers import BACKENDS, fresh_location, serve

DIGEST = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module", params=["cache", *BACKENDS])
def place(request, tmp_path_factory):
    """None for the local cache, else a running server of that backend."""
    if request.param == "cache":
        yield None
        return
    with serve(request.param, tmp_path_factory.mktemp(request.param)) as srv:
        yield srv


@pytest.fixture
def store(place, tmp_path) -> Storage:
    if place is None:
        return Cache(str(tmp_path / "cache"))
    srv = fresh_location(place)
    return Remote(RemoteConfig("contract", srv.url, dict(srv.options)))


def test_store_load_stat_and_ranges(store: Storage):
    data = bytes(range(256)) * 40
    store.store(object_key(DIGEST), data)
    assert store.load(object_key(DIGEST)) == data
    assert store.stat(object_key(DIGEST)) == len(data)
    assert store.load(object_key(DIGEST), 10, 20) == data[10:20]
    assert store.load(object_key(DIGEST), 10_000, 20_000) == data[10_000:]  # past the end: what is there
    with store.open(object_key(DIGEST)) as f:
        assert f.read() == data
    assert store.exists(object_key(DIGEST))


def test_absent_keys_are_file_not_found_and_delete_is_quiet(store: Storage):
    with pytest.raises(FileNotFoundError):
        store.load(object_key(DIGEST))
    with pytest.raises(FileNotFoundError):
        store.stat(pack_key(DIGEST, "idx"))
    assert not store.exists(run_key(DIGEST))
    store.delete(object_key(DIGEST))  # nothing there: not an error


def test_list_gives_every_blob_under_a_prefix_with_sizes(store: Storage):
    store.store(pack_key(DIGEST, "pack"), b"p" * 100)
    store.store(pack_key(DIGEST, "idx"), b"i" * 7)
    store.store(run_key(DIGEST), b"r")
    listed = store.list("packs")
    assert sorted(listed) == [pack_key(DIGEST, "idx"), pack_key(DIGEST, "pack")]
    assert {k: v.size for k, v in listed.items()} in (
        {pack_key(DIGEST, "idx"): 7, pack_key(DIGEST, "pack"): 100},
    )
    assert store.list("objects") == {}
    store.delete(pack_key(DIGEST, "pack"))
    assert sorted(store.list("packs")) == [pack_key(DIGEST, "idx")]


def test_store_replaces_and_store_file_fetch_file_round_trip(store: Storage, tmp_path):
    store.store(run_key(DIGEST), b"first")
    store.store(run_key(DIGEST), b"second")
    assert store.load(run_key(DIGEST)) == b"second"
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    store.store_file(object_key(DIGEST), str(big))
    back = tmp_path / "back.bin"
    store.fetch_file(object_key(DIGEST), str(back))
    assert back.read_bytes() == big.read_bytes()


@pytest.mark.parametrize("key", ["../escape", "objects/../../x", "/abs", "objects//x", "",
                                 f"objects/ab/{TMP_MARK}half", ".git/config"])
def test_keys_are_validated_before_anything_is_touched(store: Storage, key):
    with pytest.raises(UnsafePathError):
        store.store(key, b"x")
    with pytest.raises(UnsafePathError):
        store.load(key)
