"""SIGKILL `dvlite add` and `dvlite checkout` at many points; nothing may be left half-done.

After every kill: the workspace data is byte-identical to what it was (add) or
every file under a final name is complete (checkout), every cache object hashes
to its name, and a pointer file, if present, parses and names an object that is
fully in the cache (with, for a directory, every object its manifest lists).
A rerun then completes, and leftover `.dvlite-tmp-*` files are never reported as data.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import xxhash
import yaml
from conftest import DVLITE, GIT_ENV, git, run, tree_digests, write_tree

TMP_MARK = ".dvlite-tmp-"
N_SMALL = 3000
BIG_SIZE = 40 << 20


def make_dataset(root: Path) -> dict[str, bytes]:
    """3,000 small files in 30 directories (some sharing content) plus one 40 MiB file."""
    rng = random.Random(1060)
    files: dict[str, bytes] = {}
    for i in range(N_SMALL):
        if i % 100 == 7:
            body = b"shared content\n"  # several files, one object
        else:
            body = f"file {i}\n".encode() + rng.randbytes(rng.randrange(1, 300))
        files[f"data/d{i % 30:02d}/f{i:05d}.bin"] = body
    files["big.bin"] = rng.randbytes(BIG_SIZE)
    write_tree(root, files)
    return files


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def workspace_digests(repo: Path) -> dict[str, str]:
    """sha256 of every data file (data/ and big.bin), leaving out temp-file leftovers."""
    out = {}
    if (repo / "data").is_dir():
        for rel, digest in tree_digests(repo / "data").items():
            if not rel.rsplit("/", 1)[-1].startswith(TMP_MARK):
                out["data/" + rel] = digest
    if (repo / "big.bin").exists():
        out["big.bin"] = sha((repo / "big.bin").read_bytes())
    return out


def objects_dir(repo: Path) -> Path:
    return repo / ".dvlite" / "cache" / "objects"


def packs_dir(repo: Path) -> Path:
    return repo / ".dvlite" / "cache" / "packs"


def packed_objects(repo: Path) -> dict[str, bytes]:
    """Objects visible through pack indexes, each pack checked against its name; a pack
    without an index (killed between the two writes) is invisible and allowed."""
    from dvlite.formats.packs import PackIndex

    out: dict[str, bytes] = {}
    if not packs_dir(repo).exists():
        return out
    for idx in packs_dir(repo).iterdir():
        if idx.name.startswith(TMP_MARK) or idx.suffix == ".pack":
            continue
        assert idx.suffix == ".idx", f"stray file in packs/: {idx.name}"
        index = PackIndex.from_bytes(idx.read_bytes(), str(idx))
        pack = (packs_dir(repo) / f"{index.pack}.pack").read_bytes()
        assert xxhash.xxh3_128_hexdigest(pack) == index.pack == idx.stem
        for digest, (offset, length) in index.entries.items():
            out[digest] = pack[offset:offset + length]
    return out


def count_objects(repo: Path) -> int:
    try:
        n = len(packed_objects(repo))
    except (FileNotFoundError, ValueError, AssertionError):  # a pack being written right now
        n = 0
    try:
        fans = list(os.scandir(objects_dir(repo)))
    except FileNotFoundError:
        return 0
    for fan in fans:
        if len(fan.name) == 2 and fan.is_dir():
            try:
                n += sum(1 for e in os.scandir(fan.path) if not e.name.startswith(TMP_MARK))
            except FileNotFoundError:
                pass
    return n


def check_cache(repo: Path) -> set[str]:
    """Every object hashes to its name; only temp files may sit anywhere else.

    Returns the digests of the objects found.
    """
    good: set[str] = set()
    root = objects_dir(repo)
    for entry in root.iterdir() if root.exists() else []:
        if entry.is_file():
            assert entry.name.startswith(TMP_MARK), f"stray file in objects/: {entry.name}"
            continue
        assert len(entry.name) == 2, f"unexpected directory in objects/: {entry.name}"
        for obj in entry.iterdir():
            if obj.name.startswith(TMP_MARK):
                continue
            name = entry.name + obj.name
            actual = xxhash.xxh3_128_hexdigest(obj.read_bytes())
            assert actual == name, f"corrupt object under a final name: {name} holds {actual}"
            good.add(name)
    for name, body in packed_objects(repo).items():
        actual = xxhash.xxh3_128_hexdigest(body)
        assert actual == name, f"corrupt packed object: {name} holds {actual}"
        good.add(name)
    return good


def check_pointers(repo: Path, objects: set[str], expected_ws: dict[str, str]) -> list[str]:
    """A pointer that exists parses and names data that is fully in the cache.

    Returns the pointers found.
    """
    found = []
    for name, kind in (("data.dvl", "dir"), ("big.bin.dvl", "file")):
        p = repo / name
        if not p.exists():
            continue
        found.append(name)
        doc = yaml.safe_load(p.read_bytes())
        assert isinstance(doc, dict), f"{name} is malformed: {p.read_bytes()!r}"
        assert doc["version"] == 1 and doc["kind"] == kind and doc["hash"] == "xxh3-128"
        digest = doc["digest"]
        assert digest in objects, f"{name} names {digest}, which is not (intact) in the cache"
        if kind == "file":
            assert doc["size"] == BIG_SIZE
            continue
        manifest = json.loads((objects_dir(repo) / digest[:2] / digest[2:]).read_bytes())
        entries = manifest["entries"]
        assert doc["files"] == len(entries) == N_SMALL
        absent = [path for path, d, _size, _x in entries if d not in objects]
        assert not absent, f"data.dvl lists files whose objects are not in the cache: {absent[:5]}"
        listed = {"data/" + e[0] for e in entries}
        assert listed == {k for k in expected_ws if k.startswith("data/")}
    return found


def start(repo: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*DVLITE, *args], cwd=repo, env={**os.environ, **GIT_ENV},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def kill_after(proc: subprocess.Popen, delay: float) -> bool:
    """SIGKILL `proc` after `delay` seconds; True if it was still running."""
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True
    return False


def kill_when(proc: subprocess.Popen, reached, limit: float = 30.0) -> bool:
    """SIGKILL `proc` as soon as `reached()` is true; True if it was still running then."""
    deadline = time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < deadline:
        if reached():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.002)
    proc.wait()
    return False


def reset_add(repo: Path, trash: Path) -> None:
    """Back to 'nothing added yet', the data untouched. The old cache is renamed aside:
    deleting 40 MiB per round would cost more than the round."""
    objects_dir(repo).rename(trash / f"objects-{len(list(trash.iterdir()))}")
    objects_dir(repo).mkdir()
    if packs_dir(repo).exists():
        packs_dir(repo).rename(trash / f"packs-{len(list(trash.iterdir()))}")
    shutil.rmtree(repo / ".dvlite" / "tmp", ignore_errors=True)
    for p in repo.iterdir():
        if p.name in ("data.dvl", "big.bin.dvl", ".gitignore") or p.name.startswith(TMP_MARK):
            p.unlink()


def big_temp_object(repo: Path, at_least: int) -> bool:
    """The 40 MiB file is being streamed into a temp file in objects/ (and has `at_least` bytes)."""
    for entry in os.scandir(objects_dir(repo)):
        if entry.name.startswith(TMP_MARK):
            try:
                if entry.stat().st_size >= at_least:
                    return True
            except FileNotFoundError:
                pass
    return False


def test_sigkill_during_add_never_corrupts_and_rerun_completes(repo, tmp_path):
    trash = tmp_path / "trash"
    trash.mkdir()
    files = make_dataset(repo)
    expected = {rel: sha(data) for rel, data in files.items()}
    unique = {xxhash.xxh3_128_hexdigest(data) for data in files.values()}
    assert workspace_digests(repo) == expected

    # One full add, timed, to spread the kill points over its run.
    t0 = time.monotonic()
    run(repo, "add", "data", "big.bin")
    full = time.monotonic() - t0
    objects = check_cache(repo)
    assert unique <= objects and len(objects) == len(unique) + 1  # + the manifest
    assert check_pointers(repo, objects, expected) == ["data.dvl", "big.bin.dvl"]

    states = []  # (where the kill was aimed, still running when killed?, objects, pointers present)

    def one_kill(how: str, kill) -> None:
        reset_add(repo, trash)
        proc = start(repo, "add", "data", "big.bin")
        killed = kill(proc)
        err = proc.stderr.read().decode()
        proc.stderr.close()
        if not killed:
            assert proc.returncode == 0, err
        assert workspace_digests(repo) == expected, f"workspace changed by add killed at {how}"
        objs = check_cache(repo)
        pointers = check_pointers(repo, objs, expected)
        states.append((how, killed, len(objs), pointers))

    def when(condition):
        return lambda proc: kill_when(proc, condition)

    n_unique = len(unique)
    for fraction in (0.2, 0.5, 0.8):
        one_kill(f"{fraction:.0%} of {full:.2f}s", lambda p, f=fraction: kill_after(p, f * full))
    one_kill("first object", when(lambda: count_objects(repo) >= 1))
    one_kill("half the objects", when(lambda: count_objects(repo) >= n_unique // 2))
    one_kill("big file half streamed", when(lambda: big_temp_object(repo, BIG_SIZE // 2)))
    one_kill("all data objects, no manifest", when(lambda: count_objects(repo) >= n_unique))
    one_kill("first pointer written", when(lambda: (repo / "data.dvl").exists()))

    killed = [s for s in states if s[1]]
    assert len(killed) >= 5, states
    mid_ingest = [s for s in killed if 0 < s[2] < n_unique]
    assert mid_ingest, f"no kill landed mid-ingest: {states}"

    # The last kill's leftovers stay; a rerun completes from there.
    run(repo, "add", "data", "big.bin")
    assert workspace_digests(repo) == expected
    objects = check_cache(repo)
    assert unique <= objects
    assert check_pointers(repo, objects, expected) == ["data.dvl", "big.bin.dvl"]

    # Leftovers of interrupted atomic writes are not data: a torn pointer temp file,
    # a complete one, a temp file inside the tracked directory, a torn object.
    (repo / f"{TMP_MARK}0123456789ab-big.bin.dvl").write_bytes(b"version: 1\nkind: fi")
    shutil.copy(repo / "data.dvl", repo / f"{TMP_MARK}0123456789ac-data.dvl")
    (repo / "data" / "d00" / f"{TMP_MARK}0123456789ad-f00000.bin").write_bytes(b"torn")
    (objects_dir(repo) / f"{TMP_MARK}0123456789ae-object").write_bytes(b"torn object")
    fan = next(d for d in objects_dir(repo).iterdir() if d.is_dir())
    (fan / f"{TMP_MARK}0123456789af-{'0' * 30}").write_bytes(b"torn small object")

    git(repo, "add", "data.dvl", "big.bin.dvl", ".gitignore")
    git(repo, "commit", "-qm", "data")
    st = run(repo, "status")
    assert st.stdout.strip() == "Data and pointers are up to date.", st.stdout + st.stderr
    assert TMP_MARK not in st.stdout + st.stderr

    (repo / "data").rename(trash / "data")
    (repo / "big.bin").rename(trash / "big.bin")
    co = run(repo, "checkout")
    assert TMP_MARK not in co.stdout + co.stderr
    assert f"{N_SMALL + 1} written" in co.stdout
    assert workspace_digests(repo) == expected
    assert not (repo / f"{TMP_MARK}0123456789ac-data").exists()  # no phantom output
    assert run(repo, "status").stdout.strip() == "Data and pointers are up to date."
    fsck = run(repo, "fsck")
    assert fsck.stdout.strip().endswith("No problems found."), fsck.stdout + fsck.stderr


def test_sigkill_during_checkout_leaves_no_torn_file_and_rerun_restores(repo, tmp_path):
    trash = tmp_path / "trash"
    trash.mkdir()
    files = make_dataset(repo)
    expected = {rel: sha(data) for rel, data in files.items()}
    run(repo, "add", "data", "big.bin")
    git(repo, "add", "data.dvl", "big.bin.dvl", ".gitignore")
    git(repo, "commit", "-qm", "data")

    def wipe() -> None:  # rename aside: cheaper than deleting
        n = len(list(trash.iterdir()))
        for name in ("data", "big.bin"):
            if (repo / name).exists():
                (repo / name).rename(trash / f"{name}-{n}")

    def check_no_torn_file(how: str) -> int:
        now = workspace_digests(repo)
        wrong = {rel for rel, digest in now.items() if expected.get(rel) != digest}
        assert not wrong, f"checkout killed at {how} left torn/foreign files: {sorted(wrong)[:5]}"
        return len(now)

    wipe()
    t0 = time.monotonic()
    run(repo, "checkout")
    full = time.monotonic() - t0
    assert workspace_digests(repo) == expected

    def n_files() -> int:
        return sum(len(names) for _d, _s, names in os.walk(repo / "data"))

    def big_temp_file(at_least: int) -> bool:
        for entry in os.scandir(repo):
            if entry.name.startswith(TMP_MARK):
                try:
                    if entry.stat().st_size >= at_least:
                        return True
                except FileNotFoundError:  # renamed into place meanwhile
                    pass
        return False

    present = []
    kills = [
        (f"{f:.0%} of {full:.2f}s", lambda p, f=f: kill_after(p, f * full))
        for f in (0.1, 0.2, 0.3, 0.6, 0.9)
    ]
    kills += [  # (a later checkout may run faster than the timed one: early kills always land)
        (f"{n} files", lambda p, n=n: kill_when(p, lambda: n_files() >= n)) for n in (1, 500, 1500)
    ]
    kills.append(
        ("big file half written", lambda p: kill_when(p, lambda: big_temp_file(BIG_SIZE // 2)))
    )
    for how, kill in kills:
        wipe()
        proc = start(repo, "checkout")
        was_running = kill(proc)
        proc.stderr.close()
        present.append((how, was_running, check_no_torn_file(how)))
    assert sum(1 for _h, k, _n in present if k) >= 4, present
    mid = [s for s in present if s[1] and 0 < s[2] < len(expected)]
    assert mid, f"no kill landed mid-checkout: {present}"

    # Kill again on top of the last partial state, then a plain rerun finishes the job.
    proc = start(repo, "checkout")
    kill_after(proc, 0.3 * full)
    proc.stderr.close()
    check_no_torn_file("a second kill")
    # Whatever the kills left, plus a torn temp file beside a restored one: not data.
    (repo / "data" / "d01").mkdir(parents=True, exist_ok=True)
    (repo / "data" / "d01" / f"{TMP_MARK}0123456789ab-f00001.bin").write_bytes(b"torn")
    co = run(repo, "checkout")
    assert TMP_MARK not in co.stdout + co.stderr
    assert workspace_digests(repo) == expected
    st = run(repo, "status")
    assert st.stdout.strip() == "Data and pointers are up to date.", st.stdout + st.stderr
