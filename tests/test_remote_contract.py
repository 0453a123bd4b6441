"""One contract, every backend: the same push/pull behaviour on local, S3, SFTP, Azure, GCS, WebDAV."""

from __future__ import annotations

import hashlib

import pytest

from conftest import run, tree_digests, write_tree
from remote_helpers import (
    BACKENDS,
    clone,
    commit_all,
    configure,
    fresh_location,
    corrupt_object,
    drop_object,
    drop_packs,
    loose_objects,
    make_data,
    remote_objects,
    serve,
    storage,
)


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    with serve(request.param, tmp_path_factory.mktemp(request.param)) as srv:
        yield srv


@pytest.fixture
def remote(server):
    return fresh_location(server)


@pytest.fixture
def pushed(repo, remote):
    """A repo whose data (a directory and a file) is committed and pushed."""
    data = make_data(repo)
    run(repo, "add", "data", "model.bin")
    configure(repo, remote)
    commit_all(repo, "data")
    out = run(repo, "push")
    assert "pushed" in out.stdout
    return data


def _digests(data: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in data.items()}


def test_push_then_noop_push(repo, remote, pushed):
    import xxhash

    objects = remote_objects(remote)
    assert len(objects) == len(pushed) + 1  # every file and the directory manifest
    # small files travel in packs: the only loose object is nothing (model.bin is 200 kB)
    assert loose_objects(remote) == set()
    again = run(repo, "push")
    assert "Everything is already on origin" in again.stdout
    assert remote_objects(remote) == objects
    status = run(repo, "status", "--cloud")
    assert "in sync" in status.stdout
    assert xxhash.xxh3_128_hexdigest(pushed["model.bin"]) in objects


def test_pull_into_fresh_clone_is_byte_identical(repo, remote, pushed, tmp_path):
    other = clone(repo, tmp_path / "other", remote)
    out = run(other, "pull")
    assert "fetched" in out.stdout
    got = {k: v for k, v in tree_digests(other).items() if k.startswith("data/") or k == "model.bin"}
    assert got == _digests(pushed)
    assert run(other, "status", "-q").returncode == 0
    assert run(other, "pull").stdout.strip() == "Everything is up to date."


def test_partial_pull_fetches_only_that_file(repo, remote, pushed, tmp_path):
    other = clone(repo, tmp_path / "other", remote)
    run(other, "pull", "data/d1/f6.bin")
    assert (other / "data/d1/f6.bin").read_bytes() == pushed["data/d1/f6.bin"]
    assert not (other / "model.bin").exists()
    assert not (other / "data/d0/f0.bin").exists()
    cached = list((other / ".dvlite/cache/objects").rglob("*"))
    assert len([p for p in cached if p.is_file()]) == 2  # that file and the manifest


def test_partial_pull_reads_a_range_not_the_pack(repo, remote, tmp_path):
    import json
    import random

    rnd = random.Random(7)
    files = {f"big/{i:04d}.bin": rnd.randbytes(20_000) for i in range(400)}  # one 8 MB pack
    write_tree(repo, files)
    run(repo, "add", "big")
    configure(repo, remote)
    commit_all(repo, "big")
    run(repo, "push")
    other = clone(repo, tmp_path / "other", remote)
    result = json.loads(run(other, "fetch", "big/0123.bin", "--json").stdout)
    assert result["downloaded"] == 1
    assert result["read_bytes"] < 100_000  # the object (and the manifest), not the 8 MB pack
    run(other, "checkout", "big/0123.bin")
    assert (other / "big/0123.bin").read_bytes() == files["big/0123.bin"]
    whole = json.loads(run(other, "fetch", "--json").stdout)
    assert whole["downloaded"] == 399
    assert whole["read_bytes"] < 9_000_000  # most of a pack is wanted: the pack, once


def test_interrupted_push_resumes_without_resending(repo, remote, pushed):
    import json

    objects = remote_objects(remote)
    lost = drop_packs(remote)  # as if the push had died after the packs, before their indexes
    assert lost and remote_objects(remote) == objects - set(lost)
    result = json.loads(run(repo, "push", "--json").stdout)
    assert result["uploaded"] == len(lost)
    assert remote_objects(remote) == objects
    assert json.loads(run(repo, "push", "--json").stdout)["uploaded"] == 0


def test_corrupt_remote_object_is_reported_and_never_cached(repo, remote, pushed, tmp_path):
    import xxhash

    victim = "data/d2/f7.bin"
    digest = xxhash.xxh3_128_hexdigest(pushed[victim])
    corrupt_object(remote, digest)
    other = clone(repo, tmp_path / "other", remote)
    out = run(other, "pull", check=False)
    assert out.returncode != 0
    assert "corrupt object on origin" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (other / victim).exists()
    assert not (other / ".dvlite/cache/objects" / digest[:2] / digest[2:]).exists()
    assert (other / "data/d0/f0.bin").read_bytes() == pushed["data/d0/f0.bin"]


def test_missing_remote_object_is_listed_with_its_path(repo, remote, pushed, tmp_path):
    import xxhash

    victim = "data/d3/f8.bin"
    digest = xxhash.xxh3_128_hexdigest(pushed[victim])
    drop_object(remote, digest)
    other = clone(repo, tmp_path / "other", remote)
    out = run(other, "pull", check=False)
    assert out.returncode != 0
    assert victim in out.stderr and "missing on origin" in out.stderr
    assert (other / "model.bin").read_bytes() == pushed["model.bin"]
    assert not (other / victim).exists()


def test_gc_cloud_dry_run_then_force(repo, remote, pushed, tmp_path):
    write_tree(repo, {"model.bin": b"a newer model"})
    run(repo, "add", "model.bin")
    commit_all(repo, "new model")
    run(repo, "push")
    before = remote_objects(remote)
    dry = run(repo, "gc", "--cloud", "-r", "origin")
    assert "Would remove 1 object(s)" in dry.stdout
    assert "Would rewrite 1 pack(s)" in dry.stdout  # the old model shared a pack with live files
    assert remote_objects(remote) == before
    kept_all = run(repo, "gc", "--cloud", "-r", "origin", "--all-commits")
    assert "Nothing to collect" in kept_all.stdout
    run(repo, "gc", "--cloud", "-r", "origin", "--force")
    assert len(remote_objects(remote)) == len(before) - 1
    other = clone(repo, tmp_path / "other", remote)
    run(other, "pull")
    assert (other / "model.bin").read_bytes() == b"a newer model"


def test_parallel_transfers_with_j8(repo, remote, tmp_path):
    files = {f"many/{i:03d}.txt": f"file {i}\n".encode() * (i + 1) for i in range(120)}
    write_tree(repo, files)
    run(repo, "add", "many")
    configure(repo, remote)
    commit_all(repo, "many")
    run(repo, "push", "-j", "8")
    other = clone(repo, tmp_path / "other", remote)
    run(other, "pull", "-j", "8")
    assert {k: v for k, v in tree_digests(other).items() if k.startswith("many/")} == _digests(files)


def test_wrong_credentials_one_line_error(repo, remote):
    if remote.bad_options is None:
        pytest.skip(f"{remote.name}: the test server cannot reject credentials")
    make_data(repo, files=3)
    run(repo, "add", "data")
    configure(repo, remote, options=remote.bad_options)
    before = sorted(p.name for p in (repo / ".dvlite").iterdir())
    out = run(repo, "push", check=False)
    assert out.returncode == 5
    assert "Traceback" not in out.stderr
    first = out.stderr.strip().splitlines()[0]
    assert first.startswith("error: remote 'origin'") and "access denied" in first
    assert sorted(p.name for p in (repo / ".dvlite").iterdir()) == before


def test_large_object_is_streamed_and_verified(repo, remote, tmp_path):
    import os

    import xxhash

    big = os.urandom(5 << 20)  # above the size that is downloaded to a temp file, not in memory
    write_tree(repo, {"big.bin": big})
    run(repo, "add", "big.bin")
    configure(repo, remote)
    commit_all(repo, "big")
    run(repo, "push")
    other = clone(repo, tmp_path / "other", remote)
    run(other, "pull")
    assert (other / "big.bin").read_bytes() == big
    digest = xxhash.xxh3_128_hexdigest(big)
    fs, root = storage(remote)
    fs.pipe_file(f"{root}/objects/{digest[:2]}/{digest[2:]}", os.urandom(5 << 20))
    third = clone(repo, tmp_path / "third", remote)
    out = run(third, "pull", check=False)
    assert out.returncode != 0 and "corrupt object on origin" in out.stderr
    assert not (third / "big.bin").exists()
    leftovers = [p for p in (third / ".dvlite/cache").rglob("*")
                 if p.is_file() and p.parent.name != "projects"]  # the cache records its users
    assert leftovers == []  # neither the object nor its temp file stayed
