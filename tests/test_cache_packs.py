"""Small objects in the local cache live in packs: add, checkout, status, gc and fsck with them."""

from __future__ import annotations

import hashlib
import json

import xxhash

from conftest import git, run, tree_digests, write_tree
from dvlite.formats.packs import PackIndex


def _packs(repo):
    d = repo / ".dvlite/cache/packs"
    return sorted(d.glob("*.idx")) if d.exists() else []


def _packed(repo) -> dict[str, tuple[str, int, int]]:
    out = {}
    for idx in _packs(repo):
        index = PackIndex.from_bytes(idx.read_bytes(), str(idx))
        for digest, (offset, length) in index.entries.items():
            out[digest] = (index.pack, offset, length)
    return out


def _index(pack) -> PackIndex:
    return PackIndex.from_bytes(pack.with_suffix(".idx").read_bytes(), str(pack))


def _loose(repo) -> set[str]:
    root = repo / ".dvlite/cache/objects"
    return {p.parent.name + p.name for p in root.glob("??/*")}


def _files(n: int, tag: str = "") -> dict[str, bytes]:
    return {f"data/{i % 4}/{i:03d}.txt": f"{tag}file {i}\n".encode() * (i + 1) for i in range(n)}


def test_many_small_files_are_packed_and_restored(repo):
    files = _files(60)
    write_tree(repo, files)
    write_tree(repo, {"data/big.bin": b"x" * (2 << 20)})  # above the pack limit: loose
    run(repo, "add", "data")
    packed = _packed(repo)
    assert {xxhash.xxh3_128_hexdigest(v) for v in files.values()} <= set(packed)
    assert xxhash.xxh3_128_hexdigest(b"x" * (2 << 20)) in _loose(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    assert run(repo, "status").stdout.strip() == "Data and pointers are up to date."
    def data():
        return {k: v for k, v in tree_digests(repo).items() if k.startswith("data/")}

    before = data()
    import shutil

    shutil.rmtree(repo / "data")
    run(repo, "checkout")
    assert data() == before
    assert run(repo, "fsck").returncode == 0


def test_a_few_small_files_stay_loose(repo):
    write_tree(repo, _files(5))
    run(repo, "add", "data")
    assert _packs(repo) == []
    assert len(_loose(repo)) == 6  # five files and the manifest


def test_corrupt_packed_object_is_found_and_quarantined(repo):
    files = _files(40)
    write_tree(repo, files)
    run(repo, "add", "data")
    victim = "data/1/005.txt"
    digest = xxhash.xxh3_128_hexdigest(files[victim])
    pack, offset, length = _packed(repo)[digest]
    path = repo / ".dvlite/cache/packs" / f"{pack}.pack"
    path.chmod(0o644)
    body = bytearray(path.read_bytes())
    body[offset] ^= 0xFF
    path.write_bytes(bytes(body))
    (repo / victim).unlink()
    out = run(repo, "checkout", check=False)
    assert out.returncode == 4 and victim in out.stderr
    fsck = run(repo, "fsck", "--json", check=False)
    assert fsck.returncode == 4
    assert [c[0] for c in json.loads(fsck.stdout)["corrupt"]] == [digest]
    run(repo, "fsck", "--repair", check=False)
    assert (repo / ".dvlite/cache/corrupt" / digest).exists()
    assert digest not in _packed(repo)
    others = {xxhash.xxh3_128_hexdigest(v) for k, v in files.items() if k != victim}
    assert others <= set(_packed(repo))  # the rest of the pack survived the rewrite
    write_tree(repo, {victim: files[victim]})
    run(repo, "add", "data")
    assert run(repo, "fsck").returncode == 0


def test_gc_rewrites_a_pack_without_its_unused_objects(repo):
    old = _files(40, "old ")
    write_tree(repo, old)
    run(repo, "add", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "old")
    changed = dict(old)
    for rel in list(changed)[:10]:
        changed[rel] = b"changed " + changed[rel]
    write_tree(repo, changed)
    run(repo, "add", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "new")
    dry = json.loads(run(repo, "gc", "--json").stdout)
    assert len(dry["unused"]) == 11  # ten old file versions and the old manifest
    kept_history = json.loads(run(repo, "gc", "--all-commits", "--json").stdout)
    assert kept_history["unused"] == []
    run(repo, "gc", "--force")
    assert set(_packed(repo)) | _loose(repo) >= {xxhash.xxh3_128_hexdigest(v) for v in changed.values()}
    gone = {xxhash.xxh3_128_hexdigest(old[r]) for r in list(old)[:10]}
    assert not gone & (set(_packed(repo)) | _loose(repo))
    import shutil

    shutil.rmtree(repo / "data")
    run(repo, "checkout")
    got = {k: v for k, v in tree_digests(repo).items() if k.startswith("data/")}
    assert got == {k: hashlib.sha256(v).hexdigest() for k, v in changed.items()}


def test_cache_pack_false_keeps_every_object_loose_and_links_them(repo):
    run(repo, "config", "cache.pack", "false")
    run(repo, "config", "cache.type", "hardlink,copy")
    files = _files(40)
    write_tree(repo, files)
    run(repo, "add", "data")
    assert _packs(repo) == []
    assert len(_loose(repo)) == 41
    import shutil

    shutil.rmtree(repo / "data")
    run(repo, "checkout")
    assert (repo / "data/0/000.txt").stat().st_nlink == 2  # linked to its cache object
    run(repo, "config", "cache.pack", "maybe")
    out = run(repo, "status", check=False)
    assert out.returncode == 2 and "cache.pack" in out.stderr


def test_a_fetched_whole_pack_becomes_a_cache_pack_as_it_is(repo, tmp_path):
    """A pull that wants every object of a remote pack keeps that pack (same name, same
    bytes) instead of copying each object into a new one; a pack whose bytes do not match its
    name is taken apart object by object, and only the bad object is refused."""
    import shutil

    files = _files(200)
    write_tree(repo, files)
    run(repo, "add", "data")
    run(repo, "remote", "add", "-d", "origin", str(tmp_path / "remote"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    run(repo, "push")
    digests = {xxhash.xxh3_128_hexdigest(v) for v in files.values()}
    remote_packs = [p for p in sorted((tmp_path / "remote/packs").glob("*.pack"))  # not the
                    if set(_index(p).entries) <= digests]  # manifest's: fetched on its own
    assert remote_packs
    shutil.rmtree(repo / ".dvlite/cache")
    shutil.rmtree(repo / "data")
    run(repo, "pull")
    assert {k: v for k, v in tree_digests(repo).items() if k.startswith("data/")} == {
        k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    for pack in remote_packs:
        assert (repo / ".dvlite/cache/packs" / pack.name).read_bytes() == pack.read_bytes()
    assert run(repo, "fsck").returncode == 0

    victim, (offset, _length) = sorted(_index(remote_packs[0]).entries.items())[0]
    body = bytearray(remote_packs[0].read_bytes())
    body[offset] ^= 0xFF
    remote_packs[0].chmod(0o644)
    remote_packs[0].write_bytes(bytes(body))
    shutil.rmtree(repo / ".dvlite/cache")
    shutil.rmtree(repo / "data")
    pulled = run(repo, "pull", check=False)
    assert pulled.returncode != 0 and victim in pulled.stdout + pulled.stderr
    assert not (repo / ".dvlite/cache/packs" / remote_packs[0].name).exists()
    assert victim not in _packed(repo) and len(_packed(repo)) == len(files) - 1
