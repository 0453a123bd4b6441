"""Large objects travel as content-defined chunks plus a chunk list (remote layout 3).

Through the real CLI against a local-directory remote and S3 (moto): only the changed part of
a big file goes up and comes down, the layout rises to 3 before the first chunk list, older
layouts still read, and the faults (a missing chunk, a corrupt chunk, an interrupted push)
never put bad bytes into a cache or a workspace. The chunk-list format and the chunker are
checked directly.
"""

from __future__ import annotations

import io
import json
import random

import pytest
import xxhash

from conftest import run
from dvlite.formats.chunks import (
    CHUNK_ABOVE,
    MAX_CUT,
    MIN_CHUNK,
    ChunkList,
    DamagedChunkListError,
    cut_stream,
)
from dvlite.remotes import backend
from remote_helpers import clone, commit_all, configure, fresh_location, serve, storage

MIB = 1 << 20
SIZE = CHUNK_ABOVE + 8 * MIB  # just big enough to be chunked

needs_layout_3 = pytest.mark.skipif(
    backend.LAYOUT < 3, reason="chunked remotes need remotes/backend.py to read layout 3")


def _random(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


# --- the format and the chunker ------------------------------------------------------------

def test_chunk_list_round_trip_and_offsets():
    data = _random(20 * MIB, 1)
    found = cut_stream(io.BytesIO(data).readinto, len(data))
    assert found.digest == xxhash.xxh3_128_hexdigest(data) and found.size == len(data)
    assert all(MIN_CHUNK <= n <= MAX_CUT for _d, n in found.chunks[:-1])
    for digest, offset, length in found.spans():
        assert xxhash.xxh3_128_hexdigest(data[offset:offset + length]) == digest
    assert ChunkList.from_bytes(found.to_bytes(), "x", found.digest) == found


def test_a_change_in_the_middle_changes_only_nearby_chunks():
    data = bytearray(_random(40 * MIB, 2))
    before = cut_stream(io.BytesIO(bytes(data)).readinto, len(data))
    data[20 * MIB:21 * MIB] = _random(MIB, 3)
    after = cut_stream(io.BytesIO(bytes(data)).readinto, len(data))
    new = [n for d, n in after.chunks if (d, n) not in set(before.chunks)]
    assert 0 < sum(new) < 16 * MIB
    # cutting in blocks gives the boundaries of cutting the whole: short reads change nothing
    trickle = io.BytesIO(bytes(data))
    assert cut_stream(lambda view: trickle.readinto(view[:777_777]), len(data)) == after


@pytest.mark.parametrize("damage, why", [
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum mismatch"),
    (lambda b: b"DVLCHK99" + b[8:], "checksum mismatch"),
    (lambda b: b[:20], "too short"),
])
def test_damaged_chunk_lists_are_refused_in_one_line(damage, why):
    good = ChunkList("ab" * 16, 3, (("cd" * 16, 1), ("ef" * 16, 2))).to_bytes()
    with pytest.raises(DamagedChunkListError) as info:
        ChunkList.from_bytes(damage(good), "remote/chunklists/ab/ab", "ab" * 16)
    assert why in info.value.message and "\n" not in info.value.message


def test_chunk_lists_must_add_up_and_name_their_object():
    # well formed, checksum right, but lying: the chunks do not make the size it claims
    lying = ChunkList("ab" * 16, 10, (("cd" * 16, 1),)).to_bytes()
    with pytest.raises(DamagedChunkListError, match="do not add up"):
        ChunkList.from_bytes(lying, "l", "ab" * 16)
    other = ChunkList("ab" * 16, 1, (("cd" * 16, 1),)).to_bytes()
    with pytest.raises(DamagedChunkListError, match="not " + "ef" * 16):
        ChunkList.from_bytes(other, "l", "ef" * 16)
    huge = ChunkList("ab" * 16, 1 << 40, (("cd" * 16, 1 << 40),)).to_bytes()
    with pytest.raises(DamagedChunkListError, match="bigger than"):
        ChunkList.from_bytes(huge, "l", "ab" * 16)


# --- through the CLI, a local directory and S3 -------------------------------------------------

@pytest.fixture(scope="module", params=["local", "s3"])
def server(request, tmp_path_factory):
    with serve(request.param, tmp_path_factory.mktemp(request.param)) as srv:
        yield srv


@pytest.fixture
def remote(server):
    return fresh_location(server)


def _remote_files(remote) -> dict[str, int]:
    """key -> size of everything on the remote (temp files included)."""
    fs, root = storage(remote)
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return {}
    return {p[len(root) + 1:]: int(info["size"]) for p, info in found.items()}


def _layout(remote) -> int:
    fs, root = storage(remote)
    return json.loads(fs.cat_file(f"{root}/dvlite-remote.json"))["layout"]


def _keys(remote, prefix: str) -> list[str]:
    return sorted(k for k in _remote_files(remote) if k.startswith(prefix + "/"))


def _push_big(repo, remote, seed: int = 7) -> bytes:
    data = _random(SIZE, seed)
    (repo / "big.bin").write_bytes(data)
    run(repo, "add", "big.bin")
    configure(repo, remote)
    commit_all(repo, "big")
    run(repo, "push")
    return data


def _change_middle(repo, data: bytes) -> bytes:
    changed = bytearray(data)
    changed[SIZE // 2:SIZE // 2 + MIB] = _random(MIB, 99)
    (repo / "big.bin").write_bytes(bytes(changed))
    run(repo, "add", "big.bin")
    commit_all(repo, "change 1 MiB")
    return bytes(changed)


@needs_layout_3
def test_only_the_changed_part_travels_both_ways(repo, remote, tmp_path):
    data = _push_big(repo, remote)
    digest = xxhash.xxh3_128_hexdigest(data)
    assert _layout(remote) == 3
    assert _keys(remote, "chunklists") == [f"chunklists/{digest[:2]}/{digest[2:]}"]
    assert _keys(remote, "objects") == []  # the object exists only as chunks
    other = clone(repo, tmp_path / "other", remote)
    run(other, "pull")
    assert (other / "big.bin").read_bytes() == data

    before = sum(_remote_files(remote).values())
    changed = _change_middle(repo, data)
    pushed = json.loads(run(repo, "push", "--json").stdout)
    assert pushed["uploaded"] == 1 and 0 < pushed["uploaded_bytes"] < 16 * MIB
    assert 0 < sum(_remote_files(remote).values()) - before < 16 * MIB

    run(other, "pull")  # nothing new in git yet: still the old version
    from conftest import git
    git(other, "pull", "-q")
    fetched = json.loads(run(other, "fetch", "--json").stdout)
    assert fetched["downloaded"] == 1 and fetched["read_bytes"] < 16 * MIB
    run(other, "checkout")
    assert (other / "big.bin").read_bytes() == changed
    assert run(other, "status", "--cloud").returncode == 0


@needs_layout_3
def test_layout_rises_from_2_and_older_layouts_still_read(repo, remote, tmp_path):
    fs, root = storage(remote)
    # a remote an older dvlite wrote: layout 1, one loose big object
    old = _random(SIZE, 11)
    digest = xxhash.xxh3_128_hexdigest(old)
    fs.makedirs(f"{root}/objects/{digest[:2]}", exist_ok=True)
    fs.pipe_file(f"{root}/dvlite-remote.json", b'{"format": "dvlite-remote", "layout": 1}\n')
    fs.pipe_file(f"{root}/objects/{digest[:2]}/{digest[2:]}", old)
    (repo / "old.bin").write_bytes(old)
    run(repo, "add", "old.bin")
    configure(repo, remote)
    commit_all(repo, "old")
    other = clone(repo, tmp_path / "other", remote)
    run(other, "pull")  # layout 1, loose: read as before, and it stays 1
    assert (other / "old.bin").read_bytes() == old and _layout(remote) == 1
    # small files go up in packs (layout 2), then a big file as chunks raises it to 3
    (repo / "small.txt").write_bytes(b"small")
    run(repo, "add", "small.txt")
    commit_all(repo, "small")
    run(repo, "push")
    assert _layout(remote) == 2
    new = _random(SIZE, 12)
    (repo / "new.bin").write_bytes(new)
    run(repo, "add", "new.bin")
    commit_all(repo, "new")
    run(repo, "push")
    assert _layout(remote) == 3 and _keys(remote, "chunklists")
    from conftest import git
    git(other, "pull", "-q")
    run(other, "pull")
    assert (other / "new.bin").read_bytes() == new and (other / "old.bin").read_bytes() == old


def _fresh_clone_pull(repo, remote, tmp_path, name: str):
    other = clone(repo, tmp_path / name, remote)
    return other, run(other, "pull", check=False)


@needs_layout_3
def test_a_missing_chunk_is_a_clear_error_and_nothing_is_written(repo, remote, tmp_path):
    data = _push_big(repo, remote)
    digest = xxhash.xxh3_128_hexdigest(data)
    fs, root = storage(remote)
    lost = _keys(remote, "chunks")[3]
    fs.rm_file(f"{root}/{lost}")
    other, out = _fresh_clone_pull(repo, remote, tmp_path, "other")
    assert out.returncode != 0
    missing_chunk = lost.split("/", 1)[1].replace("/", "")
    assert digest in out.stderr and f"chunk {missing_chunk}" in out.stderr and "lacks" in out.stderr
    assert not (other / "big.bin").exists()
    assert not any(p.is_file() for p in (other / ".dvlite" / "cache" / "objects").rglob("*"))


@needs_layout_3
def test_a_corrupt_chunk_never_enters_the_cache(repo, remote, tmp_path):
    data = _push_big(repo, remote)
    fs, root = storage(remote)
    bad = _keys(remote, "chunks")[2]
    body = bytearray(fs.cat_file(f"{root}/{bad}"))
    body[100] ^= 0xFF
    fs.pipe_file(f"{root}/{bad}", bytes(body))
    other, out = _fresh_clone_pull(repo, remote, tmp_path, "other")
    assert out.returncode != 0 and "does not match" in out.stderr
    assert not (other / "big.bin").exists()
    assert not any(p.is_file() for p in (other / ".dvlite" / "cache" / "objects").rglob("*"))
    # a whole copy on the remote as well (pushed by an older dvlite): fetched whole instead
    digest = xxhash.xxh3_128_hexdigest(data)
    fs.makedirs(f"{root}/objects/{digest[:2]}", exist_ok=True)
    fs.pipe_file(f"{root}/objects/{digest[:2]}/{digest[2:]}", data)
    run(other, "pull")
    assert (other / "big.bin").read_bytes() == data


@needs_layout_3
def test_an_interrupted_push_is_completed_by_the_next(repo, remote, tmp_path):
    data = _push_big(repo, remote)
    digest = xxhash.xxh3_128_hexdigest(data)
    fs, root = storage(remote)
    # what a push killed before its chunk list leaves: some chunks, no list
    chunks = _keys(remote, "chunks")
    fs.rm_file(f"{root}/chunklists/{digest[:2]}/{digest[2:]}")
    for key in chunks[::2]:
        fs.rm_file(f"{root}/{key}")
    assert "missing on remote" in run(repo, "status", "--cloud").stdout
    pushed = json.loads(run(repo, "push", "--json").stdout)
    assert pushed["uploaded"] == 1
    resent = sum(_remote_files(remote)[k] for k in chunks[::2])
    assert pushed["uploaded_bytes"] < resent + MIB  # only what was missing, plus the list
    assert _keys(remote, "chunks") == chunks
    other, out = _fresh_clone_pull(repo, remote, tmp_path, "other")
    assert out.returncode == 0 and (other / "big.bin").read_bytes() == data


@needs_layout_3
def test_a_failed_chunk_upload_leaves_no_chunk_list(repo, tmp_path):
    with serve("local", tmp_path) as server:
        remote = fresh_location(server)
        data = _random(SIZE, 21)
        digest = xxhash.xxh3_128_hexdigest(data)
        (repo / "big.bin").write_bytes(data)
        run(repo, "add", "big.bin")
        configure(repo, remote)
        commit_all(repo, "big")
        found = cut_stream(io.BytesIO(data).readinto, len(data))
        blocked = found.chunks[1][0]  # a file where its fan-out directory must go: upload fails
        fs, root = storage(remote)
        fs.makedirs(f"{root}/chunks", exist_ok=True)
        fs.pipe_file(f"{root}/chunks/{blocked[:2]}", b"in the way")
        out = run(repo, "push", check=False)
        assert out.returncode != 0
        assert _keys(remote, "chunklists") == []  # never a list naming a chunk that is not there
        fs.rm_file(f"{root}/chunks/{blocked[:2]}")
        run(repo, "push")
        assert _keys(remote, "chunklists") == [f"chunklists/{digest[:2]}/{digest[2:]}"]


@needs_layout_3
def test_fsck_and_gc_functions_see_chunked_objects(repo, remote):
    from dvlite.remotes import chunked
    from dvlite.remotes.backend import Remote
    from dvlite.remotes.config import choose
    from dvlite.repo import Repo

    data = _push_big(repo, remote)
    first = xxhash.xxh3_128_hexdigest(data)
    changed = _change_middle(repo, data)
    run(repo, "push")
    second = xxhash.xxh3_128_hexdigest(changed)
    handle = Remote(choose(Repo(str(repo)).config, None))
    handle.read_layout()
    assert chunked.verify_remote(handle, 4).corrupt == []
    plan = chunked.plan_gc(handle, {second})
    assert plan.lists == [first] and 0 < len(plan.chunks) <= 8  # the old version's own few, of ~60
    fs, root = storage(remote)
    bad = sorted(set(_keys(remote, "chunks")) - {f"chunks/{c[:2]}/{c[2:]}" for c in plan.chunks})[0]
    fs.pipe_file(f"{root}/{bad}", b"rot")
    check = chunked.verify_remote(handle, 4)
    assert check.objects == 2 and {d for d, _why in check.corrupt} <= {first, second}
    assert check.corrupt and all("does not match" in why for _d, why in check.corrupt)


@needs_layout_3
def test_gc_and_fsck_cloud_through_the_cli(repo, remote, tmp_path):
    data = _push_big(repo, remote)
    first = xxhash.xxh3_128_hexdigest(data)
    changed = _change_middle(repo, data)
    run(repo, "push")
    shared = set(_keys(remote, "chunks"))
    dry = run(repo, "gc", "--cloud")  # only the checked-out version is kept: the old one goes
    assert _keys(remote, "chunks") == sorted(shared)
    run(repo, "gc", "--cloud", "--force")
    assert _keys(remote, "chunklists") == [f"chunklists/{xxhash.xxh3_128_hexdigest(changed)[:2]}/"
                                           f"{xxhash.xxh3_128_hexdigest(changed)[2:]}"]
    assert 0 < len(shared) - len(_keys(remote, "chunks")) <= 8, dry.stdout
    assert first not in run(repo, "status", "--cloud", "--json").stdout

    fs, root = storage(remote)
    rotten = _keys(remote, "chunks")[0]
    fs.pipe_file(f"{root}/{rotten}", b"rot")
    check = run(repo, "fsck", "--cloud", check=False)
    assert check.returncode != 0 and "does not match" in check.stdout + check.stderr
    repair = run(repo, "fsck", "--cloud", "--repair", check=False)  # reports what it found
    assert "Pushed 1 object" in repair.stdout and "Traceback" not in repair.stderr
    assert "No problems found." in run(repo, "fsck", "--cloud").stdout
    other = clone(repo, tmp_path / "other", remote)
    run(other, "pull")
    assert (other / "big.bin").read_bytes() == changed


@needs_layout_3
def test_a_damaged_old_version_in_the_cache_is_not_used(repo, remote, tmp_path):
    data = _push_big(repo, remote)
    other = clone(repo, tmp_path / "other", remote)
    run(other, "pull")
    digest = xxhash.xxh3_128_hexdigest(data)
    old = other / ".dvlite" / "cache" / "objects" / digest[:2] / digest[2:]
    old.chmod(0o644)
    with open(old, "r+b") as f:  # rot in the first chunk, which the new version shares
        f.seek(1000)
        f.write(b"rot")
    changed = _change_middle(repo, data)
    run(repo, "push")
    from conftest import git
    git(other, "pull", "-q")
    run(other, "pull")
    assert (other / "big.bin").read_bytes() == changed


@needs_layout_3
def test_a_chunk_deleted_behind_its_lists_is_sent_again_after_fsck_repair(repo, remote, tmp_path):
    """A push trusts a chunk list on the remote for the chunks it names (invariant 28); a
    chunk deleted by hand behind the lists fails the pull with its name, nothing written,
    and `fsck --cloud --repair` takes the lists away so that the chunk goes up again."""
    data = _push_big(repo, remote)
    changed = _change_middle(repo, data)
    run(repo, "push")  # the second version's chunks: the first version's list answers
    first, second = (cut_stream(io.BytesIO(b).readinto, len(b)) for b in (data, changed))
    lost = sorted({c for c, _n in first.chunks} & {c for c, _n in second.chunks})[0]
    fs, root = storage(remote)
    fs.rm(f"{root}/chunks/{lost[:2]}/{lost[2:]}")

    other = clone(repo, tmp_path / "other", remote)
    pulled = run(other, "pull", check=False)
    assert pulled.returncode != 0 and lost in pulled.stdout + pulled.stderr
    assert not (other / "big.bin").exists()
    assert run(repo, "fsck", "--cloud", check=False).returncode != 0
    repair = run(repo, "fsck", "--cloud", "--repair", check=False)  # reports what it found
    assert lost in repair.stderr and "Pushed 1 object" in repair.stdout
    assert f"chunks/{lost[:2]}/{lost[2:]}" in _keys(remote, "chunks")
    assert run(repo, "fsck", "--cloud").returncode == 0
    run(other, "pull")
    assert (other / "big.bin").read_bytes() == changed
